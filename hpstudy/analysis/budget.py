"""The expected best score as a function of the number of trials, per value of a scientific hyperparameter
(Dodge et al. 2019, "Show your work"), so values are compared at equal budgets.

The estimator is the unbiased one of Tang et al. (2020): the mean of the best of n trials drawn without
replacement from a value's N trials. The 95% band is a bootstrap over those trials. No Keras.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

BOOTSTRAP_ROUNDS = 400


def expected_best(scores, budgets, *, minimize: bool = False) -> np.ndarray:
    """The expected best of `n` trials drawn without replacement from `scores`, for each n in `budgets`
    (each at most len(scores))."""
    values = np.sort(np.asarray(scores, float) * (-1 if minimize else 1))      # ascending: the best last
    count = len(values)
    out = []
    for n in budgets:
        # P(the best of n is the i-th smallest) = [C(i, n) - C(i-1, n)] / C(N, n), i = n..N (1-based).
        chance = np.array([_comb_ratio(i, n, count) - _comb_ratio(i - 1, n, count) for i in range(1, count + 1)])
        out.append(float(chance @ values))
    return np.asarray(out) * (-1 if minimize else 1)


def _comb_ratio(i: int, n: int, total: int) -> float:
    """C(i, n) / C(total, n), in logs so that large counts do not overflow."""
    if i < n:
        return 0.0
    return math.exp(math.lgamma(i + 1) - math.lgamma(i - n + 1) - math.lgamma(total + 1) + math.lgamma(total - n + 1))


def curves(done: pd.DataFrame, name: str, *, minimize: bool, rounds: int = BOOTSTRAP_ROUNDS,
           seed: int = 0) -> pd.DataFrame:
    """Per value of `name` and budget n (1 to that value's number of trials): the expected best score of n trials
    and its 95% bootstrap band. Columns: `name`, trials, expected, low, high, of (the value's trial count)."""
    rng = np.random.default_rng(seed)
    rows = []
    for value, group in done.groupby(done[name].astype(str), sort=True):
        scores = group["score"].to_numpy(float)
        scores = scores[np.isfinite(scores)]
        if not len(scores):
            continue
        budgets = range(1, len(scores) + 1)
        expected = expected_best(scores, budgets, minimize=minimize)
        resampled = np.array([expected_best(rng.choice(scores, len(scores)), budgets, minimize=minimize)
                              for _ in range(rounds)])
        low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
        rows += [{name: value, "trials": n, "expected": e, "low": lo, "high": hi, "of": len(scores)}
                 for n, e, lo, hi in zip(budgets, expected, low, high)]
    return pd.DataFrame(rows, columns=[name, "trials", "expected", "low", "high", "of"])


def ranking(table: pd.DataFrame, name: str, *, minimize: bool) -> str:
    """Whether the values' order by expected best holds at every equal budget, in one sentence: which value is
    ahead up to which number of trials per value, and which beyond."""
    values = list(pd.unique(table[name]))
    if len(values) < 2:
        return ""
    common = int(table.groupby(name)["of"].first().min())
    leaders = []
    for n in range(1, common + 1):
        at = table[table.trials == n].set_index(name)["expected"]
        leaders.append(at.idxmin() if minimize else at.idxmax())
    spans, start = [], 1
    for n in range(2, common + 2):
        if n > common or leaders[n - 1] != leaders[n - 2]:
            spans.append((leaders[n - 2], start, n - 1))
            start = n
    if len(spans) == 1:
        return (f"{name} {spans[0][0]} has the best expected score at every equal budget from 1 to {common} "
                f"trial{'s' * (common > 1)} per value")
    parts = [f"{value} from {a} to {b}" if a != b else f"{value} at {a}" for value, a, b in spans]
    return f"{name}: the value with the best expected score changes with the budget (trials per value): " + \
        ", ".join(parts)
