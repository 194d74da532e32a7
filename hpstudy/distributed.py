"""Distributed tuning on keras-tuner's own engine: one chief holds the oracle and serves it over gRPC;
workers (on this machine or others sharing the results folder) ask it for trials and run them.

keras-tuner reads the role from KERASTUNER_TUNER_ID ("chief", or any other id for a worker),
KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT. On top of its engine hpstudy adds what keeps a study
from hanging: each worker writes a heartbeat file; the chief gives the trial of a worker that fell
silent to the next worker that asks (a worker restarted under its id gets its own trial back), and
stops serving once every trial has ended.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
import time
from pathlib import Path

from hpstudy import results
from hpstudy.errors import HpstudyError

CHIEF = "chief"
HEARTBEAT_SECONDS = 2.0
DEFAULT_WORKER_TIMEOUT = 120.0    # seconds without a heartbeat before a worker's trial is given to another
MIN_WORKER_TIMEOUT = 10           # five heartbeats: one late write must not cost a worker its trial
DEFAULT_PORT = 7940


def role() -> str | None:
    """"chief", "worker", or None when this process is not part of a distributed study."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    return CHIEF if os.environ.get("KERASTUNER_TUNER_ID") == CHIEF else "worker"


def worker_id() -> str:
    return os.environ.get("KERASTUNER_TUNER_ID", "tuner0")


def parse_address(text: str, flag: str) -> tuple[str, int]:
    """HOST:PORT (or HOST alone, for the default port) -> (host, port); a one-line error naming `flag`."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(DEFAULT_PORT))
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise HpstudyError(f"{flag} {text}: expected HOST:PORT, a port in 1-65535, like 127.0.0.1:{DEFAULT_PORT}")
    return host, int(port)


def configure(role_name: str, address: tuple[str, int], worker: str | None = None) -> None:
    """Set keras-tuner's environment for this process's role (before any tuner is made)."""
    if role_name == "worker" and (not worker or CHIEF in worker):
        raise HpstudyError(f"--worker-id {worker!r}: a worker's id must be non-empty and must not contain 'chief'")
    os.environ.update(KERASTUNER_TUNER_ID=CHIEF if role_name == CHIEF else worker,
                      KERASTUNER_ORACLE_IP=address[0], KERASTUNER_ORACLE_PORT=str(address[1]))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for a chief on this machine)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


CHIEF_PATIENCE_SECONDS = 600    # how long a worker waits for a chief that went away (a restart) before giving up


def patient(client) -> None:
    """Make a worker's oracle client ride out a restart of the chief.

    keras-tuner's client waits for the chief to be reachable before a call, but a call under way when the
    chief dies fails (UNAVAILABLE) and would end the worker: such calls are sent again until the chief is back.
    """
    import grpc

    def retried(call):
        def wrapper(*args, **kwargs):
            deadline = time.monotonic() + CHIEF_PATIENCE_SECONDS
            while True:
                try:
                    return call(*args, **kwargs)
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                        raise
                    time.sleep(1.0)
        return wrapper
    for name in ("get_space", "update_space", "create_trial", "update_trial", "end_trial", "get_trial",
                 "get_best_trials"):
        setattr(client, name, retried(getattr(client, name)))


# ---------------------------------------------------------------- heartbeats
def heartbeat_folder(layout: results.Layout) -> Path:
    return layout.root / "workers"


class Heartbeat:
    """A worker's heartbeat: `workers/<id>.json` rewritten every few seconds from a background thread.

    The file holds a counter, not a time: the chief judges silence by its own clock, so the machines'
    clocks need not agree. It also carries the pid and host, to find the process.
    """

    def __init__(self, layout: results.Layout, name: str, every: float = HEARTBEAT_SECONDS):
        self.path, self.every, self.name = heartbeat_folder(layout) / f"{name}.json", every, name
        self.chief_file = heartbeat_folder(layout) / f"{CHIEF}.json"
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{name}", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()

    def _beat(self):
        beat, chief_seen = 0, False
        while True:
            results.write_json(self.path, {"worker": self.name, "beat": beat, "pid": os.getpid(),
                                           "host": socket.gethostname()})
            beat += 1
            state = (results.read_json(self.chief_file) or {}).get("state")
            if state == "finished" and chief_seen:
                # The chief this worker served has stopped: waiting on it for a trial would wait forever.
                print(f"{self.name}: the chief has finished the study; stopping", file=sys.stderr, flush=True)
                os._exit(0)
            chief_seen |= state in ("starting", "serving")
            if self.stopped.wait(self.every):
                return


class Watchdog:
    """The chief's view of the heartbeats: which workers have been silent for longer than `timeout`."""

    def __init__(self, layout: results.Layout, timeout: float):
        self.folder, self.timeout = heartbeat_folder(layout), timeout
        self.seen: dict[str, tuple[int, float]] = {}     # worker -> (last beat, when it changed, by our clock)

    def silent(self, workers) -> list[str]:
        now, out = time.monotonic(), []
        for name in workers:
            beat = (results.read_json(self.folder / f"{name}.json") or {}).get("beat")
            last = self.seen.get(name)
            if last is None or beat != last[0]:
                self.seen[name] = (beat, now)
            elif now - last[1] > self.timeout:
                out.append(name)
        return out


# ---------------------------------------------------------------- the chief
def chief_starting(layout: results.Layout) -> None:
    """Tell the workers a chief is on its way (a finished study's chief file is from an earlier run)."""
    results.write_json(heartbeat_folder(layout) / f"{CHIEF}.json", {"state": "starting", "pid": os.getpid()})


def serve(oracle, layout: results.Layout, study, progress) -> None:
    """Serve `oracle` to the workers until every trial has ended; report and record trials as they end."""
    import grpc
    from concurrent import futures
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer
    from keras_tuner.src.engine.oracle import synchronized

    from hpstudy import retention, studytuner

    @synchronized
    def release(oracle, worker):
        """Give a silent worker's trial to the next worker that asks."""
        trial = oracle.ongoing_trials.pop(worker, None)
        if trial is not None:
            oracle._retry_queue.append(trial.trial_id)
            oracle.save()
        return trial

    host, port = os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"]
    timeout = float(os.environ.get("HPSTUDY_WORKER_TIMEOUT", DEFAULT_WORKER_TIMEOUT))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))   # the oracle answers one call at a time
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise HpstudyError(f"--bind {host}:{port}: cannot listen there (is the port in use, or the address not "
                           "this machine's?)")
    if not is_loopback(host):
        print(f"warning: the chief listens on {host}:{port}; keras-tuner's channel is not authenticated or "
              "encrypted, so use it only on a network you trust", file=sys.stderr, flush=True)
    chief_file = heartbeat_folder(layout) / f"{CHIEF}.json"
    results.write_json(chief_file, {"state": "serving", "address": f"{host}:{port}", "pid": os.getpid()})
    server.start()
    watchdog, reported = Watchdog(layout, timeout), len(oracle.end_order)
    try:
        while not (servicer.stop_triggered and not oracle.ongoing_trials):
            time.sleep(0.5)
            for worker in watchdog.silent(list(oracle.ongoing_trials)):
                trial = release(oracle, worker)
                if trial is not None:
                    print(f"worker {worker} silent for over {timeout:g}s: trial "
                          f"{results.trial_number(trial.trial_id)} goes to the next worker", flush=True)
            if len(oracle.end_order) > reported:
                for trial_id in oracle.end_order[reported:]:
                    studytuner.report_trial(progress, oracle.trials[trial_id])
                reported = len(oracle.end_order)
                retention.prune_checkpoints(oracle, layout, study.search.keep_checkpoints)
                results.write_table(layout)
    finally:
        server.stop(grace=2)
    results.write_json(chief_file, {"state": "finished", "address": f"{host}:{port}", "pid": os.getpid()})
