"""Study-file validation: every bad input is one SpecError naming the file, the key and what is allowed."""
import pytest
import yaml

from hpstudy.errors import SpecError
from hpstudy.results import folder
from hpstudy.study import spec

BASE = "name: s\n"

BAD = [
    # (study text, expected fragments of the message)
    ("name: [unclosed", ["line 1", "invalid YAML"]),
    ("- a\n- b\n", ["a study file is a mapping"]),
    ("data: {}\n", ["name: required"]),
    ("name: ../escape\n", ["name:", "letters, digits"]),
    ("name: a/b\n", ["name:"]),
    ("name: s\nname: t\n", ["duplicate key 'name'"]),
    (BASE + "trian: {}\n", ["trian: unknown key", "did you mean 'train'"]),
    (BASE + "smallest_effect: 0\n", ["smallest_effect:", "a positive number", "got the number 0"]),
    (BASE + "smallest_effect: -0.01\n", ["smallest_effect:", "a positive number"]),
    (BASE + "smallest_effect: .inf\n", ["smallest_effect:", "a positive number"]),
    (BASE + "smallest_effect: .nan\n", ["smallest_effect:", "a positive number"]),
    (BASE + "smallest_effect: true\n", ["smallest_effect:", "a positive number"]),
    (BASE + "smallest_effect: '0.01'\n", ["smallest_effect:", "a positive number"]),
    (BASE + "smallest_effect: [0.01]\n", ["smallest_effect:", "a positive number"]),
    (BASE + "train: {optimzer: adam}\n", ["train.optimzer", "did you mean 'optimizer'"]),
    (BASE + "train: {optimizer: adma}\n", ["train.optimizer", "did you mean 'adam'", "allowed: adam, adamw, sgd"]),
    (BASE + "train: {learning_rate: '1e-4'}\n", ["train.learning_rate", "without quotes"]),
    (BASE + "train: {learning_rate: 0}\n", ["train.learning_rate", "(0, 1e+06]"]),
    (BASE + "train: {learning_rate: .nan}\n", ["train.learning_rate", "finite"]),
    (BASE + "train: {epochs: 2.5}\n", ["train.epochs", "an integer"]),
    (BASE + "train: {epochs: true}\n", ["train.epochs", "boolean"]),
    (BASE + "train: {epochs: 100000000000000000000}\n", ["train.epochs", "[1, 1e+06]"]),
    (BASE + "train: {nesterov: no}\n", ["train.nesterov", "only true and false"]),
    (BASE + "train: {batch_size: {tune: choice, values: []}}\n", ["train.batch_size.values", "non-empty"]),
    (BASE + "train: {batch_size: {tune: choice, values: 32}}\n", ["train.batch_size.values", "non-empty list"]),
    (BASE + "train: {batch_size: {tune: choice, values: [32, 32]}}\n", ["values repeat"]),
    (BASE + "train: {batch_size: {tune: choice, values: [32, 0]}}\n", ["train.batch_size.values[1]"]),
    (BASE + "train: {batch_size: {tune: choice, values: [32], default: 64}}\n", ["train.batch_size.default"]),
    (BASE + "model: {head: {tune: choice, values: [gap, 1]}}\n", ["model.head.values", "one type"]),
    (BASE + "train: {batch_size: {tune: int, min_value: 64, max_value: 16}}\n", ["min_value (64) is greater"]),
    (BASE + "train: {batch_size: {tune: int, min_value: 16}}\n", ["needs max_value"]),
    (BASE + "train: {learning_rate: {tune: float, min_value: -1, max_value: 1, sampling: log}}\n",
     ["train.learning_rate.min_value"]),
    (BASE + "model: {dropout: {tune: float, min_value: 0.0, max_value: 0.5, sampling: log}}\n",
     ["model.dropout", "log sampling needs min_value > 0"]),
    (BASE + "train: {learning_rate: {tune: float, min_value: 0.1, max_value: 1, sampling: logg}}\n",
     ["train.learning_rate.sampling", "did you mean 'log'"]),
    (BASE + "train: {learning_rate: {tune: floot, min_value: 0.1, max_value: 1}}\n", ["tune", "did you mean 'float'"]),
    (BASE + "train: {learning_rate: {tune: float, min_value: 0.1, max_value: 1, stepp: 0.1}}\n",
     ["stepp", "did you mean 'step'"]),
    (BASE + "train: {optimizer: {tune: int, min_value: 1, max_value: 2}}\n",
     ["train.optimizer.tune", "use tune: choice"]),
    (BASE + "train: {nesterov: {tune: float, min_value: 0, max_value: 1}}\n", ["train.nesterov.tune"]),
    (BASE + "train: {batch_size: {tune: boolean}}\n", ["train.batch_size.tune", "boolean search"]),
    (BASE + "data: {validation_split: 1.0}\n", ["data.validation_split", "(0, 1)"]),
    (BASE + "data: {validation_split: {tune: choice, values: [0.1, 0.2]}}\n",
     ["data.validation_split", "cannot be searched"]),
    (BASE + "data: {subset: {train: 0}}\n", ["data.subset.train"]),
    (BASE + "data: {subset: {trian: 5}}\n", ["data.subset.trian", "did you mean 'train'"]),
    (BASE + "data: {seed: -1}\n", ["data.seed"]),
    (BASE + "data: [digits]\n", ["data: must be a mapping"]),
    (BASE + "search: {tuner: hyperbnd}\n", ["search.tuner", "did you mean 'hyperband'"]),
    (BASE + "search: {objective: val_acc}\n", ["search.objective", "allowed: val_accuracy"]),
    (BASE + "search: {max_trials: 0}\n", ["search.max_trials"]),
    (BASE + "callbacks: {early_stopping: {patience: -1}}\n", ["callbacks.early_stopping.patience"]),
    (BASE + "callbacks: {early_stopping: {monitr: val_loss}}\n", ["callbacks.early_stopping.monitr"]),
    (BASE + "callbacks: {early_stopping: 3}\n", ["callbacks.early_stopping", "mapping"]),
    (BASE + "model: {kernel_size: .inf}\n", ["model.kernel_size", "finite"]),
    (BASE + "model: {filters: [16, {a: 1}]}\n", ["model.filters", "plain values"]),
    (BASE + "? [a, b]\n: 1\n", ["line 2", "keys must be plain names"]),
    (BASE + "train: {epochs: 1:30}\n", ["train.epochs", "the string '1:30'"]),
    (BASE + "search: {seed: 4294967295}\n", ["search.seed"]),
]


@pytest.mark.parametrize("text, fragments", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_study_is_one_line_naming_file_and_key(text, fragments):
    with pytest.raises(SpecError) as caught:
        spec.loads(text, source="studies/bad.yaml")
    message = str(caught.value)
    assert message.startswith("studies/bad.yaml: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_pyyaml_traps_are_avoided():
    study = spec.loads(BASE + "train: {learning_rate: 1e-4, weight_decay: 5E-4}\nmodel: {head: gap}\n")
    assert study.train.learning_rate == pytest.approx(1e-4)
    assert study.train.weight_decay == pytest.approx(5e-4)
    assert isinstance(study.train.learning_rate, float)
    assert spec.loads(BASE + "train: {epochs: 010, batch_size: 1_024}\n").train.epochs == 10   # not octal


def test_smallest_effect_is_read_and_decides_negligible():
    from hpstudy.analysis import statistics
    study = spec.from_dict({"name": "s", "smallest_effect": 0.02})
    assert study.smallest_effect == 0.02 and spec.from_dict({"name": "s"}).smallest_effect is None
    # The declared smallest effect, not the floor, bounds `negligible` (statistics.verdict's `smallest`).
    assert statistics.verdict(0.001, (-0.015, 0.017), study.smallest_effect, 1.0) == statistics.NEGLIGIBLE
    assert statistics.verdict(0.001, (-0.025, 0.027), study.smallest_effect, 1.0) == statistics.UNDETERMINED


def test_defaults_and_sections_are_typed():
    study = spec.loads(BASE)
    assert study.data.dataset == "digits" and study.search.tuner == "random"
    assert study.callbacks.early_stopping is None and study.callbacks.terminate_on_nan
    study = spec.loads(BASE + "callbacks: {early_stopping: true}\n")
    assert study.callbacks.early_stopping == spec.EarlyStopping()


def test_tunables_are_named_by_dotted_path_and_round_trip():
    text = BASE + """
model:
  conv_layers: {tune: choice, values: [2, 3]}
  dropout: {tune: float, min_value: 0.1, max_value: 0.5, step: 0.1}
  batch_norm: {tune: boolean}
train:
  learning_rate: {tune: float, min_value: 1e-4, max_value: 1e-2, sampling: log}
  batch_size: {tune: int, min_value: 16, max_value: 64, step: 16}
"""
    study = spec.loads(text)
    assert [t.name for t in study.tunables()] == [
        "model.conv_layers", "model.dropout", "model.batch_norm", "train.batch_size", "train.learning_rate"]
    again = spec.loads(yaml.safe_dump(study.to_dict()))
    assert again == study
    assert again.to_dict() == study.to_dict()


def test_mixed_int_and_float_choice_becomes_floats():
    study = spec.loads(BASE + "model: {dropout: {tune: choice, values: [0, 0.5]}}\n")
    assert study.model.options["dropout"].values == (0.0, 0.5)


def test_changed_keys_names_what_differs():
    a = spec.loads(BASE + "train: {epochs: 3}\n").to_dict()
    b = spec.loads(BASE + "train: {epochs: 4}\nmodel: {dropout: {tune: choice, values: [0.1]}}\n").to_dict()
    assert folder.changed_keys(a, b) == ["model.dropout", "train.epochs"]
    assert folder.changed_keys(a, a) == []


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(SpecError, match="no such study file"):
        spec.load(tmp_path / "nope.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(SpecError, match="binary.yaml"):
        spec.load(binary)


def test_the_trial_limit_and_its_defaults_live_on_the_spec():
    searched = BASE + "model: {dropout: {tune: choice, values: [0.1, 0.5]}}\n"

    def limit(search, study=searched):
        return spec.loads(study + f"search: {search}\n").trial_limit()
    assert limit("{tuner: random}") == limit("{tuner: design}") == spec.SearchSpec.DEFAULT_MAX_TRIALS == 10
    assert limit("{tuner: bayesian, max_trials: 4}") == 4 and limit("{tuner: grid, max_trials: 3}") == 3
    assert limit("{tuner: grid}") is None and limit("{tuner: hyperband}") is None    # the tuner decides
    assert limit("{tuner: random}", study=BASE) == 1                                    # nothing searched
    assert spec.loads(BASE + "search: {confirm: {}}\n").search.confirm == spec.ConfirmSpec(top=3, seeds=5)
