"""The least-squares fit behind the adjusted effects (analysis.adjusted): which columns of a design the trials
can estimate, the fit with heteroscedasticity-robust intervals, and the estimates the report needs from it. No Keras.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpstudy.analysis import statistics

LEVERAGE_ONE = 1 - 1e-9     # a trial at this leverage alone fixes a coefficient: HC3 is undefined for it
LOADING = 1e-6              # a null-space vector loads on a column above this (columns scaled to length 1)


@dataclass
class Fit:
    """A fitted design: `position` maps a column number to its coefficient's index (intercept at 0), `aliased`
    maps each aliased column to the columns it is dependent with; `dof` the residual degrees of freedom."""

    result: Any = None                          # statsmodels' results (HC3), None when nothing could be fitted
    position: dict = field(default_factory=dict)
    aliased: dict = field(default_factory=dict)
    dof: int = 0

    def combination(self, weights: dict) -> tuple[float, tuple[float, float], float]:
        """The estimate, 95% interval and p-value of sum(weight x coefficient) over `weights` (column -> weight)."""
        vector = np.zeros(len(self.result.params))
        for column, weight in weights.items():
            vector[self.position[column]] = weight
        test = self.result.t_test(vector)
        low, high = np.asarray(test.conf_int(alpha=1 - statistics.LEVEL)).ravel()
        return float(np.squeeze(test.effect)), (float(low), float(high)), float(np.squeeze(test.pvalue))

    def vertex(self, straight: int, square: int) -> tuple[float, float, float] | None:
        """Where a + b u + c u^2 turns, u* = -b / (2c), with its delta-method 95% interval (t on `dof`)."""
        from scipy import stats

        i, j = self.position.get(straight), self.position.get(square)
        if i is None or j is None:
            return None
        b, c = float(self.result.params[i]), float(self.result.params[j])
        if c == 0:
            return None
        cov = np.asarray(self.result.cov_params())[np.ix_([i, j], [i, j])]
        gradient = np.array([-1 / (2 * c), b / (2 * c * c)])
        se = math.sqrt(max(float(gradient @ cov @ gradient), 0.0))
        at, half = -b / (2 * c), float(stats.t.ppf(0.5 + statistics.LEVEL / 2, self.dof)) * se
        return at, at - half, at + half


# Aliasing is symmetric: a column is *aliased* when it belongs to a linearly dependent set of columns (with the
# intercept), i.e. some vector of the design's null space loads on it. Every such column is left out, not only the
# later ones: left to the order of the names, the first of two hyperparameters that always moved together took the
# whole effect and the second was "not separable". The null space is read off the SVD of the design with its
# columns scaled to unit length (a squared range of 16..512 and an indicator column differ by 10^5 in size).
def aliased(columns: list[np.ndarray]) -> dict[int, set[int]]:
    """Each column (with an intercept beside them) that is linearly dependent with others -> those others."""
    if not columns:
        return {}
    x = np.column_stack([np.ones(len(columns[0])), *columns])
    norms = np.linalg.norm(x, axis=0)
    scaled = x / np.where(norms > 0, norms, 1.0)
    _, singular, vt = np.linalg.svd(scaled, full_matrices=True)
    tolerance = singular.max() * max(scaled.shape) * np.finfo(float).eps * 10 if len(singular) else 0.0
    rank = int((singular > tolerance).sum())
    loads = np.abs(vt[rank:]) > LOADING                    # rows: a basis of the null space
    out: dict[int, set[int]] = {}
    for row in loads:
        members = {k - 1 for k in np.flatnonzero(row) if k > 0}
        for k in members:
            out.setdefault(k, set()).update(members - {k})
    for k, column in enumerate(columns):                   # a constant column: dependent with the mean alone
        if norms[k + 1] == 0 or np.ptp(column) == 0:
            out.setdefault(k, set())
    return out


# Intervals are t-based (the residual degrees of freedom) with HC3 standard errors (MacKinnon and White 1985): a
# value whose trials are four times noisier than the others' got ordinary intervals that excluded zero for 11-13%
# of its null contrasts. HC3 divides each residual by 1 - its leverage, undefined at leverage 1: a trial that alone
# determines a coefficient (a value seen once). Such trials are set aside with the columns they alone determine;
# the other coefficients are unchanged, as that trial's residual is 0 either way.
def fit(y: np.ndarray, columns: list[np.ndarray], secondary=()) -> Fit:
    """OLS of `y` on an intercept and every column that is not aliased, HC3 t intervals, trials at leverage 1 set
    aside (see the comment above); Fit(dof=0) when there are at least as many coefficients as trials.
    `secondary` columns (a conditional hyperparameter's inactive trials, which its parent's value decides by
    construction) are judged after the others: one the others explain is left out, and they keep the effect."""
    import statsmodels.api as sm

    if len(y) <= len(columns) + 1:
        return Fit(dof=len(y) - len(columns) - 1)
    primary = [k for k in range(len(columns)) if k not in set(secondary)]
    dependent = {primary[k]: {primary[j] for j in others}
                 for k, others in aliased([columns[k] for k in primary]).items()}
    kept = [k for k in primary if k not in dependent]
    for k in secondary:
        found = aliased([columns[j] for j in kept] + [columns[k]])
        if len(kept) in found:
            dependent[k] = {kept[j] for j in found[len(kept)]}
        else:
            kept.append(k)
    rows = np.ones(len(y), dtype=bool)
    for _ in range(len(y)):                                # set aside trials that alone fix a coefficient
        x = np.column_stack([np.ones(rows.sum()), *[columns[k][rows] for k in kept]])
        kept = [k for k, part in zip(kept, x[:, 1:].T) if np.ptp(part) > 0 or part.any()]
        x = np.column_stack([np.ones(rows.sum()), *[columns[k][rows] for k in kept]])
        if np.linalg.matrix_rank(x) < x.shape[1]:          # only by setting trials aside: keep the first ones
            kept = _independent(x, kept)
            x = np.column_stack([np.ones(rows.sum()), *[columns[k][rows] for k in kept]])
        q, _ = np.linalg.qr(x)
        alone = (q ** 2).sum(axis=1) > LEVERAGE_ONE
        if not alone.any():
            break
        rows[np.flatnonzero(rows)[alone]] = False
    dof = int(rows.sum()) - x.shape[1]
    if dof < 1:
        return Fit(aliased=dependent, dof=dof)
    result = sm.OLS(y[rows], x).fit(cov_type="HC3", use_t=True)
    return Fit(result, {k: i + 1 for i, k in enumerate(kept)}, dependent, dof)


def _independent(x: np.ndarray, kept: list[int]) -> list[int]:
    """The columns of `x` (after its intercept) that the ones before them do not explain."""
    chosen, out = [x[:, 0]], []
    for k, part in zip(kept, x[:, 1:].T):
        if np.linalg.matrix_rank(np.column_stack([*chosen, part])) == len(chosen) + 1:
            chosen.append(part)
            out.append(k)
    return out
