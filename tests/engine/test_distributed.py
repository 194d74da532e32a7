"""Distributed tuning with real processes on the loopback address: keras-tuner's chief and workers."""
import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time

import keras
import keras_tuner as kt
import numpy as np
import pytest

import hpstudy
from hpstudy import cli, files
from hpstudy.engine.search import adapter
from hpstudy.engine.search.distributed import launcher as launcher_module, roles as distributed
from hpstudy.engine.search.distributed.worker import ChiefFinished, Heartbeat
from hpstudy.engine.search.tuner import StopWhenChiefFinished
from hpstudy.results.layout import Layout
from tests.helpers import HPSTUDY_COMMAND, TINY, write_study

# Six trials of 12 tiny epochs (under a second each): long enough to kill a worker inside one.
STUDY = TINY.replace("tuner: grid", "tuner: random\n  max_trials: 6").replace("epochs: 2", "epochs: 12").replace(
    "dropout: {{tune: choice, values: [0.0, 0.5]}}", "dropout: {{tune: float, min_value: 0.0, max_value: 0.6}}")
RUN = [*HPSTUDY_COMMAND, "run"]


def _wait(condition, timeout=240, what="a condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if condition():
                return
        except (OSError, ValueError, KeyError):       # a file being replaced right now
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _running_trial(root, worker):
    """The trial the chief holds as running on `worker` (from its saved state), or None."""
    trial_id = json.loads((root / "tuner" / "oracle.json").read_text())["ongoing_trials"].get(worker)
    if trial_id is None:
        return None
    # oracle.json is saved before a trial that ends leaves it: the trial's own file says whether it still runs.
    status = json.loads((root / "tuner" / f"trial_{trial_id}" / "trial.json").read_text())["status"]
    return trial_id if status == "RUNNING" else None


def _workers_of_trials(root):
    return {json.loads(p.read_text())["worker"] for p in (root / "trials").glob("*/execution_0.json")}


def _check_complete(root, trials=6):
    table = hpstudy.load_study(root).trials
    assert list(table.trial_id) == [str(i) for i in range(trials)], table
    assert (table.status == "COMPLETED").all(), table[["trial_id", "status", "message"]].to_string()
    assert (root / "best.keras").exists()


@pytest.mark.slow
def test_local_workers_share_a_study_and_a_killed_worker_is_restarted(tmp_path):
    study_path = write_study(tmp_path, STUDY.format(name="local"), name="local")
    root = tmp_path / "local"
    launcher = subprocess.Popen([*RUN, str(study_path), "--results-dir", str(tmp_path), "--workers", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait(lambda: _running_trial(root, "worker1") is not None, what="worker1 to run a trial")
    pid = json.loads((root / "workers" / "worker1.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    output, _ = launcher.communicate(timeout=300)
    assert launcher.returncode == 0, output[-3000:]
    assert "[launcher] worker1 exited with -9; starting it again" in output
    assert "[worker0] trial" in output and "[worker1] trial" in output
    _check_complete(root)
    assert _workers_of_trials(root) == {"worker0", "worker1"}


@pytest.mark.slow
def test_chief_and_workers_started_apart_survive_a_dead_worker_and_a_restarted_chief(tmp_path):
    # Ordered so that no timing decides the path: w1 takes a trial and dies with it; the first chief waits longer
    # for it than the test runs, so w0 runs the five others, then finds every trial handed out and one still held
    # by a dead worker (the moment a worker used to be told STOPPED and leave, trial 0 RUNNING for good). The
    # restarted chief must give that trial to w0 once w1 stays silent, and only then call the study finished.
    study_path = write_study(tmp_path, STUDY.format(name="apart"), name="apart")
    root, port = tmp_path / "apart", distributed.free_port()
    common = [*RUN, str(study_path), "--results-dir", str(tmp_path)]
    chief_command = [*common, "--role", "chief", "--bind", f"0.0.0.0:{port}", "--worker-timeout"]
    chief = subprocess.Popen([*chief_command, "600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def worker(name):
        return subprocess.Popen([*common, "--role", "worker", "--chief", f"127.0.0.1:{port}", "--worker-id", name],
                                stdout=open(tmp_path / f"{name}.log", "w"), stderr=subprocess.STDOUT)
    workers = [worker("w1")]
    try:
        _wait(lambda: _running_trial(root, "w1") is not None, what="w1 to run a trial")
        workers[0].kill()                       # gone for good: its trial must go to w0
        workers.append(worker("w0"))
        _wait(lambda: len(list((root / "trials").glob("*/execution_0.json"))) >= 5, what="w0's five trials")
        chief.kill()                            # and the chief dies while w0 waits for the held trial
        chief.communicate()
        chief = subprocess.Popen([*chief_command, "10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        output, errors = chief.communicate(timeout=300)
        assert chief.returncode == 0, errors[-3000:]
        assert workers[1].wait(timeout=60) == 0
    finally:
        for process in (chief, *workers):
            process.kill()
    assert "channel is not authenticated" in errors          # it listened beyond the loopback address
    _check_complete(root)
    assert "w0" in _workers_of_trials(root)


@pytest.mark.slow
def test_ctrl_c_stops_the_chief_and_every_worker(tmp_path):
    # Far more trials than can finish before the interrupt.
    study_path = write_study(tmp_path, STUDY.format(name="stopped").replace("max_trials: 6", "max_trials: 60"),
                             name="stopped")
    root = tmp_path / "stopped"
    launcher = subprocess.Popen([*RUN, str(study_path), "--results-dir", str(tmp_path), "--workers", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait(lambda: all(_running_trial(root, w) is not None for w in ("worker0", "worker1")), what="both workers")
    pids = [json.loads((root / "workers" / f"{w}.json").read_text())["pid"] for w in ("worker0", "worker1")]
    launcher.send_signal(signal.SIGINT)
    output, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 130, output[-3000:]
    for pid in pids:
        with pytest.raises(ProcessLookupError, match="No such process"):
            os.kill(pid, 0)


@pytest.mark.parametrize("argv, message", [
    (["--role", "worker"], "--role worker needs --chief HOST:PORT"),
    (["--role", "worker", "--chief", "localhost:99999"], "--chief localhost:99999: expected HOST:PORT"),
    (["--role", "worker", "--chief", "h:1", "--worker-id", "my-chief"], "must not contain 'chief'"),
    (["--role", "chief", "--chief", "h:1"], "--chief, --worker-id and --chief-timeout are for --role worker"),
    (["--role", "chief", "--chief-timeout", "5"], "--chief, --worker-id and --chief-timeout are for --role worker"),
    (["--chief-timeout", "5"], "need --role"),
    (["--workers", "2", "--chief-timeout", "5"], "--workers starts its own chief"),
    (["--workers", "1000"], "--workers 1000: at most"),
    (["--workers", "2", "--role", "chief"], "--workers starts its own chief"),
    (["--worker-id", "w"], "need --role"),
    (["--role", "chief", "--worker-timeout", "3"], "--worker-timeout 3: at least 10 seconds"),
])
def test_wrong_distributed_options_are_one_line_errors(tmp_path, capsys, argv, message):
    study_path = write_study(tmp_path, STUDY.format(name="opts"), name="opts")
    assert cli.main(["run", str(study_path), "--results-dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.slow
def test_a_worker_with_no_chief_says_whom_it_waits_for_and_gives_up(tmp_path, capsys):
    from hpstudy.engine.search.distributed.roles import free_port
    study_path = write_study(tmp_path, STUDY.format(name="alone"), name="alone")
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    assert cli.main(["run", str(study_path), "--results-dir", str(tmp_path), "--role", "worker", "--chief", address,
                     "--chief-timeout", "1"]) == 2
    assert time.monotonic() - started < 30
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("worker ") and f"waiting for the chief at {address}" in lines[0], lines
    assert lines[-1] == (f"hpstudy: error: --chief {address}: no chief answered there in 1 s (is it started, at "
                         "this address and port? --chief-timeout waits longer)"), lines
    assert not (tmp_path / "alone").exists()          # nothing was loaded or written


@pytest.mark.slow
def test_a_second_chief_cannot_take_the_port_of_a_running_one(tmp_path):
    """gRPC binds with SO_REUSEPORT by default: two chiefs would share a port and split the workers' calls."""
    import keras_tuner as kt

    from hpstudy.engine.search import adapter
    from hpstudy.engine.search.distributed.roles import free_port
    port = free_port()
    server, _ = adapter.start_server(kt.oracles.RandomSearchOracle(objective="val_loss", max_trials=1), "127.0.0.1",
                                     port)
    try:
        study_path = write_study(tmp_path, STUDY.format(name="second"), name="second")
        done = subprocess.run([*RUN, str(study_path), "--results-dir", str(tmp_path), "--role", "chief", "--bind",
                               f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=240)
    finally:
        server.stop(0)
    assert done.returncode == 2, done.stderr[-2000:]
    # One line: neither gRPC's own log lines nor TensorFlow's.
    assert done.stderr.strip().splitlines() == [f"hpstudy: error: --bind 127.0.0.1:{port}: cannot listen there (is "
                                                "the port in use, or the address not this machine's?)"], done.stderr


MIRRORED = TINY.replace("  batch_size: 32", "  batch_size: 32\n  distribution: mirrored")
# What each trial's fit ran under: Keras's fit, spied on (it runs unchanged) to record the model's distribution.
FITS = """
import json, sys
import keras
fits, fit = [], keras.Model.fit
def recorded(self, *args, **kwargs):
    if keras.backend.backend() == "tensorflow":     # the strategy the model was built in, which its fit uses
        strategy = self.distribute_strategy
        fits.append({"distribution": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
                     "variable": type(self.trainable_variables[0].value).__name__})
    else:
        distribution = keras.distribution.distribution()
        fits.append({"distribution": type(distribution).__name__,
                     "replicas": len(distribution.device_mesh.devices.flatten()) if distribution else 0,
                     "variable": len(self.trainable_variables[0].value.sharding.device_set)})
    return fit(self, *args, **kwargs)
keras.Model.fit = recorded
import hpstudy
study = hpstudy.run(sys.argv[1], results_dir=sys.argv[2])
print(json.dumps({"fits": fits, "statuses": list(study.trials.status)}))
"""


def run_recording_fits(tmp_path, name, backend, **env):
    study_path = write_study(tmp_path, MIRRORED.format(name=name), name=name)
    done = subprocess.run([sys.executable, "-c", FITS, str(study_path), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "KERAS_BACKEND": backend, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_mirrored_trains_each_trial_in_a_mirrored_strategy_under_tensorflow(tmp_path):
    # MirroredStrategy replicates over the GPUs, and over one CPU where there is none (not over CPU cores): here,
    # one replica. What is checked is that each trial's model is built and trained inside the strategy.
    run = run_recording_fits(tmp_path, "mirrored", "tensorflow")
    assert run["statuses"] == ["COMPLETED", "COMPLETED"]
    assert run["fits"] == [{"distribution": "MirroredStrategy", "replicas": 1, "variable": "MirroredVariable"}] * 2


@pytest.mark.slow
def test_mirrored_trains_each_trial_data_parallel_under_jax(tmp_path):
    pytest.importorskip("jax")
    # Two CPU devices, so that the batch is split between two replicas as it would be between two GPUs.
    run = run_recording_fits(tmp_path, "mirrored_jax", "jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert run["statuses"] == ["COMPLETED", "COMPLETED"]
    # Each trial's model (keras-tuner clears Keras's session before each build) has its variables on both devices.
    assert run["fits"] == [{"distribution": "DataParallel", "replicas": 2, "variable": 2}] * 2


# ---------------------------------------------------------------- the role, in one place
def test_keras_tuners_variables_are_the_roles_during_a_run_and_as_they_were_after(monkeypatch):
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "left-over")          # say, from an earlier job's shell
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    before = dict(os.environ)
    worker = distributed.Role(distributed.WORKER, "10.0.0.1", 7941, worker_id="n1-0")
    with distributed.keras_tuner_environment(worker):
        assert {k: os.environ.get(k) for k in distributed.KERAS_TUNER_VARIABLES} == {
            "KERASTUNER_TUNER_ID": "n1-0", "KERASTUNER_ORACLE_IP": "10.0.0.1", "KERASTUNER_ORACLE_PORT": "7941"}
    assert dict(os.environ) == before
    with pytest.raises(KeyError), distributed.keras_tuner_environment(None):
        # A study of its own: no variable left over makes keras-tuner a chief or a worker.
        assert not any(k in os.environ for k in distributed.KERAS_TUNER_VARIABLES)
        raise KeyError("the run failed")
    assert dict(os.environ) == before


@pytest.mark.parametrize("role", [
    distributed.Role(distributed.CHIEF, "0.0.0.0", 7941, worker_timeout=30),
    distributed.Role(distributed.WORKER, "node1", 7941, worker_id="n1-0", chief_timeout=45),
])
def test_the_launcher_starts_each_process_with_its_roles_flags_which_read_back_as_that_role(role):
    command = launcher_module.run_command("s.yaml", role, results_dir="out", max_trials=3, overwrite=True)
    assert command[:4] == RUN
    args = cli._parser().parse_args(command[3:])
    assert (args.study, args.results_dir, args.max_trials, args.epochs, args.overwrite, args.verbose) == (
        "s.yaml", "out", 3, None, True, False)
    assert distributed.from_flags(args.role, bind=args.bind, chief=args.chief, worker_id=args.worker_id,
                                  worker_timeout=args.worker_timeout, chief_timeout=args.chief_timeout) == role


def test_the_heartbeat_tells_a_worker_its_chief_has_finished_and_the_process_goes_on(tmp_path):
    layout = Layout(tmp_path)
    files.write_json(layout.chief_state, {"state": "finished"})    # an earlier run's chief: not this worker's
    with Heartbeat(layout, "w0", every=0.05) as heartbeat:
        time.sleep(0.3)
        assert not heartbeat.chief_finished.is_set()
        files.write_json(layout.chief_state, {"state": "serving"})
        time.sleep(0.3)
        files.write_json(layout.chief_state, {"state": "finished"})
        assert heartbeat.chief_finished.wait(5)
        heartbeat.thread.join(5)
        assert not heartbeat.thread.is_alive()        # it stopped beating; the worker's search ends on the event


class _ChiefOracle(kt.oracles.RandomSearchOracle):
    """A chief's oracle that answers every ask for a trial with `answer`: STOPPED (no more) or IDLE (wait)."""

    answer, asked = "STOPPED", 0

    def create_trial(self, tuner_id):
        self.asked += 1
        return kt.engine.trial.Trial(self.get_space(), status=self.answer)


@contextlib.contextmanager
def _chief_serving(answer):
    """keras-tuner's server of a `_ChiefOracle` on a free loopback port: (oracle, server, port)."""
    oracle = _ChiefOracle(objective="val_loss", max_trials=1)
    oracle.answer, port = answer, distributed.free_port()
    server, _ = adapter.start_server(oracle, "127.0.0.1", port)
    try:
        yield oracle, server, port
    finally:
        server.stop(0)


@pytest.mark.slow
def test_a_worker_run_leaves_the_environment_as_it_was_and_the_next_run_is_a_study_of_its_own(tmp_path, monkeypatch,
                                                                                               capsys):
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "left-over")
    before = dict(os.environ)
    study_path = write_study(tmp_path, STUDY.format(name="twice").replace("max_trials: 6", "max_trials: 1"),
                             name="twice")
    with _chief_serving("STOPPED") as (_, _, port):
        role = distributed.from_flags("worker", chief=f"127.0.0.1:{port}", worker_id="w0")
        hpstudy.run(study_path, results_dir=tmp_path / "worker", role=role)
    assert dict(os.environ) == before
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"worker w0: no more trials to run in {tmp_path / 'worker' / 'twice'}")
    study = hpstudy.run(study_path, results_dir=tmp_path / "alone", epochs=1)
    assert list(study.trials.status) == ["COMPLETED"]
    assert (study.path / "tuner" / "tuner0.json").is_file()      # keras-tuner's own file of a search on its own
    assert dict(os.environ) == before


@pytest.mark.slow
def test_a_worker_whose_chief_has_finished_stops_with_one_line(tmp_path):
    study_path = write_study(tmp_path, STUDY.format(name="over"), name="over")
    layout = Layout(tmp_path / "over")
    with _chief_serving("IDLE") as (oracle, server, port):
        worker = subprocess.Popen([*RUN, str(study_path), "--results-dir", str(tmp_path), "--role", "worker",
                                   "--chief", f"127.0.0.1:{port}", "--worker-id", "w0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: layout.heartbeat("w0").exists(), what="w0's heartbeat")
            files.write_json(layout.chief_state, {"state": "serving"})
            beat = json.loads(layout.heartbeat("w0").read_text())["beat"]
            _wait(lambda: json.loads(layout.heartbeat("w0").read_text())["beat"] >= beat + 2
                  and oracle.asked >= 2, what="w0 to see the chief serving and to ask it for trials")
            server.stop(0)        # gone: keras-tuner's client would wait an hour for it, in a blocking call
            files.write_json(layout.chief_state, {"state": "finished"})
            started = time.monotonic()
            output, errors = worker.communicate(timeout=60)
        finally:
            worker.kill()
    assert worker.returncode == 0, errors[-3000:]
    assert time.monotonic() - started < 15
    assert output.strip().splitlines()[-1] == (
        f"worker w0: the chief has finished the study; no more trials to run in {layout.root}")
    assert "Traceback" not in errors, errors[-3000:]


def test_a_workers_training_stops_at_a_batchs_end_once_its_chief_has_finished():
    finished = threading.Event()
    stop = StopWhenChiefFinished(finished)
    assert copy.deepcopy([stop])[0] is stop           # keras-tuner's copy of each trial's callbacks shares the event
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 2)), np.zeros((8, 1))
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[stop])      # not set: trains on
    batches = []
    finished.set()
    with pytest.raises(ChiefFinished):
        model.fit(x, y, batch_size=2, epochs=3, verbose=0,
                  callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b)),
                             stop])
    assert batches == [0]
