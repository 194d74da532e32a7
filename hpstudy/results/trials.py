"""Reading a study's trials: the trials table, the best trial, the ranking. No Keras.

The table is read from the trial files themselves (not trials.csv), so a study still running can be read
at any time: a trial file being written is skipped this time.
"""
from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pandas as pd

from hpstudy import files
from hpstudy.errors import ResultsError
from hpstudy.files import NUMBER
from hpstudy.results.folder import results_format, study_of
from hpstudy.results.layout import Layout, trial_number
from hpstudy.results.lock import in_use
from hpstudy.results.status import SCORED, TrialStatus
from hpstudy.study import overrides
from hpstudy.text import csv_text, exception_line, read_csv

# Keras's names of the metrics of every trial, as in the history files and a study's objective.
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
LAST_METRICS = tuple(f"last_{name}" for name in METRICS)     # the same at the last epoch run
# A run "trained" when its validation accuracy at the best epoch beats chance (1 / classes) by TRAINED_MARGIN:
# below that a classifier learnt nothing (a diverged or stuck run), and its score is an outcome of its own, not a
# point on the same curve as the runs that learnt (analysis.effects leaves such runs out of the score effects).
TRAINED_MARGIN = 0.05
REPEAT_COLUMNS = ("trial_id", "seed", "status", "score", "best_epoch", "epochs_run", *METRICS, *LAST_METRICS,
                  "test_loss", "test_accuracy", "seconds", "message")

# The shapes of the JSON files read here (dotted key -> allowed types; None: null allowed; a key may be absent).
_METRIC = (*NUMBER, None)
BEST_FIELDS = {"results_format": int, "trial_id": str, "objective": str, "score": _METRIC, "best_epoch": (int, None),
               "checkpoint_epoch": str, "weights_epoch": (int, None),
               "hyperparameters": dict, "test_loss": _METRIC, "test_accuracy": _METRIC, "class_names": list,
               "confirmed": dict}
TUNER_TRIAL_FIELDS = {"trial_id": (str, int), "status": str, "hyperparameters": dict, "hyperparameters.values": dict,
                      "hyperparameters.space": list, "metrics": dict, "metrics.metrics": dict, "score": _METRIC,
                      "best_step": (int, None), "message": (str, None)}
EXECUTION_FIELDS = {"epochs_run": int, "seconds": NUMBER, "params": (int, None), "trainable_params": (int, None),
                    "flops": (int, None),
                    "last": (dict, None), **{f"last.{name}": _METRIC for name in METRICS}}
PRUNED_FIELDS = {"epoch": int, "rule": str, "reason": str, "objective": str, "value": _METRIC, "threshold": _METRIC,
                 "compared": list}
REPEAT_FIELDS = {"trial_id": (str, int), "seed": int, "status": str, "score": _METRIC, "best_epoch": (int, None),
                 "epochs_run": (int, None), "seconds": _METRIC, "message": (str, None),
                 **{name: _METRIC for name in (*METRICS, *LAST_METRICS, "test_loss", "test_accuracy")}}


def read_tuner_trial(path) -> dict | None:
    """keras-tuner's record of one trial (tuner/trial_<id>/trial.json), checked; None when it does not exist, a
    ResultsError naming it when it is damaged."""
    parents = Path(path).parents       # <results>/tuner/trial_<id>/trial.json
    trial = files.read_record(path, dict, TUNER_TRIAL_FIELDS, root=parents[2] if len(parents) > 2 else None)
    if trial is not None:
        try:
            number = trial_number(trial["trial_id"])
        except (KeyError, TypeError, ValueError):
            number = None
        # A number the tables can hold (and sort as int64): keras-tuner's ids are small and never negative.
        if number is None or not re.fullmatch(r"[0-9]{1,18}", number):
            raise files.damaged(path, f"is corrupt (no trial number: trial_id {_brief(trial.get('trial_id'))})")
        _check_values(path, trial.get("hyperparameters", {}).get("values", {}), "hyperparameters.values")
    return trial


def _check_values(path, values: dict, key: str) -> None:
    """Hyperparameter values are plain values (a number, a string, true/false or null), never a list or an object."""
    for name, value in values.items():
        if isinstance(value, (list, dict)):
            kind = "a list" if isinstance(value, list) else "an object"
            raise files.damaged(path, f"is corrupt ({key}.{name} is {kind} ({_brief(value)}), expected a number, "
                                      "a string, true/false or null)")


def _brief(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}..."


def _tuner_trials(layout: Layout) -> list[tuple]:
    """(file, record) of each of keras-tuner's trial records (see `tuner_record`)."""
    return [(trial_file, trial) for trial_file in layout.tuner_trials()
            if (trial := tuner_record(layout, trial_file)) is not None]


def tuner_record(layout: Layout, trial_file) -> dict | None:
    """keras-tuner's record of one trial, or None when there is none. While a run holds the folder, a record that
    cannot be read is None too (it is being written); otherwise it is a ResultsError naming it."""
    try:
        return read_tuner_trial(trial_file)
    except ResultsError:
        if not in_use(layout):
            raise
        return None


def read_pruned(layout: Layout, trial_id) -> dict | None:
    """Why search.pruning stopped a trial (trials/<n>/pruned.json: epoch, rule, reason, ...), or None."""
    return files.read_record(layout.pruned(trial_id), dict, PRUNED_FIELDS, root=layout.root)


def status_of(layout: Layout, trial: dict) -> str | None:
    """hpstudy's status of a trial from keras-tuner's record: PRUNED for a COMPLETED trial search.pruning stopped
    (to keras-tuner it completed, so its oracle learns from its score), else keras-tuner's own."""
    status = trial.get("status")
    if status == TrialStatus.COMPLETED and read_pruned(layout, trial_number(trial["trial_id"])) is not None:
        return TrialStatus.PRUNED.value         # a plain string, as every other status in the table
    return status


def read_trials(layout: Layout) -> pd.DataFrame:
    """The trials table: one row per trial, hyperparameters under their dotted names (then each train key the
    study's overrides set, `train.<key>`, as that trial trained with it), metrics under Keras's names at the best
    epoch (the objective's name is its column) and at the last epoch run (`last_` and the name, averaged over
    executions), `best_epoch` counted from 1 as in the history files; `pruned_at_epoch` and `pruned_reason` for
    the trials search.pruning stopped (status PRUNED)."""
    study = study_of(layout)
    tuned = [t.name for t in study.tunables()]
    rows = [trial_row(layout, trial_file, trial, tuned, study.train) for trial_file, trial in _tuner_trials(layout)]
    return table_of(rows, study, read_best(layout))


def trial_row(layout: Layout, trial_file, trial: dict, tuned: list[str], train) -> dict:
    """The row of one trial (keras-tuner's record `trial`, read from `trial_file`; `tuned`: the study's searched
    names; `train`: its train section) without the best trial's test metrics, which `table_of` adds; a
    ResultsError naming the file for a shape no check foresaw."""
    try:
        return _row(layout, trial, tuned, train)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise files.damaged(trial_file, f"is corrupt (unexpected content: {exception_line(err, with_class=True)})"
                            ) from None


def table_of(rows: list[dict], study, best: dict) -> pd.DataFrame:
    """The trials table of `rows` (`trial_row`'s, in the order of keras-tuner's trial folders): the best trial's
    test metrics from `best` (best.json), whether each run trained, integer columns, sorted by trial number."""
    best_id = best.get("trial_id")
    rows = [{**row, "test_loss": best.get("test_loss"), "test_accuracy": best.get("test_accuracy")}
            if row["trial_id"] == best_id else row for row in rows]
    settings = [*(t.name for t in study.tunables()), *_overridden_columns(study.train)]
    columns = ["trial_id", "status", *settings, "score", "trained", "best_epoch", "epochs_run", *METRICS, *LAST_METRICS,
               "test_loss", "test_accuracy", "seconds", "params", "trainable_params", "flops", "message",
               "pruned_at_epoch", "pruned_reason"]
    table = pd.DataFrame(rows, columns=columns)
    table["trained"] = trained(table, class_count(study, best))
    for name in settings:   # integers stay integers next to the blanks of trials where a knob was inactive
        known = table[name].dropna()
        if len(known) and all(isinstance(v, int) and not isinstance(v, bool) for v in known):
            table[name] = table[name].astype("Int64")
    return table.sort_values("trial_id", key=lambda ids: ids.astype(int)).reset_index(drop=True)


def class_count(study, best: dict) -> int | None:
    """The number of classes of a study's dataset: best.json's class names, else the dataset's registered count
    (None where neither says, e.g. a folder dataset still searching)."""
    names = best.get("class_names")
    if isinstance(names, list) and len(names) >= 2:
        return len(names)
    from hpstudy.data import core

    known = core.DATASETS.get(study.data.dataset)
    return known.class_count(study.data.label_mode) if known is not None else None


def trained(table: pd.DataFrame, classes: int | None) -> pd.Series:
    """Per run whether it trained (see TRAINED_MARGIN): True or False where its validation accuracy and the class
    count are known, else missing (a missing value counts as trained)."""
    accuracy = pd.to_numeric(table.get("val_accuracy", pd.Series(index=table.index, dtype=float)),
                             errors="coerce").astype(float)
    if not classes or classes < 2:
        return pd.Series(pd.NA, index=table.index, dtype="boolean")
    return (accuracy > 1 / classes + TRAINED_MARGIN).astype("boolean").where(accuracy.notna(), pd.NA)


def write_table(layout: Layout) -> pd.DataFrame:
    """Rewrite trials.csv from every trial file; returns the table. A run keeps its table in memory instead,
    re-reading only the trials that changed (`results.trials_table.TrialsTable`, whose output is the same)."""
    table = read_trials(layout)
    files.write_text(layout.table, csv_text(table))
    return table


def read_best(layout: Layout) -> dict:
    """best.json: the best trial, its hyperparameters and test metrics ({} before any trial completes).
    `best_epoch` counts from 1 (a best.json of results format 2 counted from 0, and is converted)."""
    best = files.read_record(layout.best, dict, BEST_FIELDS, root=layout.root)
    if best is None:
        return {}
    _check_values(layout.best, best.get("hyperparameters", {}), "hyperparameters")
    if best.get("results_format", 2) < 3 and isinstance(best.get("best_epoch"), int):
        best = {**best, "best_epoch": best["best_epoch"] + 1, "results_format": 3}
    return best


def read_history(layout: Layout, trial_id, execution: int = 0) -> pd.DataFrame | None:
    """Per-epoch metrics of one execution of a trial, `epoch` counted from 1 (results format 2 counted from 0,
    and is converted); None when the trial has no such history, a ResultsError naming it when it is damaged."""
    path = layout.history(trial_id, execution)
    try:
        # Capped (files.CAPS): a history of a million epochs is not one hpstudy wrote, and would take minutes.
        data = files.read_bytes(path, "history", root=layout.root)
    except files.Refused as err:
        raise files.damaged(path, err.reason) from None
    if data is None:
        return None
    try:
        history = read_csv(io.BytesIO(data))
    except (OSError, ValueError) as err:
        raise files.damaged(path, f"is corrupt (not a CSV table of numbers: {exception_line(err)})") from None
    words = [column for column in history.columns if not pd.api.types.is_numeric_dtype(history[column])]
    if words or "epoch" not in history:
        why = f"column {words[0]!r} is not numbers" if words else "no epoch column"
        raise files.damaged(path, f"is corrupt ({why})")
    if "epoch" in history and results_format(layout) < 3:
        history["epoch"] += 1
    return history


def weights_epoch(layout: Layout, trial_id, checkpoint_epoch: str, best_epoch: int | None) -> int | None:
    """The epoch (from 1) whose weights trial `trial_id` kept: its best (`best_epoch`), or with
    search.checkpoint_epoch `last` the last epoch of its last execution (None when it has no history)."""
    if checkpoint_epoch == "best":
        return best_epoch
    history = read_history(layout, trial_id, max(0, len(layout.executions(trial_id)) - 1))
    return int(history["epoch"].iloc[-1]) if history is not None and len(history) else None


def epoch_from_step(step) -> int | None:
    """keras-tuner's best step (an epoch index from 0) as an epoch counted from 1, as progress and curves do."""
    return step + 1 if isinstance(step, int) and not isinstance(step, bool) else None


def _overridden_columns(train) -> list[str]:
    """The columns of the train keys the study's overrides set: each trial's own value of them."""
    return [f"train.{key}" for key in overrides.keys(train.overrides)]


def _row(layout: Layout, trial: dict, tuned: list[str], train) -> dict:
    trial_id = trial_number(trial["trial_id"])
    values = trial.get("hyperparameters", {}).get("values", {})
    own = train.overridden(values)
    executions = [r for path in layout.executions(trial_id)
                  if (r := files.read_record(path, dict, EXECUTION_FIELDS, root=layout.root)) is not None]
    status = status_of(layout, trial)
    pruned = (read_pruned(layout, trial_id) if status == TrialStatus.PRUNED else None) or {}
    return {
        "trial_id": trial_id,
        "status": status,
        **{name: values.get(name) for name in tuned},
        **{column: own.get(column[6:], getattr(train, column[6:])) for column in _overridden_columns(train)},
        "score": trial.get("score"),
        "best_epoch": epoch_from_step(trial.get("best_step")),
        "epochs_run": max((r["epochs_run"] for r in executions if r.get("epochs_run") is not None), default=None),
        **{name: _best_value(trial, name) for name in METRICS},
        **_last_values(executions),
        "test_loss": None,              # the best trial's: table_of
        "test_accuracy": None,
        "seconds": round(sum(r.get("seconds") or 0 for r in executions), 3) if executions else None,
        "params": executions[0].get("params") if executions else None,
        # None in a folder written before it was recorded
        "trainable_params": executions[0].get("trainable_params") if executions else None,
        "flops": executions[0].get("flops") if executions else None,
        "message": failure_reason(trial.get("message") or files.read_text(layout.failure(trial_id), root=layout.root)),
        "pruned_at_epoch": pruned.get("epoch"),
        "pruned_reason": pruned.get("reason"),
    }


def _last_values(executions: list[dict]) -> dict:
    """The metrics of the last epoch each execution ran (its record's `last`), averaged over the executions;
    None where a record has none (a folder written before they were recorded)."""
    lasts = [r.get("last") or {} for r in executions]
    return {f"last_{name}": (sum(last[name] for last in lasts) / len(lasts)
                             if lasts and all(isinstance(last.get(name), (int, float)) for last in lasts) else None)
            for name in METRICS}


def read_repeats(layout: Layout) -> pd.DataFrame:
    """Every seed repeat of the study's confirmed configurations, one row each (see `engine.search.confirm`)."""
    rows = [r for path in layout.repeat_files()
            if (r := files.read_record(path, dict, REPEAT_FIELDS, root=layout.root)) is not None]
    table = pd.DataFrame([{k: r.get(k) for k in REPEAT_COLUMNS} for r in rows], columns=list(REPEAT_COLUMNS))
    if len(table):
        table.insert(4, "trained", trained(table, class_count(study_of(layout), read_best(layout))))
    if len(table):
        table["trial_id"] = table["trial_id"].astype(str)
    return table


def write_repeats(layout: Layout) -> pd.DataFrame:
    """Rewrite repeats.csv from the repeat files; returns the table."""
    table = read_repeats(layout)
    files.write_text(layout.repeats_table, csv_text(table))
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


def ranked_trials(layout: Layout) -> list[str]:
    """Completed trials' numbers, best first: best.json's trial, then by score in the study's search.direction
    (ties by trial number); then the pruned trials the same way, so that a pruned trial (scored on a truncated
    curve) is the best only when no trial completed. Trials without a score are left out."""
    minimize = study_of(layout).search.minimize
    best = read_best(layout).get("trial_id")
    scored = []
    for _, trial in _tuner_trials(layout):
        status = status_of(layout, trial) if trial.get("status") == TrialStatus.COMPLETED else None
        score = trial.get("score")
        if status not in SCORED or score is None or (isinstance(score, float) and math.isnan(score)):
            continue
        number = trial_number(trial["trial_id"])
        key = score if minimize else -score
        scored.append((status == TrialStatus.PRUNED, number != best, key, int(number), number))
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
    """`trial_id` as a plain number if it names a completed (or pruned) trial, else a ResultsError saying why not."""
    table = read_trials(layout)
    try:
        number = trial_number(trial_id)
    except (TypeError, ValueError):
        number = None
    rows = table[table.trial_id == number] if number is not None else table.iloc[:0]
    if number is None or rows.empty:
        known = ", ".join(table.trial_id) or "none yet"
        raise ResultsError(f"{layout.root}: no trial {trial_id!r}; trials: {known}")
    row = rows.iloc[0]
    if row.status not in SCORED:
        why = f" ({row.message})" if isinstance(row.message, str) and row.message else ""
        raise ResultsError(f"{layout.root}: trial {number} is {row.status}{why}; only completed (or pruned) trials "
                           "have a model")
    return number
