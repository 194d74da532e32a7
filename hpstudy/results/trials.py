"""Reading a study's trials: the trials table, the best trial, the ranking. No Keras.

The table is read from the trial files themselves (not trials.csv), so a study still running can be read
at any time: a trial file being written is skipped this time.
"""
from __future__ import annotations

import math
import re

import pandas as pd

from hpstudy.errors import ResultsError
from hpstudy.results import files
from hpstudy.results.folder import results_format, study_of
from hpstudy.results.layout import Layout, trial_number

# Keras's names of the metrics of every trial, as in the history files and a study's objective.
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
LAST_METRICS = tuple(f"last_{name}" for name in METRICS)     # the same at the last epoch run
REPEAT_COLUMNS = ("trial_id", "seed", "status", "score", "best_epoch", "epochs_run", *METRICS, *LAST_METRICS,
                  "test_loss", "test_accuracy", "seconds", "message")


def read_trials(layout: Layout) -> pd.DataFrame:
    """The trials table: one row per trial, hyperparameters under their dotted names, metrics under Keras's
    names at the best epoch (the objective's name is its column) and at the last epoch run (`last_` and the
    name, averaged over executions), `best_epoch` counted from 1 as in the history files."""
    tuned = [t.name for t in study_of(layout).tunables()]
    best = read_best(layout)
    rows = []
    for trial_file in layout.tuner_trials():
        trial = files.read_json(trial_file)
        if trial is None:       # a trial file being written right now: skip it this time
            continue
        rows.append(_row(layout, trial, tuned, best))
    columns = ["trial_id", "status", *tuned, "score", "best_epoch", "epochs_run", *METRICS, *LAST_METRICS,
               "test_loss", "test_accuracy", "seconds", "params", "flops", "message"]
    table = pd.DataFrame(rows, columns=columns)
    for name in tuned:   # integers stay integers next to the blanks of trials where a knob was inactive
        known = table[name].dropna()
        if len(known) and all(isinstance(v, int) and not isinstance(v, bool) for v in known):
            table[name] = table[name].astype("Int64")
    return table.sort_values("trial_id", key=lambda ids: ids.astype(int)).reset_index(drop=True)


def write_table(layout: Layout) -> pd.DataFrame:
    """Rewrite trials.csv from the trial files; returns the table."""
    table = read_trials(layout)
    files.write_text(layout.table, table.to_csv(index=False))
    return table


def read_best(layout: Layout) -> dict:
    """best.json: the best trial, its hyperparameters and test metrics ({} before any trial completes).
    `best_epoch` counts from 1 (a best.json of results format 2 counted from 0, and is converted)."""
    best = files.read_json(layout.best)
    if not isinstance(best, dict):
        return {}
    if best.get("results_format", 2) < 3 and isinstance(best.get("best_epoch"), int):
        best = {**best, "best_epoch": best["best_epoch"] + 1, "results_format": 3}
    return best


def read_history(layout: Layout, trial_id, execution: int = 0) -> pd.DataFrame | None:
    """Per-epoch metrics of one execution of a trial, `epoch` counted from 1 (results format 2 counted from 0,
    and is converted); None when the trial has no such history."""
    try:
        history = pd.read_csv(layout.history(trial_id, execution))
    except (OSError, ValueError):
        return None
    if "epoch" in history and results_format(layout) < 3:
        history["epoch"] += 1
    return history


def epoch_from_step(step) -> int | None:
    """keras-tuner's best step (an epoch index from 0) as an epoch counted from 1, as progress and curves do."""
    return step + 1 if isinstance(step, int) and not isinstance(step, bool) else None


def _row(layout: Layout, trial: dict, tuned: list[str], best: dict) -> dict:
    trial_id = trial_number(trial["trial_id"])
    values = trial.get("hyperparameters", {}).get("values", {})
    executions = [r for r in map(files.read_json, layout.executions(trial_id)) if r]
    is_best = best.get("trial_id") == trial_id
    return {
        "trial_id": trial_id,
        "status": trial.get("status"),
        **{name: values.get(name) for name in tuned},
        "score": trial.get("score"),
        "best_epoch": epoch_from_step(trial.get("best_step")),
        "epochs_run": max((r["epochs_run"] for r in executions), default=None),
        **{name: _best_value(trial, name) for name in METRICS},
        **_last_values(executions),
        "test_loss": best.get("test_loss") if is_best else None,
        "test_accuracy": best.get("test_accuracy") if is_best else None,
        "seconds": round(sum(r["seconds"] for r in executions), 3) if executions else None,
        "params": executions[0]["params"] if executions else None,
        "flops": executions[0].get("flops") if executions else None,
        "message": failure_reason(trial.get("message") or files.read_text(layout.failure(trial_id))),
    }


def _last_values(executions: list[dict]) -> dict:
    """The metrics of the last epoch each execution ran (its record's `last`), averaged over the executions;
    None where a record has none (a folder written before they were recorded)."""
    lasts = [r.get("last") or {} for r in executions]
    return {f"last_{name}": (sum(last[name] for last in lasts) / len(lasts)
                             if lasts and all(isinstance(last.get(name), (int, float)) for last in lasts) else None)
            for name in METRICS}


def read_repeats(layout: Layout) -> pd.DataFrame:
    """Every seed repeat of the study's confirmed configurations, one row each (see `engine.confirm`)."""
    rows = [r for r in map(files.read_json, layout.repeat_files()) if isinstance(r, dict)]
    table = pd.DataFrame([{k: r.get(k) for k in REPEAT_COLUMNS} for r in rows], columns=list(REPEAT_COLUMNS))
    if len(table):
        table["trial_id"] = table["trial_id"].astype(str)
    return table


def write_repeats(layout: Layout) -> pd.DataFrame:
    """Rewrite repeats.csv from the repeat files; returns the table."""
    table = read_repeats(layout)
    files.write_text(layout.repeats_table, table.to_csv(index=False))
    return table


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


def ranked_trials(layout: Layout) -> list[str]:
    """Completed trials' numbers, best first: best.json's trial, then by score in the objective's
    direction (ties by trial number). Trials without a score are left out."""
    minimize = is_minimized(study_of(layout).search.objective)
    best = read_best(layout).get("trial_id")
    scored = []
    for trial_file in layout.tuner_trials():
        trial = files.read_json(trial_file)
        if not trial or trial.get("status") != "COMPLETED" or trial.get("score") is None:
            continue
        score = trial["score"]
        if isinstance(score, float) and math.isnan(score):
            continue
        number = trial_number(trial["trial_id"])
        key = score if minimize else -score
        scored.append((number != best, key, int(number), number))
    return [number for *_, number in sorted(scored)]


def trial_at_rank(layout: Layout, rank: int) -> str:
    """The number of the `rank`-th best completed trial, or a ResultsError saying how many there are."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ResultsError(f"rank: expected 0 (the best) or a positive integer, got {rank!r}")
    ranked = ranked_trials(layout)
    if rank >= len(ranked):
        have = f"ranks 0 to {len(ranked) - 1}" if ranked else "none yet"
        raise ResultsError(f"{layout.root}: no model of rank {rank}: {len(ranked)} completed trial(s), {have}")
    return ranked[rank]


def completed_trial(layout: Layout, trial_id) -> str:
    """`trial_id` as a plain number if it names a completed trial, else a ResultsError saying why not."""
    table = read_trials(layout)
    try:
        number = trial_number(trial_id)
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
