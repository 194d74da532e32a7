"""Effects that control for the other hyperparameters: one additive linear model of the score over every
searched hyperparameter at once (ordinary least squares, statsmodels), so that a value that happened to come
with a good setting of another hyperparameter is not credited with that setting's effect.

Each hyperparameter enters as
- a slope (a searched range, or numbers with more than MAX_LEVELS distinct values), on the scale it was searched
  on: per tenfold increase where sampled log, else per unit; trials where it was inactive get the mean and a
  column of their own;
- levels (a choice, a boolean): one column per value but the reference (its first value in the report's order),
  so each value gets its difference to the reference.
The model has main effects only: interactions are not modelled (see the value tables and plots for those).
Each difference comes with its 95% interval from the model (t-based) and the number of trials behind it; a
column the other columns already explain (the trials cannot tell it apart from another hyperparameter) and a
value seen in fewer than MIN_PER_VALUE trials give "too few trials" instead of a number. No Keras.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hpstudy.analysis import statistics

METHOD = ("One additive least-squares model of the score over every searched hyperparameter (statsmodels OLS, "
          "main effects; a slope per tenfold for numbers searched on a log scale), 95% t intervals.")
MAX_LEVELS = 6              # numbers with more distinct values are fitted as a slope
MIN_PER_VALUE = 3           # a value seen in fewer trials is never compared: two could be one lucky pairing
INACTIVE = "(inactive)"     # the group of trials where a conditional hyperparameter was not used


@dataclass(frozen=True)
class Contrast:
    """One estimated difference in the objective: `value` vs `reference` (a slope: `value` is "per 10x" or
    "per unit" and `reference` None), adjusted for the other hyperparameters."""

    hyperparameter: str
    value: object
    reference: object
    difference: float | None
    ci95: tuple[float, float] | None
    n: int                          # trials with `value` (a slope: trials where it was active)
    n_reference: int | None
    verdict: str
    note: str = ""                  # why there is no number, when there is none
    p_value: float | None = None    # the contrast's own p-value (the model's t test)
    p_family: float | None = None   # Holm-adjusted over every estimated contrast of the study (see `family`)
    more: int | None = None         # undetermined: roughly how many more trials per value would settle it
    outcome: str = "score"          # what differs: the score, or training.OUTCOME (the share that did not train)

    def as_record(self) -> dict:
        """The contrast as `hpstudy report --format json` writes it."""
        return {"hyperparameter": self.hyperparameter, "value": _plain(self.value),
                "reference": _plain(self.reference), "difference": self.difference,
                "ci95": list(self.ci95) if self.ci95 else None, "n": self.n, "n_reference": self.n_reference,
                "verdict": self.verdict, "note": self.note, "p_value": self.p_value, "p_family": self.p_family,
                "more_trials_per_value": self.more,
                "outcome": self.outcome}


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def labelled(values: pd.Series) -> pd.Series:
    """A hyperparameter's values, each trial where it was inactive (missing) as INACTIVE."""
    return values.astype(object).where(values.notna(), INACTIVE)


def levels_of(values: pd.Series, order_key) -> list:
    """The distinct values of a hyperparameter (inactive as its own), in the report's order."""
    return sorted(pd.unique(labelled(values)), key=order_key)


def reference_of(labels: pd.Series, order_key):
    """The value every other value of a hyperparameter is compared with: its first in the report's order."""
    return sorted(pd.unique(labels), key=order_key)[0]


@dataclass
class _Column:
    hyperparameter: str
    value: object               # the level, or "per 10x" / "per unit" / INACTIVE for a slope's columns
    data: np.ndarray
    n: int
    n_reference: int | None
    reference: object = None


def _columns(trials: pd.DataFrame, name: str, *, slope: bool, log: bool, order_key) -> list[_Column]:
    values = trials[name]
    if slope:
        x = pd.to_numeric(values, errors="coerce").astype(float)
        if log:
            x = np.log10(x.where(x > 0))
        active = x.notna()
        filled = x.fillna(x[active].mean()) if active.any() else x.fillna(0.0)
        out = [_Column(name, "per 10x" if log else "per unit", filled.to_numpy(), int(active.sum()), None)]
        if not active.all():
            out.append(_Column(name, INACTIVE, (~active).to_numpy(dtype=float), int((~active).sum()), None))
        return out
    labels = labelled(values)
    levels = levels_of(values, order_key)
    reference = levels[0]
    n_reference = int((labels == reference).sum())
    return [_Column(name, level, (labels == level).to_numpy(dtype=float), int((labels == level).sum()),
                    n_reference, reference) for level in levels[1:]]


def contrasts(trials: pd.DataFrame, searched: dict, *, smallest: float | None = None, order_key=str,
              question=()) -> list[Contrast]:
    """The adjusted contrasts of every hyperparameter in `searched` (name -> (fitted as a slope, searched on a
    log scale)) over `trials` (completed, with a float `score`), each with its verdict (see statistics.verdict;
    `smallest`: the smallest effect that matters; `question`: the scientific hyperparameters, see `family`)."""
    import statsmodels.api as sm

    columns = [c for name, (slope, log) in searched.items()
               for c in _columns(trials, name, slope=slope, log=log, order_key=order_key)]
    y = trials["score"].to_numpy(dtype=float)
    design, position = [np.ones(len(y))], {}      # position: column number -> its index in the design
    for k, column in enumerate(columns):      # a column the ones before it already explain cannot be estimated
        if np.linalg.matrix_rank(np.column_stack([*design, column.data])) == len(design) + 1:
            position[k] = len(design)
            design.append(column.data)
    dof = len(y) - len(design)
    fit = sm.OLS(y, np.column_stack(design)).fit() if dof >= 1 else None
    out, tests = [], []
    for k, column in enumerate(columns):
        reason = _too_few(column, k not in position, dof)
        if reason:
            out.append(_contrast(column, None, None, statistics.TOO_FEW, reason))
            continue
        index = position[k]
        estimate = float(fit.params[index])
        low, high = (float(v) for v in fit.conf_int(1 - statistics.LEVEL)[index])
        if not (math.isfinite(low) and math.isfinite(high)):
            out.append(_contrast(column, None, None, statistics.TOO_FEW, "no finite interval"))
            continue
        tests.append((len(out), float(fit.pvalues[index])))
        out.append(_contrast(column, estimate, (low, high), statistics.TOO_FEW))
    return family(out, tests, smallest, question)


# With a question, the study's 5% chance of any false finding is split between two Holm families (Bonferroni
# across them): the question's contrasts get QUESTION_SHARE of it, the nuisance ones the rest. A study asks about
# its question; its nuisance contrasts are a by-product that should not cost the question its power.
QUESTION_SHARE = 0.8


def family(out: list[Contrast], tests: list[tuple[int, float]], smallest: float | None,
           question=()) -> list[Contrast]:
    """Each estimated contrast (`tests`: its position in `out`, its p-value) with its verdict after Holm's
    step-down: a study with 9 contrasts has 9 chances of a 5% error, and without a family control 20-32% of
    studies with no true effect printed a finding. One family of every contrast; with a `question`, the
    question's contrasts and the others as two families at QUESTION_SHARE and 1 - QUESTION_SHARE of the 5%
    (their `p_family` scaled so that below 0.05 still means a finding)."""
    from statsmodels.stats.multitest import multipletests

    asked = [t for t in tests if out[t[0]].hyperparameter in question]
    groups = [(asked, QUESTION_SHARE), ([t for t in tests if t not in asked], 1 - QUESTION_SHARE)] if asked \
        else [(tests, 1.0)]
    for members, share in groups:
        if not members:
            continue
        held = multipletests([p for _, p in members], method="holm")[1]
        for (i, p), adjusted_p in zip(members, held):
            c = out[i]
            p_family = min(1.0, float(adjusted_p) / share)
            word = statistics.verdict(c.difference, c.ci95, smallest, p_family)
            n = min(c.n, c.n_reference) if c.n_reference is not None else c.n
            more = (statistics.more_trials(c.difference, c.ci95, n, smallest) if word == statistics.UNDETERMINED
                    else None)
            out[i] = dataclasses.replace(c, p_value=p, p_family=p_family, verdict=word, more=more)
    return out


def _too_few(column: _Column, inseparable: bool, dof: int) -> str:
    if inseparable:
        return "not separable from the other hyperparameters in these trials"
    if column.n < MIN_PER_VALUE or (column.n_reference is not None and column.n_reference < MIN_PER_VALUE):
        return f"n={column.n}" + (f" vs {column.n_reference}" if column.n_reference is not None else "")
    if dof < 1:
        return "as many estimates as trials"
    return ""


def _contrast(column: _Column, difference, ci, verdict: str, note: str = "") -> Contrast:
    return Contrast(column.hyperparameter, column.value, column.reference, difference, ci, column.n,
                    column.n_reference, verdict, note)
