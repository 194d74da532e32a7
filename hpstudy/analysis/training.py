"""Runs that did not train, as an outcome of their own: per hyperparameter value, the share of runs that did not
train with its Wilson 95% interval, and each value against the reference in that share (Fisher's exact test,
Holm's step-down over every such comparison of the study: a family of its own). No Keras.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hpstudy.analysis import statistics
from hpstudy.analysis.adjusted import MIN_PER_VALUE, Contrast, labelled, reference_of
from hpstudy.analysis.verdicts import show, verdict_of

OUTCOME = "did not train"      # a Contrast of the share of runs that did not train (not of the score)

RULE = "validation accuracy at the best epoch not above chance (1 / classes) + {margin:g}"
COLUMNS = ["value", "runs", "did not train", "share", "ci95 low", "ci95 high"]


@dataclass
class Training:
    """One hyperparameter's runs that did not train, per value, and each value against the reference in that
    share (Contrasts whose `outcome` is OUTCOME)."""

    name: str
    table: pd.DataFrame            # COLUMNS, one row per value, in value order
    reference: object
    contrasts: list[Contrast]
    sentence: str = ""

    @property
    def verdict(self) -> str:
        """effect when any value's share differs from the reference's (after Holm), else its contrasts' word."""
        return verdict_of(self.contrasts)


def trained_mask(trials: pd.DataFrame) -> pd.Series:
    """Whether each run trained; a run with no `trained` value (unknown) counts as trained."""
    if "trained" not in trials:
        return pd.Series(True, index=trials.index)
    known = trials["trained"].map(lambda v: v if isinstance(v, (bool, np.bool_)) else
                                  {"true": True, "false": False}.get(str(v).strip().lower(), True))
    return known.astype(bool)


def share_interval(failed: int, runs: int) -> tuple[float, float]:
    """Wilson's 95% interval of a proportion (statsmodels): honest at 0 of 8 and 8 of 8, where the normal
    interval collapses to a point."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(failed, runs, alpha=1 - statistics.LEVEL, method="wilson")
    return float(low), float(high)


def halves(values: pd.Series) -> pd.Series:
    """A range's values as its two halves at the median (the same split on any monotone sampling scale):
    `< m` and `>= m`, so that a searched range gets one comparison rather than one per value tried."""
    numbers = pd.to_numeric(values, errors="coerce")
    median = float(numbers.median())
    return numbers.map(lambda v: f">= {show(median)}" if v >= median else f"< {show(median)}")


# A diverged or stuck run (validation accuracy at chance: the `trained` column of the trials table, see
# results.trials.TRAINED_MARGIN) is not a low point on the same curve as the runs that learnt: left among them it
# swamps the score effects (a true 2.5-sd effect with 15% of runs diverging was detected in 8-14% of studies) and can
# flip their sign. So the score effects are estimated on the runs that trained, and those that did not are counted
# here, apart.
def training(done: pd.DataFrame, names: list[str], *, order_key, margin: float,
             ranged: set | frozenset = frozenset()) -> list[Training]:
    """Per hyperparameter (over the completed runs `done`), the runs that did not train per value (per half of
    the range, at its median, for the `ranged` ones), and each value against the reference as a Contrast of the
    share that did not train (outcome "did not train"); [] when every run trained."""
    from scipy import stats

    ok = trained_mask(done)
    if ok.all():
        return []
    found: list[Training] = []
    out: list[tuple[Training, int]] = []            # (the hyperparameter's Training, its contrast's index)
    tests: list[tuple[int, float]] = []             # (index in `out`, Fisher's p-value)
    for name in names:
        labels = halves(done[name]) if name in ranged else labelled(done[name])
        rows = []
        for value in sorted(pd.unique(labels), key=order_key):
            runs, failed = int((labels == value).sum()), int(((labels == value) & ~ok).sum())
            rows.append([value, runs, failed, failed / runs, *share_interval(failed, runs)])
        table = pd.DataFrame(rows, columns=COLUMNS)
        reference = reference_of(labels, order_key)
        ref = table.set_index("value").loc[reference]
        item = Training(name, table, reference, [])
        for row in table.to_dict("records"):
            if row["value"] == reference:
                continue
            a, b = (int(row["did not train"]), int(row["runs"])), (int(ref["did not train"]), int(ref["runs"]))
            if min(b[1], a[1]) < MIN_PER_VALUE:
                item.contrasts.append(_share_contrast(name, row["value"], reference, a, b, None, statistics.TOO_FEW))
                continue
            p = float(stats.fisher_exact([[a[0], a[1] - a[0]], [b[0], b[1] - b[0]]]).pvalue)
            tests.append((len(out), p))
            out.append((item, len(item.contrasts)))
            item.contrasts.append(_share_contrast(name, row["value"], reference, a, b, p, statistics.TOO_FEW))
        found.append(item)
    _judge(out, tests)
    for item in found:
        item.sentence = sentence(item, RULE.format(margin=margin))
    return found


def _share_contrast(name, value, reference, a: tuple, b: tuple, p, verdict) -> Contrast:
    """value vs reference in the share of runs that did not train: the difference with Newcombe's interval."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(a[0], a[1], b[0], b[1], method="newcomb",
                                           alpha=1 - statistics.LEVEL)
    return Contrast(name, value, reference, a[0] / a[1] - b[0] / b[1], (float(low), float(high)), a[1], b[1],
                    verdict, p_value=p, outcome=OUTCOME)


def _judge(out: list, tests: list) -> None:
    """Holm's step-down over every share comparison of the study (a family of its own): `effect` below 5%;
    else `undetermined`: a difference in how often runs fail is never shown to be negligible here."""
    if not tests:
        return
    held = statistics.holm([p for _, p in tests])
    for (i, _), p in zip(tests, held):
        item, k = out[i]
        verdict = statistics.EFFECT if p < 1 - statistics.LEVEL else statistics.UNDETERMINED
        item.contrasts[k] = dataclasses.replace(item.contrasts[k], p_family=float(p), verdict=verdict)


def sentence(item: Training, rule: str) -> str:
    """One hyperparameter's runs that did not train in words, e.g. `model.head: runs that did not train (...):
    dense: 0 of 8 (95% interval 0% to 32%); gap: 7 of 8 (95% interval 53% to 98%); ...` (the colon keeps a
    numeric value apart from its count: `1: 2 of 12`)."""
    parts = [f"{show(r['value'])}: {r['did not train']} of {r['runs']} (95% interval {r['ci95 low']:.0%} to "
             f"{r['ci95 high']:.0%})" for r in item.table.to_dict("records")]
    said = "differs between values" if item.verdict == statistics.EFFECT else "not shown to differ between values"
    return f"{item.name}: runs that did not train ({rule}): " + "; ".join(parts) + f"; the share {said}"
