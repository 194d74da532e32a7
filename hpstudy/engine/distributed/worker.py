"""A worker's side of a distributed study: its heartbeat, which the chief watches, and which notices when the
chief it served has finished the study."""
from __future__ import annotations

import os
import socket
import sys
import threading
import time

from hpstudy.engine.distributed.roles import HEARTBEAT_SECONDS, Role
from hpstudy.errors import HpstudyError
from hpstudy.results import files
from hpstudy.results.layout import Layout


WAITING_SAID_EVERY = 5.0         # seconds between a waiting worker's lines


def wait_for_chief(role: Role, stream=None) -> None:
    """Return once the chief's gRPC server answers at `role.address`, saying every few seconds whom the worker
    waits for; give up with one line after `role.chief_timeout` seconds (keras-tuner alone waits an hour, silent)."""
    import grpc
    stream = stream or sys.stderr
    channel = grpc.insecure_channel(role.address)
    started = time.monotonic()
    try:
        while True:
            left = role.chief_timeout - (time.monotonic() - started)
            if left <= 0:
                raise HpstudyError(f"--chief {role.address}: no chief answered there in {role.chief_timeout:g} s "
                                   "(is it started, at this address and port? --chief-timeout waits longer)")
            try:
                grpc.channel_ready_future(channel).result(timeout=min(WAITING_SAID_EVERY, left))
                return
            except grpc.FutureTimeoutError:
                print(f"worker {role.worker_id}: waiting for the chief at {role.address} "
                      f"({time.monotonic() - started:.0f} s of {role.chief_timeout:g})", file=stream, flush=True)
    finally:
        channel.close()


class Heartbeat:
    """A worker's heartbeat: `workers/<id>.json` rewritten every few seconds from a background thread.

    The file holds a counter, not a time: the chief judges silence by its own clock, so the machines'
    clocks need not agree. It also carries the pid and host, to find the process.
    """

    def __init__(self, layout: Layout, name: str, every: float = HEARTBEAT_SECONDS):
        self.path, self.every, self.name = layout.heartbeat(name), every, name
        self.chief_file = layout.chief_state
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
            files.write_json(self.path, {"worker": self.name, "beat": beat, "pid": os.getpid(),
                                         "host": socket.gethostname()})
            beat += 1
            state = (files.read_json(self.chief_file) or {}).get("state")
            if state == "finished" and chief_seen:
                # The chief this worker served has stopped: waiting on it for a trial would wait forever.
                print(f"{self.name}: the chief has finished the study; stopping", file=sys.stderr, flush=True)
                os._exit(0)
            chief_seen |= state in ("starting", "serving")
            if self.stopped.wait(self.every):
                return
