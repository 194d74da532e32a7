"""What every figure of a report shares: a matplotlib Figure of its own (no pyplot, no window, no global state,
so figures are made in any thread and never need closing), the objective's axis label, the completed trials,
the ranking, and the PNG. No Keras."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hpstudy.analysis import statistics
from hpstudy.analysis.effects import completed, pruned_trials
from hpstudy.errors import HpstudyError

# The figures' resolution and legend, shared with the learning curves drawn below the report.
from hpstudy.results.curves import DPI, legend  # noqa: F401 - legend: for the report's plots

PRUNED_STYLE = {"marker": "x", "s": 18, "alpha": 0.7, "color": "#7f7f7f", "label": "pruned (cut short; not estimated)"}
VERDICT_COLOURS = {statistics.EFFECT: "#d62728", statistics.UNDETERMINED: "#ff7f0e", statistics.NEGLIGIBLE: "#555555",
                   statistics.TOO_FEW: "#aaaaaa"}


class NothingToPlot(HpstudyError):
    """A figure that this study has nothing to show for (no repeats, a single trial, no history)."""


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1):
    """(figure, 2-D array of axes) of a figure `width` x `height` inches, laid out so labels never overlap."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def objective_label(objective: str, minimize: bool) -> str:
    """The objective's axis label with its unit and direction."""
    unit = "fraction correct" if objective.endswith("accuracy") else "cross-entropy"
    return f"{objective} ({unit}, {'lower' if minimize else 'higher'} is better)"


def in_trial_order(table: pd.DataFrame) -> pd.DataFrame:
    """`table`'s rows by trial number (not as text: trial 10 after trial 9)."""
    return table.sort_values("trial_id", key=lambda ids: ids.astype(int), kind="stable").reset_index(drop=True)


def done(study) -> pd.DataFrame:
    """The study's completed trials with a finite score (float), in trial order."""
    if study.table is None:
        raise NothingToPlot(f"{study.name}: no trials table")
    return in_trial_order(completed(study.table))


def stopped(study) -> pd.DataFrame:
    """The study's pruned trials with a finite score (float), in trial order: drawn marked, never estimated."""
    if study.table is None:
        return pd.DataFrame(columns=["trial_id", "score"])
    return in_trial_order(pruned_trials(study.table))


def ranked(study) -> pd.DataFrame:
    """The completed trials, best first (ties by trial number)."""
    table = done(study)
    key = table["score"] if study.effects.minimize else -table["score"]
    return table.assign(_key=key.to_numpy()).sort_values("_key", kind="stable").drop(columns="_key")


def label_of(value) -> str:
    """A hyperparameter value as a tick label."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


def numbers(values: pd.Series) -> pd.Series:
    """A column as floats (blanks NaN)."""
    return pd.to_numeric(values, errors="coerce").astype(float)
