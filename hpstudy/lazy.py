"""Heavy imports behind the boundary: Keras (and so TensorFlow) is imported by the first verb that needs it,
without TensorFlow's start-up log lines, so `import hpstudy`, `hpstudy --help` and reports stay light."""
from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import sys
import tempfile
import warnings

_freeze = False
_verbose = False      # the `hpstudy` command's --verbose: every framework's lines shown, TensorFlow's start-up too
_quiet = False        # the `hpstudy` command without --verbose: none shown
# The Python loggers of the frameworks: TensorFlow's says when a function is traced again ("retracing"), absl's
# repeats TensorFlow's C++ lines.
FRAMEWORK_LOGGERS = ("tensorflow", "absl", "keras", "keras_tuner", "h5py", "jax")


def freeze_after_keras() -> None:
    """Once Keras is first imported, put every object the process then holds out of the garbage collector's reach.

    For the `hpstudy` command's own process (cli.entry), which holds nothing but the frameworks' half a million
    objects at that point, none ever garbage: Keras and keras-tuner collect garbage around each model they build,
    0.3 s a time on 2 cores with those objects in reach, and the interpreter does at exit (1 s). Not for a user's
    own Python process, whose objects may become garbage later.
    """
    global _freeze
    _freeze = True


def quiet_frameworks(verbose: bool) -> None:
    """For the `hpstudy` command's own process (cli.entry): unless `verbose`, no framework's warning or log line
    reaches stderr (TensorFlow's and absl's log lines, TensorFlow's retracing warnings, keras-tuner's, and the
    RuntimeWarnings scipy and numpy give on nearly identical repeats): hpstudy says what matters in its own lines.
    With `verbose` they are all shown, TensorFlow's start-up lines too. A user's own Python process keeps its
    own warnings and logging settings: the API never changes them."""
    global _verbose, _quiet
    _verbose, _quiet = verbose, not verbose
    if verbose:
        return
    # Read by TensorFlow's C++ runtime and gRPC when they start: set before either is imported.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    if not sys.warnoptions:          # -W or PYTHONWARNINGS: the user asked for warnings; they are theirs
        warnings.simplefilter("ignore")
    _quiet_loggers()


def _quiet_loggers() -> None:
    """Errors only from the frameworks' Python loggers (set again after each import: TensorFlow sets its own)."""
    for name in FRAMEWORK_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def import_quietly(module: str, *, verbose: bool = False):
    """Import `module` (which imports Keras, and so TensorFlow) without TensorFlow's start-up log lines.

    TensorFlow's C++ runtime writes them straight to file descriptor 2 while it loads, before any
    log level applies, so they are caught there and shown only if the import fails.
    """
    first = "keras" not in sys.modules
    verbose = verbose or _verbose
    if verbose or "tensorflow" in sys.modules:
        imported = importlib.import_module(module)
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        # gRPC's log lines (a port a chief could not bind, a chief a worker lost) say again, in its words, what
        # hpstudy says in one line. Read once, when gRPC starts: so here, before anything imports it.
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        with _native_stderr_caught():
            imported = importlib.import_module(module)
    if _quiet:
        _quiet_loggers()         # TensorFlow sets its logger's level when it is imported
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
