"""Effects that control for the other hyperparameters: one additive linear model of the score over every
searched hyperparameter at once (ordinary least squares, statsmodels), so that a value that happened to come
with a good setting of another hyperparameter is not credited with that setting's effect. Each difference comes
with its 95% interval. Main effects only: the question's interactions are asked apart (analysis.interactions).
No Keras.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hpstudy.analysis import design, statistics

METHOD = ("One additive least-squares model of the score over every searched hyperparameter (statsmodels OLS, "
          "main effects; a searched range as a straight term and a centred square on its sampling scale, its "
          "difference taken between the trials' upper and lower quartiles), 95% t intervals from "
          "heteroscedasticity-robust (HC3) standard errors.")
MAX_LEVELS = 6              # numbers with more distinct values are fitted as a slope
MIN_PER_VALUE = 3           # a value seen in fewer trials is never compared: two could be one lucky pairing
MIN_CURVE = 8               # a range's square is fitted from this many active trials: fewer cannot show a curve
INACTIVE = "(inactive)"     # the group of trials where a conditional hyperparameter was not used
RANGE, CURVE, LEVEL = "range", "curve", "level"     # Contrast.kind: q75 vs q25, middle vs ends, a value
@dataclass(frozen=True)
class Curve:
    """A range's fitted curve on its sampling scale (log10 where sampled log), for the plots: the score moves by
    `slope` (95% interval `slope_ci`) per unit at `centre` (the active trials' mean) and bends by `square` per
    unit squared, about its mean `spread` over the trials: y = mean + slope (x - centre) + square ((x - centre)^2
    - spread). `square` is 0 where no square was fitted."""

    centre: float
    slope: float
    slope_ci: tuple[float, float]
    square: float = 0.0
    spread: float = 0.0


@dataclass(frozen=True)
class Contrast:
    """One estimated difference in the objective: `value` vs `reference`, adjusted for the other
    hyperparameters. A range's contrasts (`kind` RANGE or CURVE) have `reference` None and say in `value` what
    they compare: its upper quartile vs its lower one (`q75 vs q25 (0.0003 -> 0.003)`), or the middle of its
    observed span vs its two ends; the RANGE one carries the fitted `curve`."""

    hyperparameter: str
    value: object
    reference: object
    difference: float | None
    ci95: tuple[float, float] | None
    n: int                          # trials with `value` (a range: trials where it was active)
    n_reference: int | None
    verdict: str
    note: str = ""                  # why there is no number, when there is none; a range's optimum, where found
    p_value: float | None = None    # the contrast's own p-value (the model's t test)
    p_family: float | None = None   # Holm-adjusted over every estimated contrast of the study (see `family`)
    more: int | None = None         # undetermined: roughly how many more trials per value would settle it
    outcome: str = "score"          # what differs: the score, or training.OUTCOME (the share that did not train)
    kind: str = LEVEL               # LEVEL (a value, or a range's INACTIVE), RANGE or CURVE
    curve: Curve | None = None      # RANGE: the fitted curve on the sampling scale
    dof: int | None = None          # the t interval's degrees of freedom (None: a normal interval)

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


def is_numeric(values: pd.Series) -> bool:
    """Whether a hyperparameter's known values are all numbers (booleans and strings are not)."""
    known = values.dropna()
    if known.empty or pd.api.types.is_bool_dtype(known):
        return False
    if pd.api.types.is_numeric_dtype(known):
        return True
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in known)


def labelled(values: pd.Series) -> pd.Series:
    """A hyperparameter's values, each trial where it was inactive (missing) as INACTIVE."""
    return values.astype(object).where(values.notna(), INACTIVE)


def levels_of(values: pd.Series, order_key) -> list:
    """The distinct values of a hyperparameter (inactive as its own), in the report's order."""
    return sorted(pd.unique(labelled(values)), key=order_key)


def reference_of(labels: pd.Series, order_key):
    """The value every other value of a hyperparameter is compared with: its most frequent among `labels` (ties:
    the first in the report's order; INACTIVE only when nothing else was seen). The first value would make a value
    seen in two trials the reference, and every contrast of the hyperparameter too few."""
    levels = sorted(pd.unique(labels), key=order_key)
    counts = labels.value_counts()
    return max([v for v in levels if v != INACTIVE] or levels, key=lambda v: counts[v])


@dataclass
class _Column:
    hyperparameter: str
    value: object               # the level, or INACTIVE, or "x" / "x^2" for a range's terms
    data: np.ndarray
    n: int
    n_reference: int | None
    reference: object = None


@dataclass
class _Wanted:
    """One contrast to estimate: a weighted sum of some columns' coefficients (`weights`: column -> weight)."""

    column: _Column             # whose hyperparameter, value label and counts the contrast shows
    weights: dict
    kind: str = LEVEL
    range: dict | None = None   # RANGE / CURVE: what the curve and the optimum need (sampled scale)


def _fmt(x: float, log: bool) -> str:
    return f"{10 ** x if log else x:.3g}"


# A range (a searched range, or numbers with more than MAX_LEVELS distinct values) enters on the scale it was
# searched on (log10 where sampled log): a straight term and, with at least MIN_CURVE active trials, a centred
# square; trials where it was inactive get the mean and a column of their own. Its difference is the one the model
# predicts *between the upper and lower quartiles of the trials' values* (q75 vs q25, on the sampled scale), a
# difference in the score like any other: a slope per unit of dense_units printed +0.000 and a slope per tenfold
# depended on how wide the range was searched, and neither could be compared with the smallest effect that
# matters. The quartiles rather than the searched bounds: they need no study file (`hpstudy analyze` has none),
# hold where the trials are, and a few trials at an edge do not stretch the claim to values barely tried. The
# square gives a second contrast, the middle of the observed range against its two ends (`middle vs ends`), which
# finds an optimum inside the range that a straight term averages away (`_with_optimum`).
def _range(trials: pd.DataFrame, name: str, log: bool, start: int) -> tuple[list[_Column], list[_Wanted]]:
    """A searched range's columns (straight, centred square, inactive) from column number `start`, and its
    contrasts: q75 vs q25 of the active trials' values, and the middle of their span vs its ends."""
    x = pd.to_numeric(trials[name], errors="coerce").astype(float)
    if log:
        x = np.log10(x.where(x > 0))
    active = x.notna()
    seen = x[active].to_numpy()
    centre = float(seen.mean()) if len(seen) else 0.0
    u = (x - centre).fillna(0.0).to_numpy()
    columns = [_Column(name, "x", u, int(active.sum()), None)]
    info = {"log": log, "centre": centre, "straight": start, "square": None}
    if len(seen) >= MIN_CURVE and len(np.unique(seen)) >= 3:
        spread = float(np.mean((seen - centre) ** 2))
        columns.append(_Column(name, "x^2", np.where(active, u ** 2 - spread, 0.0), int(active.sum()), None))
        info.update(square=start + 1, spread=spread)
    if not active.all():
        columns.append(_Column(name, INACTIVE, (~active).to_numpy(dtype=float), int((~active).sum()), None))
    if not len(seen):
        return columns, [_Wanted(columns[0], {start: 1.0}, RANGE, info)]
    low, high = float(seen.min()), float(seen.max())
    q25, q75 = (float(q) for q in np.quantile(seen, [0.25, 0.75]))
    label = f"q75 vs q25 ({_fmt(q25, log)} -> {_fmt(q75, log)})"
    if q75 <= q25:          # most trials at one value: the span's ends instead
        q25, q75, label = low, high, f"highest vs lowest ({_fmt(low, log)} -> {_fmt(high, log)})"
    shown = dataclasses.replace(columns[0], value=label)
    wanted = [_Wanted(shown, {start: q75 - q25}, RANGE, {**info, "low": low, "high": high})]
    if info["square"] is not None:
        # The model's prediction at q75 minus at q25, the square's share included (centred at `centre`).
        wanted[0].weights[start + 1] = (q75 - centre) ** 2 - (q25 - centre) ** 2
        middle = dataclasses.replace(columns[1], value=f"middle vs ends ({_fmt(low, log)} -> {_fmt(high, log)})")
        wanted.append(_Wanted(middle, {start + 1: -((high - low) ** 2) / 4}, CURVE, wanted[0].range))
    if not active.all():
        wanted.append(_Wanted(columns[-1], {start + len(columns) - 1: 1.0}))
    return columns, wanted


# Levels (a choice, a boolean): one column per value but the reference (`reference_of`), so each value gets its
# difference to the reference.
def _columns(trials: pd.DataFrame, name: str, *, slope: bool, log: bool, order_key,
             start: int) -> tuple[list[_Column], list[_Wanted]]:
    if slope:
        return _range(trials, name, log, start)
    labels = labelled(trials[name])
    reference = reference_of(labels, order_key)
    n_reference = int((labels == reference).sum())
    columns = [_Column(name, level, (labels == level).to_numpy(dtype=float), int((labels == level).sum()),
                       n_reference, reference) for level in levels_of(trials[name], order_key) if level != reference]
    return columns, [_Wanted(c, {start + k: 1.0}) for k, c in enumerate(columns)]


def contrasts(trials: pd.DataFrame, searched: dict, *, smallest: float | None = None, order_key=str,
              question=(), minimize: bool = False) -> list[Contrast]:
    """The adjusted contrasts of every hyperparameter in `searched` (name -> (fitted as a range, searched on a
    log scale)) over `trials` (completed, with a float `score`), each with its verdict (see statistics.verdict;
    `smallest`: the smallest effect that matters; `question`: the scientific hyperparameters, see `family`;
    `minimize`: whether a lower score is better, which decides which way a range's optimum bends)."""
    columns: list[_Column] = []
    wanted: list[_Wanted] = []
    for name, (slope, log) in searched.items():
        more, asked = _columns(trials, name, slope=slope, log=log, order_key=order_key, start=len(columns))
        columns += more
        wanted += asked
    y = trials["score"].to_numpy(dtype=float)
    # t intervals with heteroscedasticity-robust (HC3) standard errors: design.fit says why. A conditional
    # hyperparameter's inactive column, which its parent's value decides by construction, is the one left out when
    # the two coincide: the parent keeps the effect.
    fit = design.fit(y, [c.data for c in columns],
                     secondary=[k for k, c in enumerate(columns) if c.value == INACTIVE])
    out, tests = [], []
    for item in wanted:
        reason = _too_few(item, columns, fit)
        if reason:
            out.append(_contrast(item, None, None, statistics.TOO_FEW, reason))
            continue
        estimate, (low, high), p = fit.combination(item.weights)
        if not all(math.isfinite(v) for v in (estimate, low, high, p)):
            out.append(_contrast(item, None, None, statistics.TOO_FEW, "no finite interval"))
            continue
        tests.append((len(out), p))
        out.append(dataclasses.replace(_contrast(item, estimate, (low, high), statistics.TOO_FEW,
                                                 curve=_curve(item, fit)), dof=fit.dof))
    out = family(out, tests, smallest, question)
    return [_with_optimum(c, item, fit, minimize) for c, item in zip(out, wanted)]


# With a question, the study's 5% chance of any false finding is split between Holm families (Bonferroni across
# them): the question's contrasts get QUESTION_SHARE of it, the nuisance ones NUISANCE_SHARE, and the rest is the
# question's interactions' (analysis.interactions.SHARE). A study asks about its question; its nuisance
# contrasts are a by-product that should not cost the question its power.
QUESTION_SHARE = 0.7
NUISANCE_SHARE = 0.2


def family(out: list[Contrast], tests: list[tuple[int, float]], smallest: float | None,
           question=()) -> list[Contrast]:
    """Each estimated contrast (`tests`: its position in `out`, its p-value) with its verdict after Holm's
    step-down: a study with 9 contrasts has 9 chances of a 5% error, and without a family control 20-32% of
    studies with no true effect printed a finding. One family of every contrast; with a `question`, the
    question's contrasts and the others as two families at QUESTION_SHARE and NUISANCE_SHARE of the 5%
    (their `p_family` scaled so that below 0.05 still means a finding)."""
    asked = [t for t in tests if out[t[0]].hyperparameter in question]
    groups = [(asked, QUESTION_SHARE), ([t for t in tests if t not in asked], NUISANCE_SHARE)] if asked \
        else [(tests, 1.0)]
    for members, share in groups:
        if not members:
            continue
        held = statistics.holm([p for _, p in members])
        for (i, p), adjusted_p in zip(members, held):
            c = out[i]
            p_family = min(1.0, float(adjusted_p) / share)
            word = statistics.verdict(c.difference, c.ci95, smallest, p_family)
            n = min(c.n, c.n_reference) if c.n_reference is not None else c.n
            more = (statistics.more_trials(c.difference, c.ci95, n, smallest)
                    if word == statistics.UNDETERMINED and c.difference is not None else None)
            out[i] = dataclasses.replace(c, p_value=p, p_family=p_family, verdict=word, more=more)
    return out


# Columns that the trials cannot tell apart (a set of linearly dependent columns: two hyperparameters that always
# moved together) are all left out of the model and each is "too few trials", naming its partners, whatever the
# order of the names; a value seen in fewer than MIN_PER_VALUE trials is too.
def _too_few(item: _Wanted, columns: list[_Column], fit) -> str:
    column = item.column
    if any(k in fit.aliased for k in item.weights):          # the design's doing: said before any count
        partners = sorted({columns[j].hyperparameter if columns[j].reference is None
                           else f"{columns[j].hyperparameter}={columns[j].value}"
                           for k in item.weights if k in fit.aliased for j in fit.aliased[k]
                           if columns[j].hyperparameter != column.hyperparameter})
        return (f"not separable from {', '.join(partners)} in these trials" if partners
                else "not separable from its other values or the mean in these trials")
    if column.n < MIN_PER_VALUE or (column.n_reference is not None and column.n_reference < MIN_PER_VALUE):
        return f"n={column.n}" + (f" vs {column.n_reference}" if column.n_reference is not None else "")
    if fit.dof < 1:
        return "as many estimates as trials"
    if any(k not in fit.position for k in item.weights):
        return "fitted exactly by its own trials"
    return ""


def _curve(item: _Wanted, fit) -> Curve | None:
    if item.kind != RANGE or item.range is None:
        return None
    info, straight = item.range, item.range["straight"]
    estimate, ci, _ = fit.combination({straight: 1.0})
    square = fit.combination({info["square"]: 1.0})[0] if info["square"] is not None else 0.0
    return Curve(info["centre"], estimate, ci, square, info.get("spread", 0.0))


def _with_optimum(contrast: Contrast, item: _Wanted, fit, minimize: bool) -> Contrast:
    """A CURVE contrast that is an effect bending the good way (the middle better than the ends), with its top
    inside the observed span: the note says where, with the delta-method 95% interval of the vertex."""
    info = item.range
    if (item.kind != CURVE or info is None or contrast.difference is None or contrast.verdict != statistics.EFFECT
            or (contrast.difference < 0) != minimize):
        return contrast
    top = fit.vertex(info["straight"], info["square"])          # on the scale centred at `centre`
    if top is None or not info["low"] <= top[0] + info["centre"] <= info["high"]:
        return contrast
    at, low, high = (x + info["centre"] for x in top)
    log = info["log"]
    return dataclasses.replace(contrast, note=f"optimum inside the range near {_fmt(at, log)} "
                                              f"(95% interval {_fmt(low, log)} to {_fmt(high, log)})")


def _contrast(item: _Wanted, difference, ci, verdict: str, note: str = "", curve: Curve | None = None) -> Contrast:
    column = item.column
    return Contrast(column.hyperparameter, column.value, column.reference, difference, ci, column.n,
                    column.n_reference, verdict, note, kind=item.kind, curve=curve)
