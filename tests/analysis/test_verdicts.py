"""Verdicts on handmade trials tables: a confounded design that must not produce a false claim, too few trials said
so, and the verdict rule against hand-computed values. The verdicts of real searches are
tests/report/test_verdicts.py's."""
import numpy as np
import pandas as pd
import pytest

from hpstudy.analysis import adjusted, effects, statistics


def test_a_confounded_design_makes_no_false_claim():
    """batch_size 32 came mostly with the dense head; raw means credit it with the head's effect."""
    rng = np.random.default_rng(1)
    head = np.array(["gap"] * 8 + ["dense"] * 8)
    batch = np.array([64] * 7 + [32] + [32] * 6 + [64] * 2)
    trials = pd.DataFrame({"trial_id": [str(i) for i in range(16)], "status": "COMPLETED", "model.head": head,
                           "train.batch_size": batch,
                           "score": np.where(head == "dense", 0.95, 0.30) + rng.normal(0, 0.03, 16)})
    raw = trials.groupby("train.batch_size").score.mean()
    assert raw[32] - raw[64] > 0.3                              # what a marginal mean would report
    found = effects.effects(trials, ["model.head", "train.batch_size"], "val_accuracy")
    verdict = {e.name: e.verdict for e in found.effects}
    assert verdict == {"model.head": statistics.EFFECT, "train.batch_size": statistics.UNDETERMINED}
    assert "undetermined" in found.effects[1].sentence and "more trials per value would settle it" in \
        found.effects[1].sentence


def test_too_few_trials_are_said_so():
    trials = pd.DataFrame({"trial_id": list("0123"), "status": "COMPLETED", "a": ["x", "x", "x", "y"],
                           "b": [1.0, 2.0, 3.0, 4.0], "score": [0.1, 0.2, 0.3, 0.9]})
    found = effects.effects(trials, ["a"], "val_accuracy")
    assert found.effects[0].verdict == statistics.TOO_FEW and "too few trials (n=1 vs 3)" in found.effects[0].sentence
    inseparable = adjusted.contrasts(trials.assign(c=trials["a"]), {"a": (False, False), "c": (False, False)})
    assert [c.verdict for c in inseparable] == [statistics.TOO_FEW] * 2
    assert "not separable" in inseparable[1].note


def test_statistics_against_hand_computed_values():
    summary = statistics.summarize([1.0, 2.0, 3.0])
    assert (summary.n, summary.mean, summary.std) == (3, 2.0, 1.0)
    assert summary.ci95 == pytest.approx((2 - 4.302653 / 3 ** 0.5, 2 + 4.302653 / 3 ** 0.5), rel=1e-5)
    assert statistics.pooled_std([[1.0, 3.0], [2.0, 2.0, 5.0]]) == (pytest.approx(((2 + 6) / 3) ** 0.5), 3)
    assert statistics.verdict(0.1, (0.05, 0.15), 0.2) == statistics.EFFECT           # excludes zero: the floor
    assert statistics.verdict(0.1, (0.05, 0.15), 0.2, p_family=0.2) == statistics.NEGLIGIBLE   # not after Holm, small
    assert statistics.verdict(0.01, (-0.05, 0.07), 0.1) == statistics.NEGLIGIBLE     # all within +-0.1
    assert statistics.verdict(0.01, (-0.05, 0.15), 0.1) == statistics.UNDETERMINED   # reaches past the floor
    assert statistics.verdict(0.3, (-0.1, 0.7), None) == statistics.UNDETERMINED     # no smallest effect known
    assert statistics.more_trials(0.1, (-0.1, 0.3), 8, None) == 24          # half-width 0.2 -> 0.1: 4x the trials
    assert statistics.decimals((0.00001, 0.00003)) == 6 and statistics.decimals((-0.2, 0.3)) == 3
    assert statistics.verdict(None, None, None) == statistics.TOO_FEW
