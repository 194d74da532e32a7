"""Ctrl-C that always stops a run, at once and cleanly: never lost, never a failed trial. While a search trains,
hpstudy's handler only notes the request, and the search stops itself at the next safe point: the end of a batch,
or between two trials.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading

import keras

from hpstudy import files

FORCE_AFTER = 3           # presses while deferred that raise at once


class _State:
    requested = 0         # Ctrl-C presses during this run
    deferring = 0         # nesting depth of `deferred()`


# Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread happens to be. During a search
# that is often a garbage-collection callback (Keras and keras-tuner collect around every model build), where
# Python prints "Exception ignored" and goes on as if nothing happened; or TensorFlow's C++ code, which turns it
# into a RuntimeError that keras-tuner records as the trial's failure: hence the deferring. Outside the deferred
# stretches (loading data, saving the best model) it raises at once as Python's does; if that is swallowed (and
# its "Exception ignored" silenced), the note is still there and the next safe point, or the end of the run,
# stops it. The FORCE_AFTER-th Ctrl-C while deferred raises at once, for a batch that never ends.
def _on_sigint(signum, frame):
    _State.requested += 1
    if not _State.deferring or _State.requested >= FORCE_AFTER:
        raise KeyboardInterrupt


@contextlib.contextmanager
def handled():
    """Install hpstudy's SIGINT handler for a run (main thread only), restoring the previous one after."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is _on_sigint:
        yield               # not ours to install, or installed already by the run this one is part of
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    hooks = sys.unraisablehook, sys.excepthook

    def said_otherwise(exc) -> bool:
        # A press is noted: the next safe point stops. A full disk is said in one line by the run, where h5py would
        # repeat it for every object it frees (through both hooks).
        return isinstance(exc, KeyboardInterrupt) or files.no_room(exc) is not None
    _State.requested, _State.deferring = 0, 0
    sys.unraisablehook = lambda info: said_otherwise(info.exc_value) or hooks[0](info)
    sys.excepthook = lambda kind, exc, tb: said_otherwise(exc) or hooks[1](kind, exc, tb)
    try:
        yield
        check()                 # a press swallowed after the last safe point still ends the run as interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook, sys.excepthook = hooks


@contextlib.contextmanager
def deferred():
    """A stretch (training, a trial's bookkeeping) that Ctrl-C stops only at its safe points (`check`)."""
    _State.deferring += 1
    try:
        yield
    except Exception as err:
        if _State.requested:    # the interrupt, turned into something else by the code it landed in
            raise KeyboardInterrupt from err
        raise
    finally:
        _State.deferring -= 1
    check()


def requested() -> bool:
    """Whether Ctrl-C was pressed during this run."""
    return _State.requested > 0


def check() -> None:
    """A safe point: raise KeyboardInterrupt if Ctrl-C was pressed."""
    if _State.requested:
        raise KeyboardInterrupt


class StopOnInterrupt(keras.callbacks.Callback):
    """The safe point of training: the end of each batch (and of each epoch, for evaluation's long ones)."""

    def on_train_batch_end(self, batch, logs=None):
        """Stop if Ctrl-C was pressed."""
        check()

    def on_test_batch_end(self, batch, logs=None):
        """Stop if Ctrl-C was pressed."""
        check()

    def on_epoch_end(self, epoch, logs=None):
        """Stop if Ctrl-C was pressed."""
        check()
