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
        epochs: int | None = None, overwrite: bool = False, verbose: bool = False, stream=None,
        memory_allowance_mib: float | None = None) -> "Study":
    """Run a study's search, resuming its results folder if it exists; returns the finished Study.

    `max_trials` and `epochs` override the study file; `overwrite` starts the folder over. With
    `memory_allowance_mib` the search stops with FreshProcessNeeded (between trials, everything saved) once
    the process has grown by more than that: call run again from a new process to continue.
    """
    if not isinstance(study, StudySpec):
        study = spec_module.load(study)
    if max_trials is not None or epochs is not None:     # checked like the file's own values
        raw = study.to_dict()
        raw["search"]["max_trials"] = raw["search"]["max_trials"] if max_trials is None else max_trials
        raw["train"]["epochs"] = raw["train"]["epochs"] if epochs is None else epochs
        study = spec_module.from_dict(raw, source=study.source)
    tuning = import_quietly("hpstudy.tuning", verbose=verbose)
    layout = tuning.run(study, results_dir=results_dir, overwrite=overwrite, verbose=verbose, stream=stream,
                        memory_allowance_mib=memory_allowance_mib)
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

    def model(self, trial_id: int | str, *, dataset=None):
        """Trial `trial_id`'s model at its best epoch, compiled (the best trial's is best.keras; another's is
        rebuilt from its hyperparameters and keras-tuner's checkpoint). Completed trials only."""
        number = completed_trial(self.layout, trial_id)
        if number == self.best.get("trial_id") and self.layout.best_model.exists():
            return load_best(self.path)
        evaluate = import_quietly("hpstudy.evaluate")
        return evaluate.trial_model(self.layout, number, dataset=dataset)

    def ranked(self) -> list[str]:
        """Completed trials' numbers, best first (rank 0 is the best trial of best.json)."""
        return results.ranked_trials(self.layout)

    def __repr__(self) -> str:
        return f"Study({str(self.path)!r})"


def load_study(path: str | Path) -> Study:
    """Open a results folder."""
    return Study(path)


def load_best(path: str | Path, rank: int = 0):
    """The `rank`-th best model of a study (0: the best, best.keras), compiled, at its trial's best epoch.

    Rank 0 is loaded in Keras's safe mode; a lower-ranked trial's model is rebuilt from its hyperparameters
    and loaded with keras-tuner's checkpoint of its best epoch (the study's data is loaded when it
    standardizes pixels: the statistics are not in the checkpoint).
    """
    layout = results.open_folder(path)
    if rank != 0:
        number = trial_at_rank(layout, rank)
        evaluate = import_quietly("hpstudy.evaluate")
        return evaluate.trial_model(layout, number)
    if not layout.best_model.exists():
        raise ResultsError(f"{layout.best_model}: no best model yet; it is saved when a trial completes")
    keras = import_quietly("keras")
    # The layers and loss hpstudy may save in a model register themselves when their modules are imported.
    import_quietly("hpstudy.preprocess")
    import_quietly("hpstudy.training")
    try:
        return keras.saving.load_model(layout.best_model, safe_mode=True)
    except ValueError as err:   # not a .keras file, or one safe mode refuses (a Lambda layer's Python code)
        # Without Keras's advice to turn safe mode off: a results folder may come from anyone.
        reason = " ".join(str(err).split()).split(" If you trust")[0]
        raise ResultsError(f"{layout.best_model}: cannot load the model ({reason[:300]})") from None


def trial_at_rank(layout: results.Layout, rank: int) -> str:
    """The number of the `rank`-th best completed trial, or a ResultsError saying how many there are."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ResultsError(f"rank: expected 0 (the best) or a positive integer, got {rank!r}")
    ranked = results.ranked_trials(layout)
    if rank >= len(ranked):
        have = f"ranks 0 to {len(ranked) - 1}" if ranked else "none yet"
        raise ResultsError(f"{layout.root}: no model of rank {rank}: {len(ranked)} completed trial(s), {have}")
    return ranked[rank]


def completed_trial(layout: results.Layout, trial_id) -> str:
    """`trial_id` as a plain number if it names a completed trial, else a ResultsError saying why not."""
    table = results.read_trials(layout)
    try:
        number = results.trial_number(trial_id)
    except (TypeError, ValueError):
        number = None
    rows = table[table.trial_id == number] if number is not None else table.iloc[:0]
    if rows.empty:
        known = ", ".join(table.trial_id) or "none yet"
        raise ResultsError(f"{layout.root}: no trial {trial_id!r}; trials: {known}")
    row = rows.iloc[0]
    if row.status != "COMPLETED":
        why = f" ({row.message})" if isinstance(row.message, str) and row.message else ""
        raise ResultsError(f"{layout.root}: trial {number} is {row.status}{why}; only completed trials have a model")
    return number
