"""search.tuner: design: the question's values balanced by design, the nuisance hyperparameters quasi-random within
each; one plan whatever stops, resumes or shares the search."""
import json
import math
from collections import Counter

import keras_tuner as kt
import pytest

import hpstudy
import hpstudy.api
from hpstudy.cli import main
from hpstudy.engine.search.design import DesignOracle, cell_order, levels
from hpstudy.report import tables
from tests.helpers import TINY, one_error_line, run_command, write_study


def _space():
    hps = kt.HyperParameters()
    hps.Choice("model.head", ["gap", "dense"])
    hps.Choice("model.conv_layers", [1, 2, 3])
    hps.Float("train.learning_rate", 1e-4, 1e-1, sampling="log")
    hps.Choice("model.dropout", [0.0, 0.25, 0.5])
    hps.Int("model.dense_units", 16, 512, sampling="log")
    return hps


def _oracle(tmp_path, question=("model.head", "model.conv_layers"), seed=1, name="p"):
    oracle = DesignOracle(objective="val_accuracy", max_trials=24, seed=seed, question=question)
    oracle._set_project_dir(str(tmp_path), name)
    oracle.update_space(_space())
    return oracle


def _drawn(oracle, count):
    values = []
    for _ in range(count):
        trial = oracle.create_trial("tuner0")
        values.append(trial.hyperparameters.values)
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        oracle.end_trial(trial)
    return values


def test_every_prefix_of_the_plan_is_as_balanced_as_it_can_be(tmp_path):
    drawn = _drawn(_oracle(tmp_path), 24)
    for k in range(1, 25):
        for name, count in (("model.head", 2), ("model.conv_layers", 3)):
            seen = Counter(v[name] for v in drawn[:k])
            assert len(seen) == min(count, k) and max(seen.values()) - min(seen.values()) <= 1, (k, name, seen)
    cells = Counter((v["model.head"], v["model.conv_layers"]) for v in drawn)
    assert set(cells.values()) == {4}, cells          # every combination alike


def test_each_round_gives_every_cell_the_same_new_nuisance_point(tmp_path):
    drawn = _drawn(_oracle(tmp_path), 12)
    nuisance = [(v["train.learning_rate"], v["model.dropout"], v["model.dense_units"]) for v in drawn]
    assert len(set(nuisance[:6])) == 1 and len(set(nuisance[6:])) == 1 and nuisance[0] != nuisance[6]
    rates = [v["train.learning_rate"] for v in _drawn(_oracle(tmp_path, question=("model.head",), name="q"), 16)]
    assert 1e-4 <= min(rates) < 1e-3 and 1e-2 < max(rates) <= 1e-1      # the log range explored end to end


def test_the_plan_depends_on_the_seed_and_the_trial_number_only(tmp_path):
    first, second = _oracle(tmp_path, name="a"), _oracle(tmp_path, name="b")
    assert _drawn(first, 8) == _drawn(second, 8)
    assert [second.plan(k) for k in range(8, 12)] == _drawn(first, 4)
    assert _drawn(_oracle(tmp_path, seed=2, name="c"), 8) != [first.plan(k) for k in range(8)]


def test_a_searched_range_in_the_question_is_balanced_over_bins_of_its_sampled_scale(tmp_path):
    drawn = _drawn(_oracle(tmp_path, question=("train.learning_rate",), name="r"), 9)
    decades = Counter(int(math.log10(v["train.learning_rate"]) + 4) for v in drawn)     # 1e-4..1e-1: 3 decades
    assert decades == {0: 3, 1: 3, 2: 3}, decades
    assert levels(kt.engine.hyperparameters.Boolean("b")) == [False, True]


def test_the_cell_order_balances_each_factor_within_a_round():
    assert cell_order((2, 3)) == [(0, 0), (1, 1), (0, 2), (1, 0), (0, 1), (1, 2)]
    assert sorted(cell_order((2, 2, 2))) == sorted((a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1))


DESIGN = TINY.replace("tuner: grid", "tuner: design\n  max_trials: {trials}") + "question: [model.dropout]\n"


def _values(folder):
    table = hpstudy.load_study(folder).trials.sort_values("trial_id", key=lambda s: s.astype(int))
    return list(table["model.dropout"])


@pytest.mark.slow
def test_a_design_study_stopped_and_extended_follows_the_plan_of_one_never_stopped(tmp_path, capsys):
    whole = write_study(tmp_path, DESIGN.format(name="whole", trials=4), name="whole")
    assert main(["run", str(whole), "--results-dir", str(tmp_path)]) == 0
    part = write_study(tmp_path, DESIGN.format(name="part", trials=2), name="part")
    assert main(["run", str(part), "--results-dir", str(tmp_path)]) == 0
    part.write_text(DESIGN.format(name="part", trials=4))        # more trials: the resumable change
    assert main(["run", str(part), "--results-dir", str(tmp_path)]) == 0
    assert _values(tmp_path / "whole") == _values(tmp_path / "part") == [0.0, 0.5, 0.0, 0.5]


def test_a_design_without_a_question_is_refused_in_one_line(tmp_path, capsys):
    study = write_study(tmp_path, TINY.format(name="plain").replace("tuner: grid", "tuner: design"), name="plain")
    assert main(["validate", str(study)]) == 2
    one_error_line(capsys, "search.tuner", "name them in question:")


@pytest.mark.slow
def test_a_design_study_shared_by_two_workers_stays_balanced(tmp_path):
    study = write_study(tmp_path, DESIGN.format(name="shared", trials=6), name="shared")
    done = run_command("run", study, "--results-dir", tmp_path, "--workers", "2", timeout=400)
    assert done.returncode == 0, done.stdout[-3000:]
    assert Counter(_values(tmp_path / "shared")) == {0.0: 3, 0.5: 3}


class _AnsweredAfter:
    """The stopping rule's contract (engine.search.answered.Answered): check() is a reason to stop, or None."""

    def __init__(self, calls):
        self.calls, self.asked, self.looks = calls, 0, None     # looks: set by the oracle before it asks

    def check(self):
        self.asked += 1
        return "answered: every question decisive (model.head: effect)" if self.asked >= self.calls else None


def test_until_answered_is_asked_between_rounds_and_stops_the_search_for_good(tmp_path):
    oracle = _oracle(tmp_path, question=("model.head",), name="u")
    oracle.until = _AnsweredAfter(calls=2)
    _drawn(oracle, 4)                                          # rounds of 2: asked before trial 2 (go on)
    assert oracle.until.asked == 1 and oracle.stopped_because is None
    for _ in range(2):                                         # before trial 4: answered, and stays so
        assert oracle.create_trial("tuner0").status == "STOPPED"
    assert oracle.until.asked == 2 and oracle.stopped_because.startswith("answered") and len(oracle.trials) == 4
    assert oracle.until.looks == oracle.looks() == 12           # 24 trials in rounds of 2 cells: 12 looks


UNTIL = DESIGN.replace("tuner: design", "tuner: design\n  until: answered")


@pytest.mark.slow
def test_until_answered_repeats_what_the_answer_rests_on_and_ends_with_one_line_that_agrees_with_the_report(
        tmp_path, capsys):
    # No smallest_effect: the floor from seed repeats is what could make a verdict negligible, so between rounds
    # each dropout value's best trial gets 2 repeats; the last line counts them and agrees with the report.
    study = write_study(tmp_path, UNTIL.format(name="until", trials=4), name="until")
    assert main(["run", str(study), "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    line = [x for x in out if x.startswith("search ")][-1]
    report = json.loads(hpstudy.api.report([tmp_path / "until"], format="json"))
    verdict = {e["hyperparameter"]: e["verdict"] for e in report["effects"] if e["outcome"] == "score"}
    repeats = hpstudy.load_study(tmp_path / "until").repeats
    trials = hpstudy.load_study(tmp_path / "until").trials
    best = {str(trials.loc[trials["model.dropout"] == v, "score"].idxmax()) for v in (0.0, 0.5)}
    best = {str(trials.loc[int(k), "trial_id"]) for k in best}
    # Each value's best trial at the end has its 2 repeats (an earlier round's best kept its own: the floor's
    # 2 degrees of freedom were still under 4 when the best changed).
    assert best <= set(repeats.trial_id) and set(repeats.groupby("trial_id").size()) == {2}
    assert sum(x.startswith("repeat of trial") for x in out) == len(repeats) >= 4
    if verdict["model.dropout"] in ("effect", "negligible"):
        assert line.startswith("search stopped, answered: every question decisive (model.dropout: "), line
    else:
        sentence = tables.build([tmp_path / "until"]).studies[0].effects.effects[0].sentence
        assert sentence.startswith("model.dropout ")
        assert line == (f"search stopped: search.max_trials (4) spent (and {len(repeats)} seed repeats) with the "
                        f"question not answered ({sentence}); more trials may settle it"), line


def test_until_answered_needs_the_design_and_a_designs_question_is_not_changed_on_resume(tmp_path, capsys):
    study = write_study(tmp_path, TINY.format(name="r").replace("seed: 1", "seed: 1\n  until: answered"), name="r")
    assert main(["validate", str(study)]) == 2
    assert "search.until: answered: stops a design study" in capsys.readouterr().err


def test_repeats_are_asked_only_while_the_floor_is_what_a_negligible_verdict_lacks():
    import types

    import numpy as np
    import pandas as pd

    from hpstudy.analysis import effects as effects_module
    from hpstudy.engine.search.answered import Answered
    rng = np.random.default_rng(0)
    trials = pd.DataFrame({"trial_id": [str(k) for k in range(8)], "status": "COMPLETED",
                           "model.dropout": [0.0, 0.5] * 4, "score": 0.8 + rng.normal(0, 0.01, 8)})
    best = [str(trials[trials["model.dropout"] == v].score.idxmax()) for v in (0.0, 0.5)]

    def targets(repeats, smallest=None):
        found = effects_module.effects(trials, ["model.dropout"], "val_accuracy", question=["model.dropout"],
                                       repeats=repeats, with_importance=False)
        study = types.SimpleNamespace(smallest_effect=smallest, question=["model.dropout"])
        return Answered(layout=None, study=study).repeat_targets(found)

    def seeds(ids, n):
        return pd.DataFrame([{"trial_id": t, "seed": s, "status": "COMPLETED", "score": 0.8 + 0.01 * s,
                              "test_accuracy": 0.8}
                             for t in ids for s in range(n)])

    assert sorted(targets(None)) == sorted(best)                      # no floor: each value's best trial
    assert targets(None, smallest=0.01) == []                         # declared: repeats change no verdict
    assert targets(seeds(best[:1], 2)) == best[1:]                    # 1 dof: the other one still lacks its 2
    assert targets(seeds(["6", "7", *best], 2)) == []                 # 4 configurations x 1 dof: measured
