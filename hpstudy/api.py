"""The Python API: verbs with keyword-only options (re-exported by `hpstudy`)."""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

from hpstudy import results
from hpstudy import spec as spec_module
from hpstudy.errors import ResultsError
from hpstudy.spec import StudySpec


def import_quietly(module: str, *, verbose: bool = False):
    """Import `module` (which imports Keras, and so TensorFlow) without TensorFlow's start-up log lines.

    TensorFlow's C++ runtime writes them straight to file descriptor 2 while it loads, before any
    log level applies, so they are caught there and shown only if the import fails.
    """
    if verbose or "tensorflow" in sys.modules:
        return importlib.import_module(module)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _native_stderr_caught():
        return importlib.import_module(module)


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


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study file (no Keras needed)."""
    return spec_module.load(path)


def run(study: str | Path | StudySpec, *, results_dir: str | Path = "results", max_trials: int | None = None,
        epochs: int | None = None, overwrite: bool = False, verbose: bool = False, stream=None) -> "Study":
    """Run a study's search, resuming its results folder if it exists; returns the finished Study.

    `max_trials` and `epochs` override the study file; `overwrite` starts the folder over.
    """
    if not isinstance(study, StudySpec):
        study = spec_module.load(study)
    if max_trials is not None or epochs is not None:     # checked like the file's own values
        raw = study.to_dict()
        raw["search"]["max_trials"] = raw["search"]["max_trials"] if max_trials is None else max_trials
        raw["train"]["epochs"] = raw["train"]["epochs"] if epochs is None else epochs
        study = spec_module.from_dict(raw, source=study.source)
    tuning = import_quietly("hpstudy.tuning", verbose=verbose)
    layout = tuning.run(study, results_dir=results_dir, overwrite=overwrite, verbose=verbose, stream=stream)
    return Study(layout.root)


class Study:
    """A study's results folder, read on demand (a running study can be read too)."""

    def __init__(self, path: str | Path):
        self.layout = results.open_folder(path)
        self.path = self.layout.root
        self.spec = results.study_of(self.layout)

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: id, status, each searched value (dotted names), metrics, seconds, size."""
        return results.read_trials(self.layout)

    @property
    def best(self) -> dict:
        """The best trial: id, score, hyperparameters and test-set metrics (empty before any trial completes)."""
        return results.read_best(self.layout)

    @property
    def best_hyperparameters(self) -> dict:
        return self.best.get("hyperparameters", {})

    def history(self, trial_id: int | str, execution: int = 0) -> pd.DataFrame:
        """Per-epoch metrics of one trial (its number, as in the trials table)."""
        path = self.layout.trial(trial_id) / f"history_{execution}.csv"
        if not path.exists():
            raise ResultsError(f"{path}: no history for trial {trial_id!r} (execution {execution})")
        return pd.read_csv(path)

    def __repr__(self) -> str:
        return f"Study({str(self.path)!r})"


def load_study(path: str | Path) -> Study:
    """Open a results folder."""
    return Study(path)


def load_best(path: str | Path):
    """The best model of a study, compiled, loaded in Keras's safe mode."""
    layout = results.open_folder(path)
    if not layout.best_model.exists():
        raise ResultsError(f"{layout.best_model}: no best model yet; it is saved when a trial completes")
    keras = import_quietly("keras")
    # The layers and loss hpstudy may save in a model register themselves when their modules are imported.
    import_quietly("hpstudy.preprocess")
    import_quietly("hpstudy.training")
    return keras.saving.load_model(layout.best_model, safe_mode=True)
