"""What the seed repeats of a study's best configurations say: each configuration's mean, spread and 95%
interval over seeds (validation and test), the noise floor (the pooled seed-to-seed standard deviation of the
objective), whether the best configuration is distinguishable from the runner-up (Welch), and the probability
that the best beats the runner-up in a new run (`beats`). No Keras.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hpstudy.analysis import statistics
from hpstudy.analysis.training import trained_mask
from hpstudy.results.status import TrialStatus


def summaries(repeats: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (trial_id): n, and mean, std and 95% interval of its score (the objective)
    and of its test accuracy over the completed repeats."""
    rows = []
    done = repeats[repeats.status == TrialStatus.COMPLETED] if len(repeats) else repeats
    for trial_id, group in done.groupby("trial_id", sort=False):
        score, test = statistics.summarize(group["score"]), statistics.summarize(group["test_accuracy"])
        rows.append({"trial_id": trial_id, "n": score.n, "score_mean": score.mean, "score_std": score.std,
                     "score_ci95": score.ci95, "test_accuracy_mean": test.mean, "test_accuracy_std": test.std,
                     "test_accuracy_ci95": test.ci95})
    return pd.DataFrame(rows, columns=["trial_id", "n", "score_mean", "score_std", "score_ci95",
                                       "test_accuracy_mean", "test_accuracy_std", "test_accuracy_ci95"])


def noise_floor(repeats: pd.DataFrame) -> tuple[float | None, int]:
    """The pooled seed-to-seed standard deviation of the objective over every confirmed configuration, and its
    degrees of freedom ((None, 0) without a configuration of two completed repeats). A repeat that did not train
    (its `trained` column False: a diverged seed) is left out: one such repeat set the floor above 0.1 in about
    half of the studies that had one, and every verdict would then have rested on it."""
    if not len(repeats):
        return None, 0
    done = repeats[(repeats.status == TrialStatus.COMPLETED) & trained_mask(repeats)]
    return statistics.pooled_std(group["score"] for _, group in done.groupby("trial_id"))


def confirmed(repeats: pd.DataFrame, objective: str, ranked: list[str], *, minimize: bool) -> dict:
    """The summary of the repeats of the configurations `ranked` (best first by the search) that best.json
    keeps: per configuration its intervals, the noise floor, the best by mean (lowest where `minimize`) against
    the runner-up, and `beats`: P(the best beats the runner-up in a new run) with its interval (see `beats`; None
    without two)."""
    table = summaries(repeats)
    floor, dof = noise_floor(repeats)
    order = table.sort_values("score_mean", ascending=minimize, kind="stable")
    out: dict[str, object] = {"objective": objective, "configurations": [
               {"trial_id": r.trial_id, "n": int(r.n), "score_mean": r.score_mean, "score_std": r.score_std,
                "score_ci95": list(r.score_ci95) if r.score_ci95 else None, "test_accuracy_mean": r.test_accuracy_mean,
                "test_accuracy_std": r.test_accuracy_std,
                "test_accuracy_ci95": list(r.test_accuracy_ci95) if r.test_accuracy_ci95 else None}
               for r in order.itertuples()],
           "noise_floor": floor, "noise_floor_dof": dof, "searched_best": ranked[0] if ranked else None}
    if len(order) >= 2:
        winner, runner_up = order.trial_id.iloc[0], order.trial_id.iloc[1]
        scores = {t: repeats[(repeats.trial_id == t) & (repeats.status == TrialStatus.COMPLETED)]["score"]
                  for t in (winner, runner_up)}
        diff = statistics.difference(scores[winner], scores[runner_up])
        out.update(winner=winner, runner_up=runner_up, difference=diff.difference if diff else None,
                   ci95=list(diff.ci95) if diff and diff.ci95 else None, p_value=diff.p_value if diff else None,
                   distinguishable=bool(diff and diff.ci95 and statistics.verdict(diff.difference, diff.ci95, None)
                                        == statistics.EFFECT))
    elif len(order) == 1:
        out.update(winner=order.trial_id.iloc[0], runner_up=None, distinguishable=None)
    found = beats(repeats, minimize)
    out["beats"] = found.record() if found else None
    return out


# P(A beats B) is Bouthillier et al.'s (2021) answer to "which is better?" in the units a user meets: the chance
# that one new run of A scores better than one new run of B. It is the Mann-Whitney/AUC estimate over every pair of
# their repeats, P(A > B) + 0.5 P(A = B) (scipy's U over na * nb), with a percentile bootstrap 95% interval that
# resamples each configuration's repeats apart (BOOTSTRAP draws, fixed seed). With 3 seeds each the interval is
# wide (0.78 may well come with 0.33 to 1.00): that is what 3 seeds can say. Over 300 simulated pairs of normal
# scores with 10 seeds each the interval covered the true P in 94-97% of them (true P 0.50, 0.64 and 0.76;
# tests/test_repeats.py).
BOOTSTRAP = 2000            # bootstrap draws of P(A beats B)


@dataclass(frozen=True)
class Beats:
    """P(a beats b in a new run) with its percentile bootstrap 95% interval, over n_a and n_b repeats."""

    a: str
    b: str
    p: float
    ci95: tuple[float, float]
    n_a: int
    n_b: int

    def record(self) -> dict:
        """As JSON writes it (best.json's confirmed `beats`, the answer's `beats`)."""
        return {"a": self.a, "b": self.b, "p": self.p, "ci95": list(self.ci95), "n_a": self.n_a, "n_b": self.n_b}

    def text(self) -> str:
        """In words: P(trial 7 beats trial 3 in a new run) = 0.78 (95% interval 0.33 to 1.00), over 3 seeds each."""
        seeds = f"{self.n_a} seeds each" if self.n_a == self.n_b else f"{self.n_a} and {self.n_b} seeds"
        return (f"P(trial {self.a} beats trial {self.b} in a new run) = {self.p:.2f} (95% interval "
                f"{self.ci95[0]:.2f} to {self.ci95[1]:.2f}), over {seeds}")


def probability_better(a, b, *, minimize: bool = False, draws: int = BOOTSTRAP, seed: int = 0):
    """(P(a beats b), its 95% percentile bootstrap interval) over the finite values of `a` and `b` (a run beats
    another with a higher score, or lower where `minimize`; a tie counts half); None unless both have two values
    (one value has no spread to resample: scipy's bootstrap refuses it, and Welch's difference needs two too)."""
    from scipy import stats

    a = np.asarray([v for v in a if v is not None and np.isfinite(v)], dtype=float)
    b = np.asarray([v for v in b if v is not None and np.isfinite(v)], dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    if minimize:
        a, b = -a, -b

    def auc(x, y, axis=-1):
        """P(x > y) + 0.5 P(x = y) over every pair, along `axis` (vectorized over bootstrap draws)."""
        x, y = np.moveaxis(x, axis, -1)[..., :, None], np.moveaxis(y, axis, -1)[..., None, :]
        return ((x > y) + 0.5 * (x == y)).mean(axis=(-2, -1))

    point = float(stats.mannwhitneyu(a, b).statistic / (len(a) * len(b)))
    result = stats.bootstrap((a, b), auc, n_resamples=draws, method="percentile", vectorized=True,
                             paired=False, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return point, (float(low), float(high))


def beats(repeats: pd.DataFrame | None, minimize: bool) -> Beats | None:
    """P(the best confirmed configuration beats the runner-up in a new run), the two ranked by their repeats'
    mean, among those with two or more completed repeats that trained; None with fewer than two such."""
    if repeats is None or not len(repeats):
        return None
    done = repeats[(repeats.status == TrialStatus.COMPLETED) & trained_mask(repeats)]
    scores = {str(t): g["score"].astype(float).to_numpy() for t, g in done.groupby("trial_id", sort=False)}
    scores = {t: s[np.isfinite(s)] for t, s in scores.items() if np.isfinite(s).sum() >= 2}
    if len(scores) < 2:
        return None
    order = sorted(scores, key=lambda t: scores[t].mean() * (1 if minimize else -1))
    a, b = order[0], order[1]
    found = probability_better(scores[a], scores[b], minimize=minimize)
    return Beats(a, b, found[0], found[1], len(scores[a]), len(scores[b])) if found else None
