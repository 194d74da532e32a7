"""Heavy imports behind the boundary: Keras (and so TensorFlow) is imported by the first verb that needs it,
without TensorFlow's start-up log lines, so `import hpstudy`, `hpstudy --help` and reports stay light."""
from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
import tempfile

_freeze = False


def freeze_after_keras() -> None:
    """Once Keras is first imported, put every object the process then holds out of the garbage collector's reach.

    For the `hpstudy` command's own process (cli.entry), which holds nothing but the frameworks' half a million
    objects at that point, none ever garbage: Keras and keras-tuner collect garbage around each model they build,
    0.3 s a time on 2 cores with those objects in reach, and the interpreter does at exit (1 s). Not for a user's
    own Python process, whose objects may become garbage later.
    """
    global _freeze
    _freeze = True


def import_quietly(module: str, *, verbose: bool = False):
    """Import `module` (which imports Keras, and so TensorFlow) without TensorFlow's start-up log lines.

    TensorFlow's C++ runtime writes them straight to file descriptor 2 while it loads, before any
    log level applies, so they are caught there and shown only if the import fails.
    """
    first = "keras" not in sys.modules
    if verbose or "tensorflow" in sys.modules:
        imported = importlib.import_module(module)
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        # gRPC's log lines (a port a chief could not bind, a chief a worker lost) say again, in its words, what
        # hpstudy says in one line. Read once, when gRPC starts: so here, before anything imports it.
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        with _native_stderr_caught():
            imported = importlib.import_module(module)
    if first and _freeze and "keras" in sys.modules:
        gc.freeze()
    return imported


@contextlib.contextmanager
def _native_stderr_caught():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
