"""The adjusted model's handling of its design (analysis.adjusted, analysis.design) on small handmade tables:
aliasing judged the same in either order of names, the reference as the most frequent value, a searched range
compared between its quartiles, its optimum inside the range, and HC3 intervals where a trial has leverage 1.
No Keras; seconds."""
import numpy as np
import pandas as pd
import pytest

from hpstudy.analysis import adjusted, design, statistics
from hpstudy.analysis.effects import value_key


def _aliased_table(seed=0, n=24):
    rng = np.random.default_rng(seed)
    kernel = rng.choice([3, 5], n)
    table = pd.DataFrame({"model.kernel_size": kernel, "model.width": np.where(kernel == 3, 32, 64),
                          "model.head": rng.choice(["dense", "gap"], n)})
    table["score"] = 0.8 + 0.05 * (table["model.width"] == 64) + rng.normal(0, 0.01, n)
    return table


@pytest.mark.parametrize("names", [["model.kernel_size", "model.width", "model.head"],
                                   ["model.width", "model.kernel_size", "model.head"]])
def test_two_hyperparameters_that_always_moved_together_are_both_not_separable(names):
    # Before: whichever was listed first took the whole +0.05 as an effect and only the second was not separable.
    table = _aliased_table()
    found = {c.hyperparameter: c for c in
             adjusted.contrasts(table, {name: (False, False) for name in names}, order_key=value_key)}
    assert found["model.kernel_size"].verdict == found["model.width"].verdict == statistics.TOO_FEW
    width, kernel = found["model.width"], found["model.kernel_size"]
    assert kernel.note == f"not separable from model.width={width.value} in these trials"
    assert width.note == f"not separable from model.kernel_size={kernel.value} in these trials"
    assert found["model.head"].difference is not None          # the rest is still estimated


def test_aliased_columns_are_found_with_their_partners():
    a = np.array([1.0, 0, 1, 0, 1, 0, 0, 1])
    b = np.array([0.0, 1, 1, 0, 0, 1, 0, 1])
    assert design.aliased([a, b, a]) == {0: {2}, 2: {0}}
    assert design.aliased([a, b, 1 - a]) == {0: {2}, 2: {0}}      # with the intercept
    assert design.aliased([a, b, np.full(8, 3.0)]) == {2: set()}  # constant: dependent with the mean alone
    assert design.aliased([a, b]) == {}


def test_the_reference_is_the_most_frequent_value():
    labels = pd.Series(["adam", "adam", "sgd", "sgd", "sgd", "rmsprop", adjusted.INACTIVE, adjusted.INACTIVE,
                        adjusted.INACTIVE, adjusted.INACTIVE])
    assert adjusted.reference_of(labels, value_key) == "sgd"              # not adam (first), not inactive
    assert adjusted.reference_of(pd.Series(["b", "a", "a", "b"]), value_key) == "a"      # a tie: the first
    assert adjusted.reference_of(pd.Series([adjusted.INACTIVE] * 3), value_key) == adjusted.INACTIVE


def test_a_rare_first_value_no_longer_blocks_every_contrast():
    rng = np.random.default_rng(3)
    optimizer = np.array(["adagrad"] * 2 + ["adam"] * 15 + ["sgd"] * 15)
    table = pd.DataFrame({"opt": optimizer, "score": np.where(optimizer == "sgd", 0.7, 0.8)
                          + rng.normal(0, 0.01, 32)})
    found = {c.value: c for c in adjusted.contrasts(table, {"opt": (False, False)}, order_key=value_key)}
    assert set(found) == {"adagrad", "sgd"} and found["sgd"].reference == "adam"
    assert found["sgd"].verdict == statistics.EFFECT and found["sgd"].difference == pytest.approx(-0.1, abs=0.01)
    assert found["adagrad"].verdict == statistics.TOO_FEW and found["adagrad"].note == "n=2 vs 15"
    # The t intervals' degrees of freedom go with them (32 trials, intercept + 2 columns), so a look widens them
    # on those (analysis.looks.widened).
    assert found["sgd"].dof == 29


def test_a_range_is_judged_across_its_quartiles_in_score_units():
    # +0.10 over 16..512 units, linear: per unit that is 2e-4, which printed +0.000 and was never an effect.
    rng = np.random.default_rng(5)
    units = rng.uniform(16, 512, 40)
    table = pd.DataFrame({"units": units, "score": 0.8 + 0.1 * (units - 16) / 496 + rng.normal(0, 0.01, 40)})
    contrast = next(c for c in adjusted.contrasts(table, {"units": (True, False)}, order_key=value_key)
                    if c.kind == adjusted.RANGE)
    q25, q75 = np.quantile(units, [0.25, 0.75])
    assert contrast.value == f"q75 vs q25 ({q25:.3g} -> {q75:.3g})" and contrast.reference is None
    assert contrast.difference == pytest.approx(0.1 * (q75 - q25) / 496, abs=0.01)
    assert contrast.ci95[0] < 0.1 * (q75 - q25) / 496 < contrast.ci95[1]
    assert contrast.verdict == statistics.EFFECT and contrast.curve.slope == pytest.approx(0.1 / 496, rel=0.2)


def test_an_optimum_inside_a_log_range_is_found_and_placed():
    # Best at 1e-3 on a log range 1e-4..1e-2, 0.03 lower at both ends: a straight term sees nothing.
    rng = np.random.default_rng(7)
    lr = 10 ** rng.uniform(-4, -2, 60)
    score = 0.8 - 0.03 * (np.log10(lr) + 3) ** 2 + rng.normal(0, 0.01, 60)
    found = adjusted.contrasts(pd.DataFrame({"lr": lr, "score": score}), {"lr": (True, True)}, order_key=value_key)
    middle = next(c for c in found if c.kind == adjusted.CURVE)
    assert middle.value.startswith("middle vs ends (") and middle.verdict == statistics.EFFECT
    assert middle.difference == pytest.approx(0.03 * ((np.log10(lr).max() - np.log10(lr).min()) / 2) ** 2, abs=0.01)
    assert middle.note.startswith("optimum inside the range near ")
    near, low, high = (float(v) for v in middle.note.replace("(95% interval", "").replace(" to ", " ")
                       .replace(")", "").split()[-3:])
    assert low < 1e-3 < high and 5e-4 < near < 2e-3
    # A minimized objective bending the same way has its worst value inside, not an optimum.
    flipped = adjusted.contrasts(pd.DataFrame({"lr": lr, "score": score}), {"lr": (True, True)},
                                 order_key=value_key, minimize=True)
    assert not next(c for c in flipped if c.kind == adjusted.CURVE).note


def test_hc3_intervals_are_finite_beside_a_value_seen_once():
    # The single "c" trial has leverage 1: HC3 divides by 1 - 1 there. It is set aside; "b" keeps its interval.
    rng = np.random.default_rng(9)
    level = np.array(["a"] * 14 + ["b"] * 14 + ["c"])
    table = pd.DataFrame({"h": level, "score": np.where(level == "b", 0.85, 0.8) + rng.normal(0, 0.01, 29)})
    found = {c.value: c for c in adjusted.contrasts(table, {"h": (False, False)}, order_key=value_key)}
    assert found["c"].verdict == statistics.TOO_FEW
    assert found["b"].verdict == statistics.EFFECT and all(np.isfinite(found["b"].ci95))


def test_hc3_widens_the_interval_of_the_noisier_value():
    # Ordinary least squares pools the noise: the quiet value's contrast borrows the noisy one's spread.
    rng = np.random.default_rng(11)
    level = np.repeat(["a", "b", "c"], 20)
    sd = np.where(level == "c", 0.04, 0.01)
    table = pd.DataFrame({"h": level, "score": 0.8 + rng.normal(0, 1, 60) * sd})
    found = {c.value: c for c in adjusted.contrasts(table, {"h": (False, False)}, order_key=value_key)}
    width = {v: c.ci95[1] - c.ci95[0] for v, c in found.items()}
    assert width["c"] > 2.5 * width["b"]


def test_a_conditional_hyperparameter_s_inactive_trials_leave_the_effect_to_its_parent():
    # dense_units is inactive exactly where head is gap, by construction: head keeps its effect.
    rng = np.random.default_rng(13)
    head = rng.choice(["dense", "gap"], 30)
    units = np.where(head == "dense", rng.choice([16, 64], 30), np.nan)
    table = pd.DataFrame({"model.dense_units": units, "model.head": head,
                          "score": np.where(head == "gap", 0.9, 0.8) + rng.normal(0, 0.01, 30)})
    found = adjusted.contrasts(table, {"model.dense_units": (False, False), "model.head": (False, False)},
                               order_key=value_key)
    parent = next(c for c in found if c.hyperparameter == "model.head")
    inactive = next(c for c in found if c.value == adjusted.INACTIVE)
    assert parent.verdict == statistics.EFFECT
    assert inactive.verdict == statistics.TOO_FEW and inactive.note.startswith("not separable from model.head=")


def test_holm_matches_statsmodels_and_leaves_the_heap_alone(monkeypatch):
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    for size in (1, 2, 5, 9, 30):
        p = np.round(rng.uniform(0, 0.2, size), 3)           # rounded: ties step down like statsmodels'
        assert np.allclose(statistics.holm(p), multipletests(p, method="holm")[1])
    assert statistics.holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    import gc
    monkeypatch.setattr(gc, "collect", lambda *a: pytest.fail("a garbage collection per family of contrasts"))
    statistics.holm([0.5, 0.01])
