"""The statistics behind every number hpstudy shows as a finding: intervals of means, the pooled seed-to-seed
noise, the difference of two configurations, and the verdict rule. scipy does the distributions; nothing here
re-derives what it already does. No Keras.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95                 # every interval hpstudy shows is a 95% interval
# The four words a difference can get, each true of its interval (see `verdict`). A hyperparameter gets the first
# of them any of its contrasts has, in this order (verdicts.verdict_of).
EFFECT, UNDETERMINED, NEGLIGIBLE, TOO_FEW = "effect", "undetermined", "negligible", "too few trials"
VERDICTS = (EFFECT, UNDETERMINED, NEGLIGIBLE, TOO_FEW)


@dataclass(frozen=True)
class Summary:
    """A sample of scores: its size, mean, standard deviation and the 95% interval of its mean (t-based)."""

    n: int
    mean: float | None
    std: float | None
    ci95: tuple[float, float] | None


def summarize(values) -> Summary:
    """Mean, std (n - 1) and the t interval of the mean of the finite `values` (no interval below 2 values)."""
    from scipy import stats
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return Summary(0, None, None, None)
    if len(x) == 1:
        return Summary(1, float(x[0]), None, None)
    mean, std = float(x.mean()), float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, len(x) - 1) * std / math.sqrt(len(x)))
    return Summary(len(x), mean, std, (mean - half, mean + half))


def pooled_std(groups) -> tuple[float | None, int]:
    """The pooled within-group standard deviation of several samples (each configuration's seed repeats) and
    its degrees of freedom: sqrt(sum((n_i - 1) s_i^2) / sum(n_i - 1)); (None, 0) without any group of 2."""
    squares, dof = 0.0, 0
    for values in groups:
        x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
        if len(x) >= 2:
            squares += float(((x - x.mean()) ** 2).sum())
            dof += len(x) - 1
    return (math.sqrt(squares / dof), dof) if dof else (None, 0)


def std_interval(std: float, dof: int) -> tuple[float, float]:
    """The chi-square 95% interval of a standard deviation estimated with `dof` degrees of freedom: how far a
    noise floor from few repeats may be off (with 4 dof, by a factor of 0.6 to 2.9)."""
    from scipy import stats
    tail = (1 - LEVEL) / 2
    return (std * math.sqrt(dof / stats.chi2.ppf(1 - tail, dof)), std * math.sqrt(dof / stats.chi2.ppf(tail, dof)))


@dataclass(frozen=True)
class Difference:
    """The difference of two samples' means (a - b), with Welch's 95% interval and p-value."""

    difference: float
    ci95: tuple[float, float] | None
    p_value: float | None
    n: tuple[int, int]


def difference(a, b) -> Difference | None:
    """Welch's comparison of two samples (unequal variances); None unless both have at least 2 values."""
    from scipy import stats
    a = np.asarray([v for v in a if v is not None and math.isfinite(v)], dtype=float)
    b = np.asarray([v for v in b if v is not None and math.isfinite(v)], dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    diff = float(a.mean() - b.mean())
    if a.std() == 0 and b.std() == 0:       # identical repeats: no spread to test against
        return Difference(diff, (diff, diff), 0.0 if diff else 1.0, (len(a), len(b)))
    test = stats.ttest_ind(a, b, equal_var=False)
    low, high = test.confidence_interval(LEVEL)
    return Difference(diff, (float(low), float(high)), float(test.pvalue), (len(a), len(b)))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given (each at most 1). Written here rather than taken
    from statsmodels' `multipletests`, which runs a full garbage collection on every call: 0.15 s each in a
    process that has trained a Keras model, over a second per until-answered check between rounds."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted


def verdict(diff: float | None, ci95, smallest: float | None, p_family: float | None = None) -> str:
    """`effect` when the interval excludes zero and the family-adjusted p-value (where given, see
    adjusted.family) is below 1 - LEVEL; `negligible` when the whole interval lies within +-`smallest` (the
    smallest effect that matters: the noise floor where measured); `undetermined` otherwise (the interval is too
    wide to say either); `too few trials` when there is no interval."""
    if diff is None or ci95 is None or not all(math.isfinite(v) for v in ci95):
        return TOO_FEW
    if (ci95[0] > 0 or ci95[1] < 0) and (p_family is None or p_family < 1 - LEVEL):
        return EFFECT
    if smallest is not None and -smallest < ci95[0] and ci95[1] < smallest:
        return NEGLIGIBLE
    return UNDETERMINED


def more_trials(diff: float, ci95, n: int, smallest: float | None) -> int | None:
    """Roughly how many more trials per value would settle an undetermined difference at the observed spread:
    the interval's half-width shrinks as 1/sqrt(n), and it settles once narrower than the difference (an effect)
    or than the room between the difference and +-`smallest` (negligible), whichever comes first. None when
    neither can happen (a zero difference without a smallest effect)."""
    half = (ci95[1] - ci95[0]) / 2
    target = max(abs(diff), (smallest - abs(diff)) if smallest else 0.0)
    if target <= 0 or half <= 0 or n < 1:
        return None
    return max(1, math.ceil(n * (half / target) ** 2 - n))


def decimals(ci95) -> int:
    """Decimals that show an interval to about two significant digits of its width (at least 3): never
    `+0.000` for an interval that is not zero."""
    width = abs(ci95[1] - ci95[0]) if ci95 else 0.0
    if not width or not math.isfinite(width):
        return 3
    return int(min(12, max(3, 1 - math.floor(math.log10(width)))))
