"""The expected best score as a function of the number of trials, per value of a scientific hyperparameter
(Dodge et al. 2019, "Show your work"), so values are compared at equal budgets. No Keras.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from hpstudy.analysis.adjusted import labelled
from hpstudy.analysis.training import halves
from hpstudy.analysis.verdicts import show

BOOTSTRAP_ROUNDS = 400
COLUMNS = ["value", "trials", "expected", "low", "high", "of"]


# The estimator is the unbiased one of Tang et al. (2020): the mean of the best of n trials drawn without
# replacement from a value's N trials.
@lru_cache(maxsize=256)
def _weights(count: int) -> np.ndarray:
    """W[n - 1, i - 1] = P(the best of n draws without replacement is the i-th smallest of `count`)
    = [C(i, n) - C(i - 1, n)] / C(count, n): the estimator is W @ the scores sorted ascending."""
    out = np.zeros((count, count))
    for n in range(1, count + 1):
        ratio = [_comb_ratio(i, n, count) for i in range(count + 1)]
        out[n - 1] = np.diff(ratio)
    return out


def _comb_ratio(i: int, n: int, total: int) -> float:
    """C(i, n) / C(total, n), in logs so that large counts do not overflow."""
    if i < n:
        return 0.0
    return math.exp(math.lgamma(i + 1) - math.lgamma(i - n + 1) - math.lgamma(total + 1) + math.lgamma(total - n + 1))


def expected_best(scores, budgets, *, minimize: bool = False) -> np.ndarray:
    """The expected best of `n` trials drawn without replacement from `scores`, for each n in `budgets`
    (each at most len(scores))."""
    sign = -1 if minimize else 1
    values = np.sort(np.asarray(scores, float) * sign)                      # ascending: the best last
    rows = np.asarray(list(budgets), int) - 1
    return sign * (_weights(len(values))[rows] @ values)


def curves(done: pd.DataFrame, name: str, *, minimize: bool, rounds: int = BOOTSTRAP_ROUNDS,
           seed: int = 0, labels: pd.Series | None = None) -> pd.DataFrame:
    """Per value of `name` (or of `labels`, one per row of `done`) and budget n (1 to that value's number of
    trials): the expected best score of n trials and its 95% bootstrap band. Columns: COLUMNS (value as text;
    `of`: the value's trial count)."""
    # The 95% band is a percentile bootstrap over the value's trials. Every completed run counts, those that did not
    # train too: a budget of n trials buys their chance of diverging as well.
    rng = np.random.default_rng(seed)
    sign = -1 if minimize else 1
    labels = labelled(done[name]).map(show) if labels is None else labels
    rows = []
    for value, group in done.groupby(labels.astype(str).to_numpy(), sort=True):
        scores = group["score"].to_numpy(float)
        scores = scores[np.isfinite(scores)] * sign
        if not len(scores):
            continue
        weights = _weights(len(scores))
        expected = weights @ np.sort(scores)
        resampled = np.sort(rng.choice(scores, (rounds, len(scores))), axis=1) @ weights.T
        low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
        if minimize:
            low, high = -high, -low
        rows += [[value, n, sign * e, lo, hi, len(scores)]
                 for n, e, lo, hi in zip(range(1, len(scores) + 1), expected, low, high)]
    return pd.DataFrame(rows, columns=COLUMNS)


def ranking(table: pd.DataFrame, name: str, *, minimize: bool) -> str:
    """Whether the values' order by expected best holds at every equal budget, in one sentence: which value is
    ahead up to which number of trials per value, and which beyond; and whether the leader's 95% band clears
    the others' at the largest common budget (else the order is not shown to be more than chance)."""
    if table["value"].nunique() < 2:
        return ""
    common = int(table.groupby("value")["of"].first().min())
    leaders = []
    for n in range(1, common + 1):
        at = table[table.trials == n].set_index("value")["expected"]
        leaders.append(at.idxmin() if minimize else at.idxmax())
    spans, start = [], 1
    for n in range(2, common + 2):
        if n > common or leaders[n - 1] != leaders[n - 2]:
            spans.append((leaders[n - 2], start, n - 1))
            start = n
    per_value = f"trial{'s' * (common > 1)} per value"
    if len(spans) == 1:
        text = f"{name} {spans[0][0]} has the best expected score at every equal budget from 1 to {common} {per_value}"
    else:
        parts = [f"{value} from {a} to {b}" if a != b else f"{value} at {a}" for value, a, b in spans]
        text = (f"{name}: the value with the best expected score changes with the budget ({per_value}): "
                + ", ".join(parts))
    last = table[table.trials == common].set_index("value")
    leader, others = last.loc[leaders[-1]], last.drop(index=leaders[-1])
    clear = (leader["low"] > others["high"].max()) if not minimize else (leader["high"] < others["low"].min())
    return text + (f"; at {common} {per_value} its 95% band clears the others'" if clear
                   else f"; at {common} {per_value} the 95% bands overlap, so the order may be chance")


def of_question(done: pd.DataFrame, question, *, minimize: bool, ranged=frozenset(),
                rounds: int = BOOTSTRAP_ROUNDS) -> dict[str, tuple[pd.DataFrame, str]]:
    """Per scientific hyperparameter of `question` with at least two values among `done`'s trials: its curves
    (`curves`; a `ranged` one split at its median) and the ranking sentence."""
    out = {}
    for name in question:
        labels = halves(done[name]) if name in ranged else None     # a range: split at its median, as designs bin it
        table = curves(done, name, minimize=minimize, rounds=rounds, labels=labels)
        if table["value"].nunique() >= 2:
            out[name] = (table, ranking(table, name, minimize=minimize))
    return out
