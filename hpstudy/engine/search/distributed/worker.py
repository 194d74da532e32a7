"""A worker's side of a distributed study: its heartbeat, which the chief watches, and which notices when the
chief it served has finished the study (`ChiefFinished` then ends the worker's search)."""
from __future__ import annotations

import os
import socket
import sys
import threading
import time

from hpstudy import files
from hpstudy.engine.search.distributed.roles import HEARTBEAT_SECONDS, Role
from hpstudy.errors import HpstudyError
from hpstudy.results.layout import Layout

WAITING_SAID_EVERY = 5.0         # seconds between a waiting worker's lines
CALL_SLICE_SECONDS = 0.5         # a worker waiting on a call to the chief looks this often whether it has finished


class ChiefFinished(BaseException):
    """Raised in a worker's search once the chief it served has finished the study: no trial will come.

    A BaseException, as KeyboardInterrupt is: keras-tuner fails a trial over any Exception its training or its
    calls to the chief raise, and this is no trial's failure.
    """


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


class StoppableStub:
    """A gRPC stub to the chief whose calls are waited for in slices: once `chief_finished` is set, the call is
    cancelled and ChiefFinished raised, where a blocking call would wait out its own timeout (keras-tuner's: an
    hour) for a chief that will never answer."""

    def __init__(self, stub, chief_finished: threading.Event):
        self.stub, self.chief_finished = stub, chief_finished

    def __getattr__(self, name):
        method = getattr(self.stub, name)

        def call(request, **kwargs):
            """The call, made as a future and waited for in slices of CALL_SLICE_SECONDS."""
            import grpc
            future = method.future(request, **kwargs)
            while True:
                try:
                    return future.result(timeout=CALL_SLICE_SECONDS)    # a failed call raises its RpcError
                except grpc.FutureTimeoutError:
                    if self.chief_finished.is_set():
                        future.cancel()
                        raise ChiefFinished("the chief has finished the study") from None
        return call


class Heartbeat:
    """A worker's heartbeat: `workers/<id>.json` rewritten every few seconds from a background thread.

    The file holds a counter, not a time: the chief judges silence by its own clock, so the machines'
    clocks need not agree. It also carries the pid and host, to find the process. When the chief this worker
    served has finished the study, the heartbeat sets `chief_finished` and stops; the worker's calls to the
    chief and its training watch that event and raise ChiefFinished (waiting on that chief would wait forever).
    """

    def __init__(self, layout: Layout, name: str, every: float = HEARTBEAT_SECONDS):
        self.path, self.every, self.name = layout.heartbeat(name), every, name
        self.chief_file = layout.chief_state
        self.stopped = threading.Event()
        self.chief_finished = threading.Event()
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
                # A chief that finished before this worker first saw it start is an earlier run's, not this one's.
                self.chief_finished.set()
                return
            chief_seen |= state in ("starting", "serving")
            if self.stopped.wait(self.every):
                return
