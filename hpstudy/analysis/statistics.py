"""The statistics behind every number hpstudy shows as a finding: intervals of means, the pooled seed-to-seed
noise, the difference of two configurations, and the verdict rule. scipy does the distributions; nothing here
re-derives what it already does. No Keras.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95                 # every interval hpstudy shows is a 95% interval
EFFECT, WITHIN_NOISE, TOO_FEW = "effect", "within noise", "too few trials"
NEGLIGIBLE, UNDETERMINED = "negligible", "undetermined"
VERDICTS = (EFFECT, WITHIN_NOISE, TOO_FEW)


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


def verdict(diff: float | None, ci95, noise_floor: float | None, p_family: float | None = None) -> str:
    """`effect` when the interval excludes zero, the family-adjusted p-value (where given, see
    adjusted.family) is below 1 - LEVEL, and the difference exceeds the noise floor (where it was measured);
    `within noise` otherwise; `too few trials` when there is no interval."""
    if diff is None or ci95 is None or not all(math.isfinite(v) for v in ci95):
        return TOO_FEW
    excludes_zero = (ci95[0] > 0 or ci95[1] < 0) and (p_family is None or p_family < 1 - LEVEL)
    beyond_noise = noise_floor is None or abs(diff) > noise_floor
    return EFFECT if excludes_zero and beyond_noise else WITHIN_NOISE
