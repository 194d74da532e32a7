"""The one adapter over keras-tuner: every private name it relies on exists in the installed keras-tuner, and the
paths it leaves to keras-tuner are the ones the results folder's layout spells."""
import threading
import time
from pathlib import Path

import keras_tuner as kt
import pytest

from hpstudy.engine.search import adapter
from hpstudy.engine.search.distributed.roles import CHIEF, WORKER, Role, free_port, keras_tuner_environment
from hpstudy.engine.search.distributed.worker import ChiefFinished
from hpstudy.results.layout import TUNER_TRIAL_FILE, Layout


def test_every_private_name_of_keras_tuner_the_adapter_uses_exists():
    assert adapter.missing_private_names() == [], (f"keras-tuner {kt.__version__} lacks them: "
                                                   "see engine/search/adapter.py")


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


CHIEF_ROLE = Role(CHIEF, "127.0.0.1", 7940)


@pytest.fixture
def chief_environment():
    """keras-tuner's variables of a chief, as a chief's run sets them (and restores them after)."""
    with keras_tuner_environment(CHIEF_ROLE):
        yield


def _chief(tmp_path, max_trials=2):
    """A chief's tuner, sharing `tmp_path` with the chief it restarts."""
    return _tuner(tmp_path, max_trials=max_trials, role=CHIEF_ROLE)


def test_a_tuner_made_outside_its_roles_environment_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="does not make this process chief"):
        _chief(tmp_path)                          # keras-tuner would be a search of its own, not the chief
    with keras_tuner_environment(CHIEF_ROLE), pytest.raises(RuntimeError, match="a search of its own"):
        _tuner(tmp_path, max_trials=2)


def test_a_workers_client_stops_waiting_on_the_chief_once_it_has_finished():
    # Nobody listens at the port: keras-tuner's call waits (wait_for_ready) an hour for a chief to appear there.
    role = Role(WORKER, "127.0.0.1", free_port(), worker_id="w0")
    with keras_tuner_environment(role):
        from keras_tuner.src.distribute import oracle_client
        client = oracle_client.OracleClient(kt.oracles.RandomSearchOracle(objective="val_loss", max_trials=1))
    finished = threading.Event()
    patient = adapter.PatientClient(client, patience=600, chief_finished=finished)
    threading.Timer(0.5, finished.set).start()    # the heartbeat, finding the chief's state "finished"
    started = time.monotonic()
    with pytest.raises(ChiefFinished):
        patient.create_trial("w0")
    assert 0.4 < time.monotonic() - started < 5


def _complete(oracle, trial):
    oracle.update_trial(trial.trial_id, {"val_loss": 0.5})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


@pytest.mark.usefixtures("chief_environment")
def test_a_worker_waits_while_another_holds_a_trial_and_runs_it_once_that_worker_is_silent(tmp_path):
    oracle = _chief(tmp_path).oracle
    mine, theirs = oracle.create_trial("w0"), oracle.create_trial("w1")
    _complete(oracle, mine)
    # Every trial is handed out, but w1's may come back: w0 must not leave the study (STOPPED) now.
    assert oracle.create_trial("w0").status == "IDLE" and "w0" in oracle.tuner_ids
    assert not oracle.search_over()
    oracle.release("w1")                          # the chief's watchdog: w1 fell silent
    assert not oracle.search_over()               # a trial still waits to run again: not finished
    again = oracle.create_trial("w0")
    assert again.trial_id == theirs.trial_id and again.status == "RUNNING"
    _complete(oracle, again)
    assert oracle.create_trial("w0").status == "STOPPED" and oracle.search_over()


@pytest.mark.usefixtures("chief_environment")
def test_a_restarted_chief_holds_a_dead_workers_trial_until_another_worker_has_run_it(tmp_path):
    tuner = _chief(tmp_path)
    tuner.save()                                  # as search() does first: a restarted chief reloads the study
    first = tuner.oracle
    mine, theirs = first.create_trial("w0"), first.create_trial("w1")
    _complete(first, mine)                        # then the chief is killed, and restarted
    oracle = _chief(tmp_path).oracle
    assert oracle.ongoing_trials["w1"].trial_id == theirs.trial_id
    assert oracle.create_trial("w0").status == "IDLE" and not oracle.search_over()
    oracle.release("w1")
    again = oracle.create_trial("w0")
    assert again.trial_id == theirs.trial_id
    _complete(oracle, again)
    assert oracle.search_over() and {t.status for t in oracle.trials.values()} == {"COMPLETED"}


@pytest.mark.usefixtures("chief_environment")
def test_a_search_stopped_by_the_failure_limit_is_over_with_a_trial_still_queued(tmp_path):
    oracle = _chief(tmp_path, max_trials=10).oracle
    oracle.max_failed_trials = 1
    failed = oracle.create_trial("w0")
    oracle.create_trial("w1")                     # w1's trial, released to the queue below
    failed.status = "FAILED"
    oracle.end_trial(failed)
    oracle.release("w1")
    assert oracle.search_over()                   # the limit ends it: the queued trial is not waited for
