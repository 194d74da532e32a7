"""`train.overrides`: train settings of their own for the trials whose searched values match, what they train
with, and what the trials table, the seed repeats, a resume and the rebuilt models show of them."""
import json

import keras
import pytest

import hpstudy
from hpstudy import api
from hpstudy.results.trials import read_history, read_repeats
from hpstudy.study import spec
from hpstudy.trained import models as result_models
from tests.helpers import write_study

LADDER = """
name: ladder
model:
  builder: {tune: choice, values: [deep_cnn, resnet]}
  deep_cnn:
    variant: {tune: choice, values: [simple, deep]}
    dropout: {tune: choice, values: [0.0, 0.5]}
  resnet: {depth: 18}
train:
  epochs: 8
  optimizer: sgd
  lr_schedule: step
  overrides:
    - when: {model.deep_cnn.variant: simple}
      set: {lr_schedule: constant, epochs: 4}
    - when: {model.deep_cnn.variant: simple, model.deep_cnn.dropout: 0}
      set: {epochs: 2}
"""


def test_every_matching_override_applies_in_order_the_later_winning():
    study = spec.loads(LADDER, source="s.yaml")
    simple = {"model.builder": "deep_cnn", "model.deep_cnn.variant": "simple"}
    assert study.train.overridden({**simple, "model.deep_cnn.dropout": 0.5}) == {"lr_schedule": "constant", "epochs": 4}
    assert study.train.overridden({**simple, "model.deep_cnn.dropout": 0.0}) == {"lr_schedule": "constant", "epochs": 2}
    assert study.train.overridden({"model.builder": "deep_cnn", "model.deep_cnn.variant": "deep",
                                   "model.deep_cnn.dropout": 0.0}) == {}
    # A resnet trial has no deep_cnn values (inactive, so absent): nothing of deep_cnn's matches it.
    assert study.train.overridden({"model.builder": "resnet"}) == {}


def test_when_values_are_taken_as_the_searched_value_takes_them():
    study = spec.loads(LADDER, source="s.yaml")
    assert study.train.overrides[1].when["model.deep_cnn.dropout"] == 0.0     # 0 of a float choice is 0.0
    assert isinstance(study.train.overrides[1].when["model.deep_cnn.dropout"], float)
    flags = spec.loads("name: s\npreprocess: {flip: {tune: boolean}}\ntrain:\n  overrides:\n"
                       "    - {when: {preprocess.flip: true}, set: {epochs: 3}}\n")
    assert flags.train.overridden({"preprocess.flip": True}) == {"epochs": 3}
    assert flags.train.overridden({"preprocess.flip": 1}) == {}             # true is not 1
    ranged = spec.loads("name: s\nmodel: {filters: {tune: int, min_value: 4, max_value: 16, step: 4}}\ntrain:\n"
                        "  overrides:\n    - {when: {model.filters: 12}, set: {learning_rate: 0.1}}\n")
    assert ranged.train.overridden({"model.filters": 12}) == {"learning_rate": 0.1}


def test_overrides_survive_the_resolved_spec_and_the_run_flags():
    study = spec.loads(LADDER, source="s.yaml")
    again = spec.from_dict(study.to_dict(), source="spec.yaml")
    assert again == study and again.to_dict()["train"]["overrides"][0] == {
        "when": {"model.deep_cnn.variant": "simple"}, "set": {"lr_schedule": "constant", "epochs": 4}}
    # `hpstudy run --epochs 1`: every trial's epochs, the overridden ones too.
    quick = api.with_flags(study, epochs=1)
    assert quick.train.epochs == 1 and [o.set.get("epochs") for o in quick.train.overrides] == [1, 1]
    assert quick.train.overrides[0].set["lr_schedule"] == "constant"
    assert api.with_flags(study) is study


OVERRIDDEN = """
name: {name}
data:
  dataset: digits
  subset: {{train: 12, validation: 4, test: 6}}
model:
  builder: plain_cnn
  conv_layers: 1
  filters: 4
  dense_units: 8
  dropout: {{tune: choice, values: [0.0, 0.5]}}
train:
  epochs: 2
  batch_size: 32
  overrides:
    - when: {{model.dropout: 0.5}}
      set: {{epochs: 1, learning_rate: 0.0123, lr_schedule: step, lr_decay_epochs: 1}}
search:
  tuner: grid
  seed: 1
  confirm: {{top: 2, seeds: 2}}
"""


@pytest.mark.slow
def test_an_override_is_what_its_trials_train_with_record_repeat_and_rebuild(tmp_path):
    path = write_study(tmp_path, OVERRIDDEN.format(name="ov"), name="ov")
    study = hpstudy.run(path, results_dir=tmp_path / "results")
    table = study.trials.set_index("model.dropout")
    columns = ["epochs_run", "train.epochs", "train.learning_rate", "train.lr_schedule"]
    assert list(table.loc[0.0, columns]) == [2, 2, 0.001, "constant"]
    assert list(table.loc[0.5, columns]) == [1, 1, 0.0123, "step"]
    # The step schedule starts from the overridden rate; the constant one logs no rate.
    overridden, plain = table.loc[0.5, "trial_id"], table.loc[0.0, "trial_id"]
    assert list(read_history(study.layout, overridden).learning_rate) == pytest.approx([0.0123])
    assert "learning_rate" not in read_history(study.layout, plain)
    # Seed repeats train each configuration as its trial did.
    repeats = read_repeats(study.layout).set_index("trial_id")
    assert list(repeats.loc[overridden, "epochs_run"]) == [1, 1] and list(repeats.loc[plain, "epochs_run"]) == [2, 2]
    # The models rebuilt from the study (best.keras, and another trial's from its checkpoint) compile with it.
    for rank in (0, 1):
        number, model = result_models.model_at_rank(study.path, rank)
        rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        assert rate == pytest.approx(0.0123 if number == overridden else 0.001)
    # Resumed when finished: nothing trains again, nothing is rewritten.
    record = study.layout.execution(overridden, 0)
    stamp = record.stat().st_mtime_ns
    again = hpstudy.run(path, results_dir=tmp_path / "results")
    assert len(again.trials) == 2 and len(read_repeats(again.layout)) == 4
    assert record.stat().st_mtime_ns == stamp and json.loads(record.read_text())["epochs_run"] == 1
