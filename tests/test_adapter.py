"""The one adapter over keras-tuner: every private name it relies on exists in the installed keras-tuner, and the
paths it leaves to keras-tuner are the ones the results folder's layout spells."""
from pathlib import Path

import keras_tuner as kt

from hpstudy.engine import adapter
from hpstudy.results.layout import TUNER_TRIAL_FILE, Layout


def test_every_private_name_of_keras_tuner_the_adapter_uses_exists():
    assert adapter.missing_private_names() == [], f"keras-tuner {kt.__version__} lacks them: see engine/adapter.py"


def test_a_private_name_that_disappears_is_named(monkeypatch):
    monkeypatch.delattr(kt.Tuner, "_get_checkpoint_fname")
    monkeypatch.delattr(adapter.kt_config, "DEBUG")
    assert adapter.missing_private_names() == ["config.DEBUG", "Tuner._get_checkpoint_fname"]


class _Nothing:
    """No behaviour on top of the adapter's."""


def _tuner(tmp_path, name="random", **kwargs):
    return adapter.make_tuner(name, _Nothing, max_failed_trials=2, hypermodel=lambda hp: hp.Int("x", 0, 3),
                              objective="val_loss", directory=str(tmp_path), project_name="tuner", **kwargs)


def test_keras_tuner_writes_where_the_layout_reads(tmp_path):
    tuner = _tuner(tmp_path, max_trials=2)
    trial = tuner.oracle.create_trial("tuner0")
    tuner.oracle.end_trial(trial)
    layout = Layout(tmp_path)
    assert Path(tuner.checkpoint_file(trial.trial_id)) == layout.checkpoint(trial.trial_id)
    assert layout.tuner_trials() == [layout.tuner_trial(trial.trial_id) / TUNER_TRIAL_FILE]
    assert not list(tmp_path.rglob("*.tmp"))          # written to a temporary file, then renamed


def test_the_failure_limit_stops_handing_out_trials(tmp_path):
    tuner = _tuner(tmp_path, max_trials=10)
    for _ in range(2):
        trial = tuner.oracle.create_trial("tuner0")
        trial.status = "FAILED"
        tuner.oracle.end_trial(trial)      # keras-tuner's own rule (3 in a row) would raise at the third
    assert tuner.oracle.create_trial("tuner0").status == "STOPPED"
    assert len(tuner.oracle.failed_trials()) == 2


def test_oracle_options_go_to_the_oracle_and_the_rest_to_the_tuner(tmp_path):
    tuner = _tuner(tmp_path, name="bayesian", max_trials=3, num_initial_points=2, executions_per_trial=2)
    assert isinstance(tuner.oracle, kt.oracles.BayesianOptimizationOracle) and tuner.oracle.num_initial_points == 2
    assert tuner.executions_per_trial == 2 and isinstance(tuner.oracle, adapter.StudyOracle)
    assert set(adapter.arguments("hyperband")) >= {"max_epochs", "factor", "executions_per_trial", "max_model_size"}
