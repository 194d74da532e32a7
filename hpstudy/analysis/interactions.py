"""Interactions among a study's question hyperparameters: whether one scientific hyperparameter's effect depends
on another's value. For every pair of the study's `question:` hyperparameters, A's effect within each value of B
(`stratified`, "A | B=b") and the interaction itself (`product`, "A * B"), each with its 95% interval and a
verdict. No Keras.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hpstudy.analysis import adjusted, statistics
from hpstudy.analysis.adjusted import MIN_PER_VALUE, Contrast, labelled, levels_of
from hpstudy.analysis.verdicts import number, show

# The adjusted model (analysis.adjusted) has main effects only, so dropout that helps with one head and hurts with
# the other averages to about nothing there and reads as undetermined; here the question asks it directly.
# These are extra looks at the question the study already asked, so they form a Holm family of their own, separate
# from the main effects' two families (adjusted.family), at SHARE of the 5%. Over 300 simulated null studies with
# the question named, a false finding among main effects and interactions together came in 1.3% of studies; the
# interaction of benchmarks/simulate.py's "interaction" scenario is found in 81.3% (dropout: 3.3% with main effects
# only). The verdict words are the same (statistics.verdict).
SHARE = 1 - adjusted.QUESTION_SHARE - adjusted.NUISANCE_SHARE   # of the 5%: the interactions' family, 0.5%


@dataclass(frozen=True)
class Dependence:
    """One value of `name` against its reference, as it depends on `on`: the interaction contrast and its
    sentence (with the stratified estimates)."""

    name: str
    on: str
    interaction: Contrast
    sentence: str


def stratified(done: pd.DataFrame, searched: dict, name: str, by: str, *, smallest, order_key) -> list[Contrast]:
    """The contrasts of `name` within each value of `by` (labelled "name | by=value"), each adjusted for the
    other searched hyperparameters on that value's trials; "too few trials" where a stratum has too few."""
    others = {k: v for k, v in searched.items() if k != by}
    labels = labelled(done[by])
    out = []
    for level in levels_of(done[by], order_key):
        rows = done[labels == level].reset_index(drop=True)
        label = f"{name} | {by}={show(level)}"
        found = ([c for c in adjusted.contrasts(rows, others, smallest=smallest, order_key=order_key)
                  if c.hyperparameter == name] if len(rows) >= 2 * MIN_PER_VALUE else [])
        if not found:
            found = [Contrast(name, value, reference, None, None, n, n_reference, statistics.TOO_FEW,
                              f"n={n}" + (f" vs {n_reference}" if n_reference is not None else "")
                              + f" with {by}={show(level)}")
                     for value, reference, n, n_reference in _values(rows, name, searched[name], order_key)]
        out += [dataclasses.replace(c, hyperparameter=label) for c in found]
    return out


def _values(rows: pd.DataFrame, name: str, kind: tuple, order_key) -> list[tuple]:
    """(value, reference, n, n_reference) of each contrast `name` would have over `rows`, for a too-few line."""
    slope, log = kind
    if slope:
        return [("per 10x" if log else "per unit", None, int(rows[name].notna().sum()), None)]
    labels = labelled(rows[name])
    levels = levels_of(rows[name], order_key) if len(rows) else []
    if len(levels) < 2:
        return [("(one value)", levels[0] if levels else None, len(rows), None)]
    return [(v, levels[0], int((labels == v).sum()), int((labels == levels[0]).sum())) for v in levels[1:]]


def product(done: pd.DataFrame, searched: dict, name: str, by: str, *, smallest, order_key) -> list[Contrast]:
    """The interaction of `name` (levels or a range) with `by` (levels): per non-reference value of each, how much
    `name`'s effect with that value of `by` differs from its effect with `by`'s reference, from the adjusted
    model of every trial with the product columns added (labelled "name * by")."""
    slope, log = searched[name]
    by_labels, by_levels = labelled(done[by]), levels_of(done[by], order_key)
    if slope:
        x = pd.to_numeric(done[name], errors="coerce").astype(float)
        x, own, levels = (np.log10(x.where(x > 0)) if log else x), None, ["per 10x" if log else "per unit"]
    else:
        x, own, levels = None, labelled(done[name]), levels_of(done[name], order_key)
    if len(levels) < (1 if slope else 2) or len(by_levels) < 2:
        return []
    table, columns, cells = done.copy(), {}, {}
    for value, level in itertools.product(levels[0 if slope else 1:], by_levels[1:]):
        key = f"{name} * {by}: {value}, {level}"
        cells[key] = _cells(x if slope else None, own, by_labels, value, levels[0], level, by_levels[0])
        indicator = (by_labels == level).astype(float)
        table[key] = x * indicator if slope else ((own == value) & (by_labels == level)).astype(int)
        columns[key] = (value, level)
    fitted = adjusted.contrasts(table, {**searched, **{k: (slope, False) for k in columns}}, smallest=smallest,
                                order_key=order_key)
    out = []
    for key, (value, level) in columns.items():
        found = next((c for c in fitted if c.hyperparameter == key and c.value != adjusted.INACTIVE), None)
        what = f"{show(value)}" + ("" if slope else f" vs {show(levels[0])}") + f" with {show(level)}"
        n, n_reference = cells[key][0], cells[key][-1]
        base = Contrast(f"{name} * {by}", what, f"with {show(by_levels[0])}", None, None, n, n_reference,
                        statistics.TOO_FEW, f"n={n} vs {n_reference}")
        if found is None or found.difference is None or found.ci95 is None or min(cells[key]) < MIN_PER_VALUE:
            out.append(base if found is None or not found.note or found.note.startswith("n=")
                       else dataclasses.replace(base, note=found.note))
            continue
        sign = -1.0 if found.value == 0 else 1.0      # a product column compared the other way round
        low, high = sorted(sign * v for v in found.ci95)
        out.append(dataclasses.replace(base, difference=sign * found.difference, ci95=(low, high), note="",
                                       p_value=found.p_value))
    return out


def _cells(x, own, by_labels, value, reference, level, by_reference) -> list[int]:
    """The trials behind one interaction: of levels, the four cells (value, level), (value, by's reference),
    (reference, level), (reference, by's reference); of a range, its active trials with `level` and with by's
    reference."""
    if own is None:
        active = x.notna()
        return [int((active & (by_labels == level)).sum()), int((active & (by_labels == by_reference)).sum())]
    return [int(((own == v) & (by_labels == b)).sum()) for v in (value, reference) for b in (level, by_reference)]


def family(contrasts: list[Contrast], smallest) -> list[Contrast]:
    """Each estimated contrast with its verdict after Holm's step-down over `contrasts` at SHARE of the 5%
    (adjusted.family, given each p-value over SHARE; the contrast keeps its own p-value)."""
    tests = [(i, c.p_value) for i, c in enumerate(contrasts) if c.difference is not None and c.p_value is not None]
    held = adjusted.family(list(contrasts), [(i, min(1.0, p / SHARE)) for i, p in tests], smallest)
    own = dict(tests)
    return [dataclasses.replace(c, p_value=own[i]) if i in own else c for i, c in enumerate(held)]


def interactions(done: pd.DataFrame, searched: dict, question, *, smallest=None,
                 order_key=str) -> tuple[list[Contrast], list[Dependence]]:
    """(every stratified and interaction contrast of the `question` hyperparameters, with verdicts from their own
    Holm family; one Dependence per interaction contrast) over `done` (completed trials that trained, float
    `score`); ([], []) with fewer than two question hyperparameters searched."""
    asked = [name for name in question if name in searched]
    if len(asked) < 2 or not len(done):
        return [], []
    out, pairs = [], []
    for name, by in itertools.permutations(asked, 2):
        if not searched[by][0]:                       # a range has no values to hold fixed
            out += stratified(done, searched, name, by, smallest=smallest, order_key=order_key)
    for first, second in itertools.combinations(asked, 2):
        name, by = (second, first) if not searched[first][0] else (first, second)
        if searched[by][0]:
            continue                                  # two ranges: a product of slopes is not asked here
        found = product(done, searched, name, by, smallest=smallest, order_key=order_key)
        pairs += [(name, by, len(out) + k) for k in range(len(found))]
        out += found
    out = family(out, smallest)
    return out, [Dependence(name, by, out[i], _sentence(out, name, by, out[i])) for name, by, i in pairs]


def _sentence(contrasts: list[Contrast], name: str, by: str, interaction: Contrast) -> str:
    """"model.dropout 0.5 vs 0.2 depends on model.head: +0.020 with dense, -0.020 with gap (interaction -0.040,
    95% interval -0.052 to -0.028: effect)"."""
    value = str(interaction.value).rsplit(" with ", 1)[0]
    within = []
    for c in contrasts:
        if c.hyperparameter.startswith(f"{name} | {by}=") and (f"{show(c.value)}" == value.split(" vs ")[0]
                                                                or c.n_reference is None):
            where = c.hyperparameter.split("=", 1)[1]
            within.append(f"{number(c.difference, c.ci95)} with {where}" if c.difference is not None
                          else f"too few trials with {where}")
    said = f"{name} {value} depends on {by}: " + (", ".join(within) or "no stratum to compare")
    ci = interaction.ci95
    if interaction.difference is None or ci is None:
        return f"{said} (interaction: too few trials, {interaction.note})"
    return (f"{said} (interaction {interaction.value} vs {interaction.reference}: "
            f"{number(interaction.difference, ci)}, 95% interval {number(ci[0], ci)} to {number(ci[1], ci)}: "
            f"{interaction.verdict})")
