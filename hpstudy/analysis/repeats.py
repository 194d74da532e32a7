"""What the seed repeats of a study's best configurations say: each configuration's mean, spread and 95%
interval over seeds (validation and test), the noise floor (the pooled seed-to-seed standard deviation of the
objective), and whether the best configuration is distinguishable from the runner-up. No Keras."""
from __future__ import annotations

import pandas as pd

from hpstudy.analysis import statistics
from hpstudy.analysis.training import trained_mask
from hpstudy.results.trials import is_minimized


def summaries(repeats: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (trial_id): n, and mean, std and 95% interval of its score (the objective)
    and of its test accuracy over the completed repeats."""
    rows = []
    done = repeats[repeats.status == "COMPLETED"] if len(repeats) else repeats
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
    done = repeats[(repeats.status == "COMPLETED") & trained_mask(repeats)]
    return statistics.pooled_std(group["score"] for _, group in done.groupby("trial_id"))


def confirmed(repeats: pd.DataFrame, objective: str, ranked: list[str]) -> dict:
    """The summary of the repeats of the configurations `ranked` (best first by the search) that best.json
    keeps: per configuration its intervals, the noise floor, and the best by mean against the runner-up."""
    table = summaries(repeats)
    floor, dof = noise_floor(repeats)
    order = table.sort_values("score_mean", ascending=is_minimized(objective), kind="stable")
    out = {"objective": objective, "configurations": [
               {"trial_id": r.trial_id, "n": int(r.n), "score_mean": r.score_mean, "score_std": r.score_std,
                "score_ci95": list(r.score_ci95) if r.score_ci95 else None, "test_accuracy_mean": r.test_accuracy_mean,
                "test_accuracy_std": r.test_accuracy_std,
                "test_accuracy_ci95": list(r.test_accuracy_ci95) if r.test_accuracy_ci95 else None}
               for r in order.itertuples()],
           "noise_floor": floor, "noise_floor_dof": dof, "searched_best": ranked[0] if ranked else None}
    if len(order) >= 2:
        winner, runner_up = order.trial_id.iloc[0], order.trial_id.iloc[1]
        scores = {t: repeats[(repeats.trial_id == t) & (repeats.status == "COMPLETED")]["score"] for t in (winner,
                                                                                                         runner_up)}
        diff = statistics.difference(scores[winner], scores[runner_up])
        out.update(winner=winner, runner_up=runner_up, difference=diff.difference if diff else None,
                   ci95=list(diff.ci95) if diff and diff.ci95 else None, p_value=diff.p_value if diff else None,
                   distinguishable=bool(diff and diff.ci95 and statistics.verdict(diff.difference, diff.ci95, None)
                                        == statistics.EFFECT))
    elif len(order) == 1:
        out.update(winner=order.trial_id.iloc[0], runner_up=None, distinguishable=None)
    return out
