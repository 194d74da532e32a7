"""Which way the objective is better, defined once (study.objective): `search.direction` declared or defaulted
from the metric's name, stated in spec.yaml, `hpstudy validate` and the report, and read (never guessed) by the
ranking, the effects, the seed repeats, pruning and keras-tuner; and the one running best."""
import json
import math

import pandas as pd
import pytest

from hpstudy.analysis import effects
from hpstudy.engine.search import adapter
from hpstudy.errors import SpecError
from hpstudy.results import folder, trials
from hpstudy.results.layout import Layout
from hpstudy.study import objective, spec, yamlfile

SEARCHED = "name: s\nmodel: {dropout: {tune: choice, values: [0.1, 0.5]}}\n"


def test_the_default_follows_the_metric_name():
    assert [objective.default_direction(m) for m in ("val_accuracy", "accuracy", "val_loss", "loss", "error")] == \
        ["max", "max", "min", "min", "min"]


def test_the_study_states_its_direction():
    assert spec.loads(SEARCHED).search.direction == "max"
    assert spec.loads(SEARCHED + "search: {objective: val_loss}\n").search.direction == "min"
    declared = spec.loads(SEARCHED + "search: {objective: val_accuracy, direction: min}\n")
    assert (declared.search.direction, declared.search.minimize) == ("min", True)
    assert yamlfile.parse(yamlfile.dump(declared.to_dict()))["search"]["direction"] == "min"    # as spec.yaml keeps it
    assert spec.SearchSpec(objective="val_loss").minimize      # made in code, without a study file: the default


@pytest.mark.parametrize("value", ["up", "MAX", 1, True, "[max]"])
def test_a_bad_direction_is_one_line_naming_the_file_and_key(value):
    with pytest.raises(SpecError) as err:
        spec.loads(SEARCHED + f"search: {{direction: {value}}}\n", source="studies/s.yaml")
    message = str(err.value)
    assert message.startswith("studies/s.yaml: search.direction: ") and "allowed: max, min" in message
    assert "\n" not in message


def _folder(tmp_path, study_text: str, scores: dict) -> Layout:
    """A results folder of completed trials with these scores (keras-tuner's records only)."""
    study = spec.loads(study_text)
    layout = Layout(tmp_path / "study")
    layout.root.mkdir(parents=True)
    layout.spec.write_text(yamlfile.dump(study.to_dict()))
    for number, score in scores.items():
        record = {"trial_id": number, "status": "COMPLETED", "score": score, "best_step": 0,
                  "hyperparameters": {"space": [], "values": {"model.dropout": 0.1}}, "metrics": {"metrics": {}}}
        path = layout.tuner / f"trial_{number}" / "trial.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(record))
    return layout


def test_the_ranking_reads_the_declared_direction(tmp_path):
    scores = {"0": 0.5, "1": 0.9, "2": 0.7}
    assert trials.ranked_trials(_folder(tmp_path / "a", SEARCHED, scores)) == ["1", "2", "0"]
    declared = SEARCHED + "search: {direction: min}\n"
    assert trials.ranked_trials(_folder(tmp_path / "b", declared, scores)) == ["0", "2", "1"]


def test_effects_and_keras_tuner_follow_the_study():
    table = pd.DataFrame({"trial_id": ["0", "1", "2", "3"], "status": "COMPLETED", "score": [0.5, 0.9, 0.6, 0.8],
                          "model.dropout": [0.1, 0.5, 0.1, 0.5]})
    declared = spec.loads(SEARCHED + "search: {direction: min}\n")
    found = effects.of_study(declared, table, with_importance=False)
    assert found.minimize and found.effects[0].table["best"].tolist() == [0.5, 0.8]
    assert not effects.of_study(spec.loads(SEARCHED), table, with_importance=False).minimize
    tuned = adapter.objective("val_accuracy", declared.search.minimize)
    assert (tuned.name, tuned.direction) == ("val_accuracy", "min")


def test_changed_direction_is_a_changed_study(tmp_path):
    old = spec.loads(SEARCHED).to_dict()
    assert folder.changed_keys(old, spec.loads(SEARCHED + "search: {direction: min}\n").to_dict()) == \
        ["search.direction"]
    assert folder.changed_keys(old, spec.loads(SEARCHED + "search: {direction: max}\n").to_dict()) == []


def test_best_so_far_skips_what_is_not_finite():
    assert objective.best_so_far([0.1, math.nan, 0.3, 0.2], minimize=False) == [0.1, 0.1, 0.3, 0.3]
    assert objective.best_so_far([2.0, math.inf, 1.5, 1.7], minimize=True) == [2.0, 2.0, 1.5, 1.5]
    assert all(math.isnan(v) for v in objective.best_so_far([math.nan, -math.inf], minimize=True))


def test_spec_yaml_reads_back_what_was_written(tmp_path):
    """A value YAML 1.1 writes bare but the study reader takes for a number (`1e5`) is quoted in spec.yaml."""
    study = spec.loads('name: "1e5"\nmodel: {head: {tune: choice, values: ["2e3", gap]}}\n')
    text = yamlfile.dump(study.to_dict())
    assert spec.loads(text) == study and "name: '1e5'" in text
