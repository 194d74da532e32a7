"""The chief of a distributed study: it holds the oracle and serves it to the workers over keras-tuner's gRPC
engine until every trial has ended. On top of that engine hpstudy keeps a study from hanging: it watches the
workers' heartbeats and gives the trial of a worker that fell silent to the next worker that asks (a worker
restarted under its id gets its own trial back).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Callable

from hpstudy import files
from hpstudy.engine.search import adapter
from hpstudy.engine.search.distributed.roles import Role, is_loopback
from hpstudy.errors import HpstudyError
from hpstudy.results.layout import Layout, trial_number


class Watchdog:
    """The chief's view of the heartbeats: which workers have been silent for longer than `timeout`."""

    def __init__(self, layout: Layout, timeout: float):
        self.layout, self.timeout = layout, timeout
        self.seen: dict[str, tuple[object, float]] = {}  # worker -> (last beat, when it changed, by our clock)

    def silent(self, workers) -> list[str]:
        """Those of `workers` whose heartbeat has not changed for longer than the timeout."""
        now, out = time.monotonic(), []
        for name in workers:
            beat = (files.read_json(self.layout.heartbeat(name)) or {}).get("beat")
            last = self.seen.get(name)
            if last is None or beat != last[0]:
                self.seen[name] = (beat, now)
            elif now - last[1] > self.timeout:
                out.append(name)
        return out


def chief_starting(layout: Layout) -> None:
    """Tell the workers a chief is on its way (a finished study's chief file is from an earlier run)."""
    files.write_json(layout.chief_state, {"state": "starting", "pid": os.getpid()})


def serve(oracle, layout: Layout, role: Role, *, on_ended: Callable[[list], None]) -> None:
    """Serve `oracle` to the workers until every trial has ended; `on_ended(trials)` as trials end."""
    started = adapter.start_server(oracle, role.host, role.port)
    if started is None:
        raise HpstudyError(f"--bind {role.address}: cannot listen there (is the port in use, or the address not "
                           "this machine's?)")
    server, servicer = started
    if not is_loopback(role.host):
        print(f"warning: the chief listens on {role.address}; keras-tuner's channel is not authenticated or "
              "encrypted, so use it only on a network you trust", file=sys.stderr, flush=True)
    files.write_json(layout.chief_state, {"state": "serving", "address": role.address, "pid": os.getpid()})
    watchdog, reported = Watchdog(layout, role.worker_timeout), len(oracle.end_order)
    try:
        # Finished once a worker was told there are no more trials and no trial is left running: not while a
        # trial waits for a worker to run it again (its own died), whether or not any worker is alive now.
        while not (servicer.stop_triggered and oracle.search_over()):
            time.sleep(0.5)
            for worker in watchdog.silent(list(oracle.ongoing_trials)):
                trial = oracle.release(worker)
                if trial is not None:
                    print(f"worker {worker} silent for over {role.worker_timeout:g}s: trial "
                          f"{trial_number(trial.trial_id)} goes to the next worker", flush=True)
            if len(oracle.end_order) > reported:
                on_ended([oracle.trials[trial_id] for trial_id in oracle.end_order[reported:]])
                reported = len(oracle.end_order)
    finally:
        server.stop(grace=2)
    files.write_json(layout.chief_state, {"state": "finished", "address": role.address, "pid": os.getpid()})
