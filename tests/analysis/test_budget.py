"""The expected best score against the number of trials (Dodge et al. 2019; Tang et al. 2020's estimator)."""
import itertools

import numpy as np
import pandas as pd
import pytest

from hpstudy.analysis.budget import curves, expected_best, of_question, ranking


@pytest.mark.parametrize("minimize", [False, True])
def test_the_estimator_is_the_mean_best_over_every_subset_of_n_trials(minimize):
    scores = [0.3, 0.9, 0.5, 0.7, 0.1, 0.6]
    pick = min if minimize else max
    for n in range(1, len(scores) + 1):
        brute = np.mean([pick(subset) for subset in itertools.combinations(scores, n)])
        assert expected_best(scores, [n], minimize=minimize)[0] == pytest.approx(brute)


def test_one_trial_expects_the_mean_and_all_of_them_the_best():
    scores = np.random.default_rng(0).normal(size=40)
    first, last = expected_best(scores, [1, 40])
    assert first == pytest.approx(scores.mean()) and last == pytest.approx(scores.max())


def _table(a, b):
    return pd.DataFrame({"model.head": ["gap"] * len(a) + ["dense"] * len(b), "score": [*a, *b]})


def test_the_band_holds_the_estimate_and_the_ranking_says_when_the_lead_changes():
    # dense: steady and fairly good; gap: usually worse, sometimes the best of all.
    table = curves(_table([0.2, 0.95, 0.3, 0.25, 0.9, 0.2], [0.7, 0.72, 0.71, 0.69, 0.7, 0.7]), "model.head",
                   minimize=False)
    assert ((table.low <= table.expected + 1e-12) & (table.expected <= table.high + 1e-12)).all()
    assert list(table.groupby("value").trials.max()) == [6, 6]
    sentence = ranking(table, "model.head", minimize=False)
    assert "changes with the budget" in sentence and "dense from 1 to 2" in sentence and "gap from 3 to 6" in sentence
    assert sentence.endswith("at 6 trials per value the 95% bands overlap, so the order may be chance")


def test_a_lead_at_every_budget_is_said_so():
    table = curves(_table([0.1, 0.2, 0.15], [0.8, 0.9, 0.85, 0.7]), "model.head", minimize=False, rounds=50)
    assert ranking(table, "model.head", minimize=False) == (
        "model.head dense has the best expected score at every equal budget from 1 to 3 trials per value; "
        "at 3 trials per value its 95% band clears the others'")


@pytest.mark.parametrize("minimize", [False, True])
def test_the_band_comes_from_resampling_the_trials_and_is_oriented_by_the_direction(minimize):
    # One value's 30 trials: the band of the mean (n=1) is about the mean's own 95% interval, whichever way is
    # better; the best of all 30 (n=30) lies inside its band.
    scores = np.random.default_rng(1).normal(0.5, 0.1, 30)
    table = curves(pd.DataFrame({"h": ["a"] * 30, "score": scores}), "h", minimize=minimize)
    one = table[table.trials == 1].iloc[0]
    half_width = 1.96 * scores.std(ddof=1) / np.sqrt(30)
    assert one.expected == pytest.approx(scores.mean())
    assert one.high - one.low == pytest.approx(2 * half_width, rel=0.25)
    last = table[table.trials == 30].iloc[0]
    assert last.expected == pytest.approx(scores.min() if minimize else scores.max())
    assert last.low <= last.expected <= last.high


def test_a_question_range_is_compared_by_its_halves_and_a_single_value_is_left_out():
    rng = np.random.default_rng(2)
    rate = 10 ** rng.uniform(-4, -2, 20)
    done = pd.DataFrame({"train.learning_rate": rate, "model.head": ["gap"] * 20,
                         "score": 0.8 + 0.05 * (rate > np.median(rate)) + rng.normal(0, 0.005, 20)})
    out = of_question(done, ["train.learning_rate", "model.head"], minimize=False, ranged={"train.learning_rate"})
    assert list(out) == ["train.learning_rate"]
    table, sentence = out["train.learning_rate"]
    assert len(table["value"].unique()) == 2 and set(table.groupby("value")["of"].first()) == {10}
    assert sentence.startswith("train.learning_rate >= ") and "its 95% band clears the others'" in sentence
