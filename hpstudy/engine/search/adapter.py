"""The one adapter over keras-tuner: every private name of keras-tuner that hpstudy relies on is used here,
and nowhere else, each use naming the behaviour it relies on. It holds `StudyOracle`, mixed into each of
keras-tuner's oracles; `StudyTunerBase`, mixed into each tuner; the grid oracle made resumable; the chief's gRPC
server; and the registry of the five tuners."""
from __future__ import annotations

import inspect
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import keras_tuner as kt
from keras_tuner.src import config as kt_config  # 1.4: DEBUG, whether failed trials print tracebacks

from hpstudy import files
from hpstudy.engine.search import design
from hpstudy.engine.search.distributed import roles
from hpstudy.engine.search.distributed.roles import Role, is_chief, is_worker
from hpstudy.engine.search.distributed.worker import ChiefFinished, StoppableStub
from hpstudy.errors import ResultsError
from hpstudy.results import layout as layout_module, trials as trials_module
from hpstudy.results.status import TrialStatus
from hpstudy.text import exception_line

Trial = kt.engine.trial.Trial
MixinBase: Any = object     # hpstudy's mixins' base to a type checker: they go before keras-tuner's untyped classes
# 1.4: the statuses of a trial keras-tuner never runs again (it queues an INVALID one again, while retries last).
FINAL = (TrialStatus.COMPLETED, TrialStatus.FAILED)
# What reloading a damaged tuner folder says to do (keras-tuner's own files cannot be repaired by hand).
RELOAD_HINT = ("nothing was changed; restore it, or run with --overwrite to start the study over, or use another "
               "--results-dir to keep this one")
# What reloading a keras-tuner state file may raise when its content is of the wrong shape.
RELOAD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError)
# The calls of keras-tuner's OracleClient a worker makes; each is sent again while the chief restarts.
IDLE_WAIT_SECONDS = 1.0    # a worker told to wait for a trial asks again after this long
CLIENT_CALLS = ("get_space", "update_space", "create_trial", "update_trial", "end_trial", "get_trial",
                "get_best_trials")


def show_tracebacks(show: bool) -> None:
    """Whether keras-tuner prints the traceback of each failed trial (the reason is in the trials table anyway)."""
    kt_config.DEBUG = show


# ---------------------------------------------------------------- the oracle
class StudyOracle(MixinBase):
    """Mixed into each keras-tuner oracle (see `oracle_class`): state files written atomically, hpstudy's failure
    limit in place of keras-tuner's, the repair of state left by a kill, a silent worker's trial released, and the
    trials whose checkpoints a search in progress still needs."""

    max_failed_trials = 2**31       # search.max_failed_trials, set by the tuner that owns this oracle
    serves_workers = False          # the chief's oracle of a distributed study, set by `make_tuner` from the Role

    def save(self):
        # 1.4: Oracle.save -> Stateful.save -> utils.save_json truncates oracle.json, then writes it: a process
        # killed in between leaves a file that refuses to reload. Written to a temporary file and renamed instead.
        """Save the state atomically (see the comment inside)."""
        files.write_text(Path(self._get_oracle_fname()), json.dumps(self.get_state()))

    def _save_trial(self, trial):
        # 1.4: Oracle._save_trial writes trial_<id>/trial.json through the same utils.save_json.
        folder = Path(self._get_trial_dir(trial.trial_id))
        files.write_text(folder / layout_module.TUNER_TRIAL_FILE, json.dumps(trial.get_state()))

    def _check_consecutive_failures(self):
        # 1.4: end_trial calls this, and it raises out of the oracle after max_consecutive_failed_trials failures
        # in a row, before the trial is saved. hpstudy's search.max_failed_trials (create_trial below) replaces it.
        return None

    @kt.synchronized
    def create_trial(self, tuner_id):
        """keras-tuner's next trial, or a STOPPED one (no more trials) once `max_failed_trials` have failed; a
        trial that has finished is never handed out again."""
        if tuner_id not in self.ongoing_trials and len(self.failed_trials()) >= self.max_failed_trials:
            self.tuner_ids.discard(tuner_id)
            return Trial(self.get_space(), status=TrialStatus.STOPPED)
        # 1.4: _retry_queue holds the trials to run again. One given to another worker when its own fell silent,
        # then finished by the first after all, is dropped from it.
        self._retry_queue[:] = [t for t in self._retry_queue if self.trials[t].status not in FINAL]
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.STOPPED and self.held_elsewhere(tuner_id):
            # No new trial, but another worker still runs one: should it die, the watchdog gives that trial to the
            # next worker that asks. A worker told STOPPED leaves for good, so it is told to wait (IDLE) instead,
            # and stays one of the chief's workers (1.4: create_trial dropped it from tuner_ids on STOPPED).
            self.tuner_ids.add(tuner_id)
            return Trial(self.get_space(), status=TrialStatus.IDLE)
        return trial

    def held_elsewhere(self, tuner_id: str) -> bool:
        """Whether a worker other than `tuner_id` holds a running trial."""
        return any(worker != tuner_id for worker in self.ongoing_trials)

    def search_over(self) -> bool:
        """Whether a chief may call the study finished: no trial held by a worker, and none waiting to run again
        (a released or reloaded trial), unless the failure limit stopped the search."""
        if self.ongoing_trials:
            return False
        return not self._retry_queue or len(self.failed_trials()) >= self.max_failed_trials

    def failed_trials(self) -> list:
        """The trials that failed, in no particular order."""
        return [t for t in self.trials.values() if t.status == TrialStatus.FAILED]

    def reload(self):
        """keras-tuner's reload, then the repair of state a kill left (see `_reconcile`). A damaged state file (a
        trial's trial.json, oracle.json) is a ResultsError naming it, before anything is changed."""
        # 1.4: Oracle.reload loads every trial_*/trial.json (Trial.load), then oracle.json (set_state).
        for path in sorted(Path(self._project_dir).glob(f"trial_*/{layout_module.TUNER_TRIAL_FILE}")):
            record = trials_module.read_tuner_trial(path)
            _reloaded(path, lambda record=record: Trial.from_state(record))
        oracle_file = Path(self._get_oracle_fname())
        files.read_record(oracle_file, dict, hint=RELOAD_HINT)
        _reloaded(oracle_file, super().reload)
        self._reconcile(chief=self.serves_workers)

    def _reconcile(self, *, chief: bool) -> None:
        """Repair an oracle reloaded after its process was killed, possibly between two of its state files.

        keras-tuner queues every trial that was running to run again. Of those, a trial whose trial.json says it
        finished (the kill came before oracle.json was saved) is ended instead, so it is not run twice; a trial
        saved as running that oracle.json never recorded is queued too, so it is not lost. A restarted chief gives
        each worker back the trial it is still running (the watchdog reclaims those of workers that are gone).
        """
        for trial_id in list(self._retry_queue):                 # 1.4: reload() put every ongoing trial here
            if self.trials[trial_id].status in FINAL:
                self._retry_queue.remove(trial_id)
                if trial_id not in self.end_order:
                    self.end_order.append(trial_id)
        if chief:
            # 1.4: reload() emptied ongoing_trials; oracle.json still has them, by worker.
            saved = (files.read_json(Path(self._get_oracle_fname())) or {}).get("ongoing_trials", {})
            for worker, trial_id in saved.items():
                if trial_id in self._retry_queue:
                    self._retry_queue.remove(trial_id)
                    self.ongoing_trials[worker] = self.trials[trial_id]
        held = {t.trial_id for t in self.ongoing_trials.values()} | set(self._retry_queue)
        for trial_id, trial in self.trials.items():
            if trial.status == TrialStatus.RUNNING and trial_id not in held and trial_id not in self.end_order:
                self._retry_queue.append(trial_id)

    @kt.synchronized
    def release(self, worker: str):
        """Give a silent worker's trial to the next worker that asks; returns that trial, or None."""
        trial = self.ongoing_trials.pop(worker, None)
        if trial is not None:
            self._retry_queue.append(trial.trial_id)
            self.save()
        return trial

    def still_needed(self) -> set[str]:
        """Ids of the trials a search in progress may still load weights from: running, queued to run again,
        or (Hyperband) in a bracket in progress, whose next round continues from their weights."""
        needed = {t.trial_id for t in self.ongoing_trials.values()} | set(self._retry_queue)
        for bracket in getattr(self, "_brackets", []):      # 1.4: HyperbandOracle's brackets, rounds of {"id": ...}
            for round_ in bracket["rounds"]:
                needed |= {entry["id"] for entry in round_}
        return needed


class ResumableGridSearchOracle(kt.oracles.GridSearchOracle):
    """keras-tuner's grid oracle, with its walk through the grid saved in oracle.json.

    The stock oracle keeps that walk (which trials still have a successor to propose, and the grid order of the
    trials) only in memory, so a reloaded grid search stops at once.
    """

    def get_state(self):
        """keras-tuner's state, with the walk through the grid."""
        state = super().get_state()
        # 1.4: _ordered_ids is a linked list (_memory, _next_index; None is its head); _populate_next a list of ids.
        order, index = [], self._ordered_ids._next_index[None]
        while index is not None:
            order.append(self._ordered_ids._memory[index])
            index = self._ordered_ids._next_index[index]
        state["grid"] = {"populate_next": list(self._populate_next), "order": order}
        return state

    def set_state(self, state):
        """keras-tuner's state, with the walk through the grid restored."""
        super().set_state(state)
        grid = state.get("grid", {"populate_next": [], "order": []})
        self._populate_next = list(grid["populate_next"])
        self._ordered_ids: Any = type(self._ordered_ids)()
        for trial_id in grid["order"]:
            self._ordered_ids.insert(trial_id)


# ---------------------------------------------------------------- the tuner
class PatientClient:
    """A worker's client to the chief that rides out a restart of the chief, and stops once the chief has finished.

    keras-tuner's client waits for the chief to be reachable before a call, but a call under way when the chief
    dies fails (UNAVAILABLE) and would end the worker: such calls are sent again until the chief is back. Every
    wait (a call, a pause between two) ends with ChiefFinished as soon as `chief_finished` is set (by the
    worker's heartbeat), since a chief that has finished the study never answers again.
    """

    def __init__(self, client, patience: float = roles.DEFAULT_CHIEF_TIMEOUT,
                 chief_finished: threading.Event | None = None):
        self.client, self.patience = client, patience
        self.chief_finished = chief_finished if chief_finished is not None else threading.Event()
        # 1.4: OracleClient.stub, whose every call waits (wait_for_ready) up to an hour for a chief that is gone.
        client.stub = StoppableStub(client.stub, self.chief_finished)

    def __getattr__(self, name):
        call = getattr(self.client, name)
        if name not in CLIENT_CALLS:
            return call

        def retried(*args, **kwargs):
            """The call, sent again while the chief is unavailable (for up to `patience` seconds)."""
            import grpc
            deadline = time.monotonic() + self.patience
            while True:
                self._pause(0)
                try:
                    answer = call(*args, **kwargs)
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                        raise
                    self._pause(1.0)
                    continue
                if name == "create_trial" and answer.status == TrialStatus.IDLE:
                    # 1.4: BaseTuner.search asks again at once after an IDLE trial; a second between two asks
                    # keeps a waiting worker from keeping the chief busy.
                    self._pause(IDLE_WAIT_SECONDS)
                return answer
        return retried

    def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or raise ChiefFinished at once when the chief has finished."""
        if self.chief_finished.wait(seconds):
            raise ChiefFinished("the chief has finished the study")


class StudyTunerBase(MixinBase):
    """Mixed into each keras-tuner tuner, below hpstudy's own behaviour (`engine.search.tuner.StudyTuner`): its own
    state file written atomically, a worker's client to the chief made patient (and stopped once that chief has
    finished), the trial's checkpoint file.

    `role` (None: a study of its own) is this process's part in a distributed study; keras-tuner reads the same
    from its environment variables, which the run sets from that role (`roles.keras_tuner_environment`).
    `chief_finished`: a worker's heartbeat's event (see `PatientClient`).
    """
    def __init__(self, oracle, hypermodel, *, role: Role | None = None,
                 chief_finished: threading.Event | None = None, **kwargs):
        self.role = role
        if role is None and kwargs.get("directory") and kwargs.get("project_name") and not kwargs.get("overwrite"):
            _check_tuner_file(Path(kwargs["directory"]) / kwargs["project_name"])
        # kt.Tuner's own constructor, also under Hyperband: its constructor only builds the oracle given here.
        kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)
        _check_environment(role, self)
        if is_worker(role):     # 1.4: BaseTuner.__init__ has just replaced the oracle by an OracleClient
            self.oracle: Any = PatientClient(self.oracle, role.chief_timeout, chief_finished)

    def save(self):
        # 1.4: BaseTuner.save saves the oracle (not on a worker), then the tuner's own state with utils.save_json.
        """Save the state atomically (see the comment inside)."""
        if not is_worker(self.role):
            self.oracle.save()
        files.write_text(Path(self._get_tuner_fname()), json.dumps(self.get_state()))

    def reload(self):
        # 1.4: BaseTuner.reload reloads the oracle (not on a worker), then the tuner's own state (tuner0.json).
        """keras-tuner's reload; a damaged state file is a ResultsError naming it, before anything is changed."""
        tuner_file = Path(self._get_tuner_fname())
        files.read_record(tuner_file, dict, hint=RELOAD_HINT)
        _reloaded(tuner_file, super().reload)

    def checkpoint_file(self, trial_id) -> str:
        """The file of a trial's kept weights, its best epoch's unless search.checkpoint_epoch is last (1.4:
        Tuner._get_checkpoint_fname; SaveBestEpoch writes it at the end of each better epoch)."""
        return self._get_checkpoint_fname(trial_id)


def _check_environment(role: Role | None, tuner) -> None:
    """keras-tuner must be what `role` says (it decides from its environment variables): a tuner made outside
    `roles.keras_tuner_environment(role)` would search on its own where it should ask a chief, or the reverse."""
    from keras_tuner.src.distribute import oracle_client  # 1.4: a worker's oracle is an OracleClient
    # 1.4: BaseTuner.tuner_id is KERASTUNER_TUNER_ID, "tuner0" without it.
    expected = role.environment()["KERASTUNER_TUNER_ID"] if role is not None else "tuner0"
    if tuner.tuner_id != expected or is_worker(role) != isinstance(tuner.oracle, oracle_client.OracleClient):
        raise RuntimeError(f"keras-tuner's environment does not make this process "
                           f"{role.name if role is not None else 'a search of its own'}: make the tuner inside "
                           "roles.keras_tuner_environment(role)")


def _check_tuner_file(project: Path) -> None:
    """Refuse a project whose trials keras-tuner would overwrite: 1.4's BaseTuner reloads only when the tuner's
    own state file (tuner0.json) exists, and otherwise starts again from trial 0 over the saved trials. Not for a
    distributed study: its workers start without a state file of their own."""
    tuner_file = project / "tuner0.json"     # 1.4: Tuner._get_tuner_fname with KERASTUNER_TUNER_ID unset
    saved = (project / "oracle.json").exists() or any(project.glob(f"trial_*/{layout_module.TUNER_TRIAL_FILE}"))
    if saved and not os.path.lexists(tuner_file):
        raise ResultsError(f"{tuner_file}: missing, while {project} holds trials; {RELOAD_HINT}")


def _reloaded(path: Path, reload) -> None:
    """Run keras-tuner's `reload` of the state file `path`; what it cannot make sense of is a ResultsError naming
    the file (and the way out), not a traceback or a blame on the study file."""
    try:
        reload()
    except RELOAD_ERRORS as err:
        raise files.damaged(path, f"is corrupt (keras-tuner cannot reload it: {exception_line(err, with_class=True)})",
                            RELOAD_HINT) from None


# ---------------------------------------------------------------- the registry: a study's tuner -> (tuner, oracle)
TUNERS = {
    "random": (kt.Tuner, kt.oracles.RandomSearchOracle),
    "grid": (kt.Tuner, ResumableGridSearchOracle),
    "hyperband": (kt.Hyperband, kt.oracles.HyperbandOracle),   # its run_trial sets each trial's epochs
    "bayesian": (kt.Tuner, kt.oracles.BayesianOptimizationOracle),
    "design": (kt.Tuner, design.DesignOracle),                  # the question balanced, the rest quasi-random
}


def objective(name: str, minimize: bool):
    """keras-tuner's objective `name` with the study's declared direction (keras-tuner would infer one itself)."""
    return kt.Objective(name, "min" if minimize else "max")


def arguments(name: str) -> dict[str, inspect.Parameter]:
    """Every argument of the tuner `name`: its oracle's and kt.Tuner's, by name."""
    params = dict(inspect.signature(kt.Tuner.__init__).parameters)
    params.update(inspect.signature(TUNERS[name][1].__init__).parameters)
    return params


def make_tuner(name: str, behaviour: type, *, max_failed_trials: int, role: Role | None = None, **kwargs):
    """The tuner `name` with `behaviour` (a mixin) on top, and its oracle a `StudyOracle`: `kwargs` go to the
    oracle where it takes them, else to the tuner. With a `role`, call it inside `keras_tuner_environment(role)`."""
    tuner_base, oracle_base = TUNERS[name]
    oracle_params = inspect.signature(oracle_base.__init__).parameters
    oracle_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in oracle_params}
    oracle = type(f"Study{oracle_base.__name__}", (StudyOracle, oracle_base), {})(**oracle_kwargs)
    oracle.max_failed_trials = max_failed_trials
    oracle.serves_workers = is_chief(role)       # before the tuner reloads it: a restarted chief's repair differs
    tuner_class = type(f"Study{name.title()}Tuner", (behaviour, StudyTunerBase, tuner_base), {})
    return tuner_class(oracle=oracle, role=role, **kwargs)


# ---------------------------------------------------------------- the chief's server
def start_server(oracle, host: str, port: int):
    """keras-tuner's gRPC service of `oracle`, listening on host:port: (server, servicer), or None when it cannot
    listen there. `servicer.stop_triggered` turns true once a worker was told there are no more trials."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos  # 1.4: the generated gRPC service
    from keras_tuner.src.distribute.oracle_chief import OracleServicer  # 1.4: serves an oracle's calls

    # The oracle answers one call at a time. No SO_REUSEPORT (gRPC's default): a second chief on the same port
    # must fail to bind, not share the port and take half the workers' calls.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1), options=[("grpc.so_reuseport", 0)])
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        return None
    server.start()
    return server, servicer


# ---------------------------------------------------------------- what this module relies on
# Each use above names the keras-tuner behaviour it relies on, as of 1.4.7 and 1.4.8 (the versions hpstudy is tested
# with); a test fails loudly, naming the names this lists, when an upgrade removes one.
def missing_private_names() -> list[str]:
    """The private names of keras-tuner used above that the installed keras-tuner lacks (none, when it works)."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief, oracle_client
    oracle = kt.oracles.RandomSearchOracle(objective="val_loss", max_trials=1)
    probe = Role(roles.WORKER, "127.0.0.1", 1, worker_id="probe")
    with roles.keras_tuner_environment(probe):          # it connects on its first call
        client = oracle_client.OracleClient(oracle)
    grid = kt.oracles.GridSearchOracle(objective="val_loss", max_trials=1)
    hyperband = kt.oracles.HyperbandOracle(objective="val_loss", max_epochs=2)
    wanted = {
        "config.DEBUG": (kt_config, "DEBUG"), "distribute.oracle_client.OracleClient.stub": (client, "stub"),
        "protos.get_service_grpc": (protos, "get_service_grpc"),
        "distribute.oracle_chief.OracleServicer": (oracle_chief, "OracleServicer"),
        **{f"Oracle.{name}": (oracle, name) for name in (
            "_get_oracle_fname", "_get_trial_dir", "_save_trial", "_check_consecutive_failures", "_retry_queue",
            "ongoing_trials", "end_order", "tuner_ids")},
        "HyperbandOracle._brackets": (hyperband, "_brackets"),
        **{f"GridSearchOracle.{name}": (grid, name) for name in ("_ordered_ids", "_populate_next")},
        "Tuner._get_tuner_fname": (kt.Tuner, "_get_tuner_fname"),
        "Tuner._get_checkpoint_fname": (kt.Tuner, "_get_checkpoint_fname"),
    }
    missing = [label for label, (owner, name) in wanted.items() if not hasattr(owner, name)]
    if hasattr(grid, "_ordered_ids"):
        missing += [f"GridSearchOracle._ordered_ids.{n}" for n in ("_memory", "_next_index", "insert")
                    if not hasattr(grid._ordered_ids, n)]
    return missing
