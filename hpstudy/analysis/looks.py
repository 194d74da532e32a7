"""Verdicts that hold over repeated looks at a growing study (`search.until: answered`): every look is held to
Pocock's boundary for the looks the study's budget allows. At each look an `effect` needs a family p-value below
that level, and `negligible` an interval at that level inside the smallest effect that matters.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy import stats

from hpstudy.analysis import statistics
from hpstudy.analysis.effects import Effect


# Stopping at the first round where every question verdict is decisive gives a null difference a new chance to
# cross the threshold at every round (in 100 simulated studies, 15% stopped on a false effect). So every look is
# held to Pocock's boundary: the one nominal level that, used at each of K equally spaced looks at accumulating
# data, keeps the chance of any false finding at 5% (K=6: 1.4% at each look, where splitting the 5% evenly would
# give 0.8%).
@functools.lru_cache(maxsize=None)
def look_level(looks: int) -> float:
    """The confidence level each of `looks` looks is held to: 1 - Pocock's nominal level (0.95 for one look).
    Pocock's constant c is the 95% quantile of max |Z_k| over k = 1..looks, Z_k the standardized sum of k
    independent normal increments; it is estimated from 200,000 such walks (fixed seed: the same level every
    time; its error is about 0.01 in c, or 0.0005 in the level). Tables give c = 2.361 for 4 looks, 2.453 for 6."""
    if looks <= 1:
        return statistics.LEVEL
    walks = np.random.default_rng(0).standard_normal((200_000, looks)).cumsum(axis=1)
    largest = np.abs(walks / np.sqrt(np.arange(1, looks + 1))).max(axis=1)
    c = float(np.quantile(largest, statistics.LEVEL))
    return 1 - 2 * float(stats.norm.sf(c))


def widened(ci95: tuple[float, float], looks: int, dof: int | None = None) -> tuple[float, float]:
    """A 95% interval widened about its middle to `look_level(looks)`: by the ratio of t quantiles on `dof`
    degrees of freedom (an interval from a fit), or of normal quantiles (`dof` None: a normal interval)."""
    quantile = stats.norm.ppf if dof is None else functools.partial(stats.t.ppf, df=dof)
    ratio = quantile(0.5 + look_level(looks) / 2) / quantile(0.5 + statistics.LEVEL / 2)
    middle, half = (ci95[0] + ci95[1]) / 2, (ci95[1] - ci95[0]) / 2
    return middle - ratio * half, middle + ratio * half


def verdict_at(effect: Effect, smallest: float | None, looks: int) -> str:
    """`effect`'s verdict if it holds at each of `looks` looks' level (`effect`: a contrast, of the score or of
    the share of runs that did not train, with family p-value below 1 - `look_level`; `negligible`:
    every negligible contrast's widened interval still inside +-`smallest`), else `undetermined` (or the 95%
    verdict when that is not decisive)."""
    word = effect.verdict
    if word == statistics.EFFECT:
        alpha = 1 - look_level(looks)
        held = any(c.verdict == statistics.EFFECT and c.p_family is not None and c.p_family < alpha
                   for c in effect.outcomes)
        return word if held else statistics.UNDETERMINED
    if word == statistics.NEGLIGIBLE:
        held = smallest is not None and all(-smallest < low and high < smallest for low, high in (
            widened(c.ci95, looks, c.dof) for c in effect.contrasts
            if c.verdict == statistics.NEGLIGIBLE and c.ci95 is not None))
        return word if held else statistics.UNDETERMINED
    return word
