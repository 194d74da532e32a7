"""The results folder: the only code that knows its layout. Reads need no Keras.

    results/<name>/
      spec.yaml            the resolved study (every default filled in)
      env.json             versions, backend, devices, machine
      tuner/               keras-tuner's project: oracle.json, trial_<id>/trial.json, checkpoints (best k kept)
      trials/<id>/         per execution: history_<k>.csv (per epoch), execution_<k>.json (time, size, worker);
                           failure.txt (why it failed), starts.json (starts not finished yet)
      trials.csv           the trials table, rewritten after every trial
      best.keras           the best trial's model (best epoch), loadable with plain Keras
      best.json            which trial that is, its hyperparameters and test-set metrics
      importance.json      the report's importance ranking of these trials (a cache)
      workers/             distributed studies: the workers' heartbeats and the chief's state

Every file hpstudy writes here is written to a temporary name and renamed into place.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from hpstudy import spec as spec_module
from hpstudy.errors import HpstudyError, ResultsError

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
# Keys a study may change without starting over: more trials extend the search; the limits apply from now on.
RESUMABLE_CHANGES = ("search.max_trials", "search.max_failed_trials", "search.keep_checkpoints")
# Bumped when saved models change layout (2: normalization and augmentation moved in front of the builder's model).
FORMAT = 2
FAILURE = "failure.txt"                 # in trials/<id>/: why the trial failed (keras-tuner's traceback)
CHECKPOINT = "checkpoint.weights.h5"    # keras-tuner's weights of a trial's best epoch, in tuner/trial_<id>/


@dataclass(frozen=True)
class Layout:
    """Paths inside one study's results folder."""

    root: Path

    spec = property(lambda self: self.root / "spec.yaml")
    env = property(lambda self: self.root / "env.json")
    tuner = property(lambda self: self.root / "tuner")
    table = property(lambda self: self.root / "trials.csv")
    best_model = property(lambda self: self.root / "best.keras")
    best = property(lambda self: self.root / "best.json")
    tensorboard = property(lambda self: self.root / "tensorboard")
    importance = property(lambda self: self.root / "importance.json")

    def trial(self, trial_id) -> Path:
        return self.root / "trials" / trial_number(trial_id)


def trial_number(trial_id) -> str:
    """A trial's plain number: keras-tuner pads its ids to the width of max_trials ("0007"), which changes
    when a study is extended, so tables, folders and the API use the number alone ("7")."""
    return str(int(trial_id))


def execution_files(folder: Path) -> tuple[int, Path, Path]:
    """(index, history CSV, record JSON) for the next execution of a trial in `folder`."""
    index = len(list(folder.glob("execution_*.json")))
    return index, folder / f"history_{index}.csv", folder / f"execution_{index}.json"


def write_text(path: Path, text: str) -> None:
    """Write atomically: a reader (or a crash) sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own: the workers of a distributed study write the same files at the same time.
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def prepare(root: Path, study: spec_module.StudySpec, *, overwrite: bool = False) -> Layout:
    """Create or reopen `root` for `study`; refuse a folder that holds a different study."""
    layout = Layout(Path(root))
    if layout.root.exists() and any(layout.root.iterdir()):
        if not layout.spec.exists():
            raise ResultsError(f"{layout.root}: exists and is not an hpstudy results folder (no spec.yaml); "
                               "choose another --results-dir")
        if overwrite:
            shutil.rmtree(layout.root)
        else:
            _check_same_format(layout)
            _check_same_study(layout, study)
    layout.root.mkdir(parents=True, exist_ok=True)
    write_text(layout.spec, yaml.safe_dump(study.to_dict(), sort_keys=False))
    return layout


def _check_same_format(layout: Layout) -> None:
    """Refuse to resume a folder whose saved models another version of hpstudy laid out differently."""
    env = read_json(layout.env)    # written right after prepare(): absent only if the first run died at once
    found = env.get("results_format", 1) if env else FORMAT
    if found != FORMAT:
        raise ResultsError(f"{layout.root}: written by a version of hpstudy whose models are laid out differently "
                           f"(results format {found}, this version writes {FORMAT}); run with --overwrite to start "
                           "over, or use another --results-dir to keep it")


def _check_same_study(layout: Layout, study: spec_module.StudySpec) -> None:
    old = yaml.safe_load(layout.spec.read_text(encoding="utf-8")) or {}
    try:  # re-resolved, so keys added by a newer hpstudy compare as their defaults
        old = spec_module.from_dict(old, source=str(layout.spec)).to_dict()
    except HpstudyError:
        pass
    changed = [k for k in spec_module.changed_keys(old, study.to_dict()) if k not in RESUMABLE_CHANGES]
    if changed:
        raise ResultsError(
            f"{layout.root}: holds a study that differs from {study.source} in {', '.join(changed)}; "
            "run with --overwrite to start over, or give the study another name (or --results-dir) to keep both")


def open_folder(path: str | Path) -> Layout:
    """The layout of an existing results folder, or ResultsError saying what is missing."""
    layout = Layout(Path(path))
    if not layout.spec.exists():
        raise ResultsError(f"{path}: not an hpstudy results folder (no spec.yaml); run `hpstudy run STUDY` first")
    return layout


def study_of(layout: Layout) -> spec_module.StudySpec:
    """The resolved study stored in a results folder."""
    return spec_module.load(layout.spec)


def read_trials(layout: Layout) -> pd.DataFrame:
    """The trials table: one row per trial, hyperparameters under their dotted names."""
    study = study_of(layout)
    tuned = [t.name for t in study.tunables()]
    best = read_best(layout)
    rows = []
    for trial_file in sorted(layout.tuner.glob("trial_*/trial.json")):
        trial = read_json(trial_file)
        if trial is None:       # a trial file being written right now: skip it this time
            continue
        rows.append(_row(layout, trial, tuned, best))
    columns = ["trial_id", "status", *tuned, "score", "best_epoch", "epochs_run", "train_loss", "train_accuracy",
               "val_loss", "val_accuracy", "test_loss", "test_accuracy", "seconds", "params", "flops", "message"]
    table = pd.DataFrame(rows, columns=columns)
    for name in tuned:   # integers stay integers next to the blanks of trials where a knob was inactive
        known = table[name].dropna()
        if len(known) and all(isinstance(v, int) and not isinstance(v, bool) for v in known):
            table[name] = table[name].astype("Int64")
    return table.sort_values("trial_id", key=lambda ids: ids.astype(int)).reset_index(drop=True)


def write_table(layout: Layout) -> pd.DataFrame:
    """Rewrite trials.csv from the trial files; returns the table."""
    table = read_trials(layout)
    write_text(layout.table, table.to_csv(index=False))
    return table


def read_best(layout: Layout) -> dict:
    """best.json: the best trial, its hyperparameters and test metrics ({} before any trial completes)."""
    return read_json(layout.best) or {}


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def read_json(path: Path):
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _row(layout: Layout, trial: dict, tuned: list[str], best: dict) -> dict:
    trial_id = trial_number(trial["trial_id"])
    values = trial.get("hyperparameters", {}).get("values", {})
    metrics = {name: _best_value(trial, name) for name in METRICS}
    executions = [r for r in map(read_json, sorted(layout.trial(trial_id).glob("execution_*.json"))) if r]
    is_best = best.get("trial_id") == trial_id
    return {
        "trial_id": trial_id,
        "status": trial.get("status"),
        **{name: values.get(name) for name in tuned},
        "score": trial.get("score"),
        "best_epoch": trial.get("best_step"),
        "epochs_run": max((r["epochs_run"] for r in executions), default=None),
        "train_loss": metrics["loss"],
        "train_accuracy": metrics["accuracy"],
        "val_loss": metrics["val_loss"],
        "val_accuracy": metrics["val_accuracy"],
        "test_loss": best.get("test_loss") if is_best else None,
        "test_accuracy": best.get("test_accuracy") if is_best else None,
        "seconds": round(sum(r["seconds"] for r in executions), 3) if executions else None,
        "params": executions[0]["params"] if executions else None,
        "flops": executions[0].get("flops") if executions else None,
        "message": failure_reason(trial.get("message") or _read_text(layout.trial(trial_id) / FAILURE)),
    }


def failure_reason(message: str | None) -> str:
    """The last line of keras-tuner's record of a failed trial (a traceback), without the class of the failures
    hpstudy itself declares (`FailedTrialError: loss became nan ...`)."""
    lines = (message or "").strip().splitlines()
    last = lines[-1] if lines else ""
    return re.sub(r"^keras_tuner(\.src)?\.errors\.FailedTrialError: ", "", last)


def _best_value(trial: dict, name: str):
    """The value of metric `name` that keras-tuner recorded for the trial (at its best epoch)."""
    history = trial.get("metrics", {}).get("metrics", {}).get(name, {}).get("observations", [])
    if not history:
        return None
    value = history[-1]["value"][0]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def is_minimized(objective: str) -> bool:
    """Losses are minimized, accuracies maximized (as keras-tuner infers a metric's direction)."""
    return not objective.endswith("accuracy")


def tuner_trial(layout: Layout, trial_id) -> Path | None:
    """keras-tuner's folder of one trial (its id padded to any width: trial_0007), or None."""
    number = trial_number(trial_id)
    for folder in sorted(layout.tuner.glob("trial_*")):
        suffix = folder.name[len("trial_"):]
        if suffix.isdigit() and trial_number(suffix) == number:
            return folder
    return None


def ranked_trials(layout: Layout) -> list[str]:
    """Completed trials' numbers, best first: best.json's trial, then by score in the objective's
    direction (ties by trial number). Trials without a score are left out."""
    minimize = is_minimized(study_of(layout).search.objective)
    best = read_best(layout).get("trial_id")
    scored = []
    for trial_file in layout.tuner.glob("trial_*/trial.json"):
        trial = read_json(trial_file)
        if not trial or trial.get("status") != "COMPLETED" or trial.get("score") is None:
            continue
        score = trial["score"]
        if isinstance(score, float) and math.isnan(score):
            continue
        number = trial_number(trial["trial_id"])
        key = score if minimize else -score
        scored.append((number != best, key, int(number), number))
    return [number for *_, number in sorted(scored)]
