"""P(A beats B in a new run) from two configurations' seed repeats (analysis.repeats.beats): hand-computed values
on tiny tables, and the bootstrap interval's coverage on simulated normal scores. No Keras; seconds."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hpstudy.analysis import effects, repeats
from hpstudy.report import answer, tables


def _repeats(scores: dict, trained=None):
    rows = [{"trial_id": t, "seed": k, "status": "COMPLETED", "score": s, "test_accuracy": s}
            for t, values in scores.items() for k, s in enumerate(values)]
    table = pd.DataFrame(rows)
    if trained is not None:
        table["trained"] = trained
    return table


@pytest.mark.parametrize("a, b, p", [([1, 2, 3], [0, 0, 0], 1.0), ([0, 0, 0], [1, 2, 3], 0.0),
                                     ([1, 1], [1, 1], 0.5), ([1, 2, 3], [2, 2, 2], 0.5),
                                     ([1, 3], [2, 2, 2], 0.5), ([1, 2, 3], [1.5, 2.5], 0.5),
                                     ([2, 3], [1, 2], 7 / 8)])
def test_p_beats_is_the_share_of_pairs_won_a_tie_counting_half(a, b, p):
    point, (low, high) = repeats.probability_better(a, b)
    assert point == pytest.approx(p) and low <= point <= high
    assert repeats.probability_better(a, b, minimize=True)[0] == pytest.approx(1 - p)


def test_certain_and_even_samples_have_the_interval_they_must():
    assert repeats.probability_better([1, 2, 3], [0, 0, 0]) == (1.0, (1.0, 1.0))
    point, (low, high) = repeats.probability_better([0.81, 0.80, 0.82], [0.80, 0.805, 0.79])
    assert point == pytest.approx(7.5 / 9) and high == 1.0 and low < 0.6       # 3 seeds each: a wide interval
    assert repeats.probability_better([1.0], [0.5, 0.7]) is None         # one value: nothing to resample


def test_the_best_two_by_mean_are_compared_and_runs_that_did_not_train_are_left_out():
    table = _repeats({"3": [0.80, 0.81, 0.79], "7": [0.83, 0.84, 0.82, 0.10], "5": [0.5, 0.5]},
                     trained=[True] * 6 + [False] + [True] * 2)
    found = repeats.beats(table, minimize=False)
    assert (found.a, found.b, found.p, found.n_a, found.n_b) == ("7", "3", 1.0, 3, 3)
    assert found.text() == "P(trial 7 beats trial 3 in a new run) = 1.00 (95% interval 1.00 to 1.00), over 3 seeds each"
    assert repeats.beats(table, minimize=True).a == "5"
    summary = repeats.confirmed(table, "val_accuracy", ["7", "3"], minimize=False)
    assert summary["beats"] == {"a": "7", "b": "3", "p": 1.0, "ci95": [1.0, 1.0], "n_a": 3, "n_b": 3}
    assert repeats.beats(_repeats({"3": [0.8, 0.9]}), minimize=False) is None
    one = _repeats({"3": [0.80, 0.81, 0.79], "7": [0.83, 0.10], "5": [0.5, 0.5]},
                   trained=[True] * 4 + [False, True, True])
    assert (repeats.beats(one, minimize=False).a, repeats.beats(one, minimize=False).b) == ("3", "5")


def test_the_interval_covers_the_true_p_for_normal_scores():
    # A 1-sd difference: the true P(A > B) is Phi(1 / sqrt(2)) = 0.76. Measured: 95% of 300 (94-97% at true
    # P 0.50, 0.64 and 0.76).
    rng, true, covered = np.random.default_rng(1), stats.norm.cdf(1 / np.sqrt(2)), 0
    for draw in range(300):
        _, (low, high) = repeats.probability_better(rng.normal(1, 1, 10), rng.normal(0, 1, 10), seed=draw)
        covered += low <= true <= high
    assert covered / 300 >= 0.90


def test_the_answer_its_json_and_the_seed_repeats_section_say_it():
    trials = pd.DataFrame({"trial_id": [str(i) for i in range(8)], "status": "COMPLETED",
                           "h": ["a", "b"] * 4, "score": np.linspace(0.7, 0.8, 8)})
    fx = effects.effects(trials, ["h"], "val_accuracy", repeats=_repeats({"3": [0.80, 0.81, 0.79],
                                                                         "7": [0.83, 0.84, 0.80]}),
                         with_importance=False)
    study = SimpleNamespace(tunables=lambda: [SimpleNamespace(name="h")], question=())
    best = {"trial_id": "7", "score": 0.8, "hyperparameters": {"h": "b"}, "test_accuracy": 0.8}
    said = answer.answer_of("s", study, best, trials, fx)
    assert said.test_line().endswith("P(trial 7 beats trial 3 in a new run) = 0.83 (95% interval 0.44 to 1.00), "
                                     "over 3 seeds each.")
    assert said.record()["beats"]["p"] == pytest.approx(7.5 / 9) and said.record()["beats"]["a"] == "7"
    section = next(s for s in tables.sections(tables.StudyReport("s", "s", "val_accuracy", fx, said, trials))
                   if s.title == "Seed repeats of the best configurations")
    assert any(line.startswith("P(trial 7 beats trial 3 in a new run) = 0.83") for line in section.lines)
