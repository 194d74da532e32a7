"""The figures of a study: each plot function on a real finished study and on a hand-made one with every kind of
hyperparameter and seed repeats, the PNGs `figures` makes, the Pareto front, the importance interval, and the
Study.plot_* methods. No training here (the session's finished_study)."""
import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

import hpstudy
from hpstudy.analysis import adjusted, effects as effects_module
from hpstudy.analysis.repeats import summaries
from hpstudy.report import plots, tables
from hpstudy.report.tables import StudyReport

REAL = ("plot_effects", "plot_parallel", "plot_history", "plot_pareto", "plot_curves")


def labelled(fig) -> None:
    """A Figure with a title, and both axis labels on every axes it shows (colour bars aside)."""
    assert isinstance(fig, Figure)
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert shown
    for ax in shown:
        assert ax.get_xlabel() and ax.get_ylabel(), ax
    assert fig.get_suptitle() or all(ax.get_title() for ax in shown)


def not_blank(png: bytes) -> None:
    """A PNG that decodes, of a useful size, with a real share of drawn (not background) pixels."""
    with Image.open(io.BytesIO(png)) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert pixels.var() > 0, "a single colour"
    assert (pixels < 200).mean() > 0.01, "hardly anything drawn"


def test_the_blank_check_can_fail():
    buffer = io.BytesIO()
    Image.new("RGB", (600, 400), "white").save(buffer, format="PNG")
    with pytest.raises(AssertionError, match="a single colour"):
        not_blank(buffer.getvalue())


@pytest.fixture(scope="module")
def real(finished_study):
    path, _ = finished_study
    return tables.build([path]).studies[0]


@pytest.mark.parametrize("name", REAL)
def test_each_figure_of_a_real_study_has_a_title_and_axis_labels(real, name):
    fig = getattr(plots, name)(real)
    labelled(fig)
    not_blank(plots.png(fig))


def test_figures_of_a_real_two_trial_study_decode_and_skip_what_has_nothing_to_show(real):
    found = plots.figures(real)
    captions = [caption for caption, _ in found]
    assert len(found) == len(REAL), captions         # no importance (2 trials), no seed repeats
    assert not any("importance" in c or "seed repeats" in c for c in captions)
    for _, png in found:
        not_blank(png)
    with pytest.raises(plots.NothingToPlot, match="too few trials"):
        plots.plot_importance(real)
    with pytest.raises(plots.NothingToPlot, match="no seed repeats"):
        plots.plot_repeats(real)


def test_learning_curves_mark_the_best_and_the_last_epoch(real):
    fig = plots.plot_curves(real, top=2)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "best epoch (kept)" in labels and "last epoch run" in labels
    assert {f"trial {t} validation" for t in real.table.trial_id} <= set(labels)


# ---------------------------------------------------------------- a hand-made study with every kind of value
def made_study(trials: int = 24) -> StudyReport:
    """A study of `trials` completed trials over a log-sampled rate, a choice and a conditional number, with
    sizes, times and seed repeats of two configurations (no results folder: no learning curves)."""
    rng = np.random.default_rng(3)
    rate = 10 ** rng.uniform(-4, -1, trials)
    head = rng.choice(["gap", "dense"], trials)
    units = pd.array([int(u) if h == "dense" else None for u, h in zip(rng.choice([16, 64], trials), head)],
                     dtype="Int64")
    score = 0.5 + 0.1 * np.log10(rate) / 3 + 0.2 * (head == "dense") + rng.normal(0, 0.02, trials)
    table = pd.DataFrame({"trial_id": [str(k) for k in range(trials)], "status": "COMPLETED",
                          "train.learning_rate": rate, "model.head": head, "model.dense_units": units,
                          "score": score, "best_epoch": 2, "accuracy": score + 0.05, "val_accuracy": score,
                          "seconds": rng.uniform(1, 5, trials), "params": np.where(head == "dense", 20000, 3000),
                          "flops": rng.integers(10 ** 5, 10 ** 7, trials)})
    repeats = pd.DataFrame({"trial_id": ["3", "3", "3", "7", "7"], "seed": [1, 2, 3, 1, 2], "status": "COMPLETED",
                            "score": [0.71, 0.69, 0.70, 0.66, 0.68], "test_accuracy": [0.7, 0.72, 0.69, 0.65, 0.66]})
    names = ["train.learning_rate", "model.head", "model.dense_units"]
    fx = effects_module.effects(table, names, "val_accuracy", ranges={"train.learning_rate": "log"}, repeats=repeats)
    return StudyReport("made", "made", "val_accuracy", fx, table=table, layout=None,
                       scales={"train.learning_rate": "log", "model.head": "choice", "model.dense_units": "choice"})


@pytest.fixture(scope="module")
def made():
    return made_study()


def test_effects_draw_the_adjusted_intervals_on_the_sampled_scale(made):
    fig = plots.plot_effects(made)
    labelled(fig)
    rate, head, units = fig.axes[:3]
    assert rate.get_xscale() == "log" and "log scale" in rate.get_xlabel()
    assert head.get_xscale() == "linear" and [t.get_text() for t in head.get_xticklabels()] == ["dense", "gap"]
    assert [t.get_text() for t in units.get_xticklabels()] == ["16", "64", "(inactive)"]
    verdicts = {e.name: e.verdict for e in made.effects.effects}
    assert rate.get_title() == f"train.learning_rate: {verdicts['train.learning_rate']}"
    assert head.get_title() == "model.head: effect"       # 0.2 apart with noise 0.02
    slope = next(c for c in made.effects.effects[0].contrasts if c.kind == adjusted.RANGE)
    assert any(f"{slope.difference:+.3g}, q75 vs q25 (" in t for t in rate.get_legend_handles_labels()[1])
    drawn = next(line for line in rate.lines if line.get_label().startswith("adjusted "))
    u = np.log10(drawn.get_xdata()) - slope.curve.centre       # the fitted curve per unit of log10, not the q75 step
    bend = slope.curve.square * (u ** 2 - slope.curve.spread)
    assert np.allclose(np.diff(drawn.get_ydata()), np.diff(slope.curve.slope * u + bend))
    gap = next(c for c in made.effects.effects[1].contrasts if c.value == "gap")
    bars = [line for line in head.lines if line.get_marker() == "D"]      # the adjusted estimate of "gap"
    dense_mean = made.effects.effects[1].table.set_index("value")["mean"]["dense"]
    assert bars and bars[0].get_ydata()[0] == pytest.approx(dense_mean + gap.difference)


def test_every_figure_of_a_full_study(made):
    for name in ("plot_effects", "plot_parallel", "plot_importance", "plot_history", "plot_pareto", "plot_repeats"):
        labelled(getattr(plots, name)(made))
    captions = [c for c, png in plots.figures(made)]
    assert len(captions) == 6 and not any("learning curves" in c for c in captions)   # no folder, no curves
    assert "importance" in captions[1] and "seed repeats" in captions[-1]


def test_the_budget_figure_draws_each_question_value_s_curve_with_its_band(made):
    with pytest.raises(plots.NothingToPlot, match="no question hyperparameter"):
        plots.plot_budget(made)                      # the hand-made study names no question
    fx = effects_module.effects(made.table, ["train.learning_rate", "model.head"], "val_accuracy",
                                ranges={"train.learning_rate": "log"}, question=["model.head", "train.learning_rate"])
    study = StudyReport("asked", "asked", "val_accuracy", fx, table=made.table, layout=None, scales=made.scales)
    fig = plots.plot_budget(study)
    labelled(fig)
    not_blank(plots.png(fig))
    head, rate = fig.axes[:2]
    counts = made.table["model.head"].value_counts()
    assert head.get_title() == "model.head" and rate.get_title() == "train.learning_rate"
    assert sorted(head.get_legend_handles_labels()[1]) == [f"dense ({counts['dense']} trials)",
                                                          f"gap ({counts['gap']} trials)"]
    dense = next(line for line in head.lines if line.get_label().startswith("dense"))
    assert list(dense.get_xdata()) == list(range(1, counts["dense"] + 1))
    assert dense.get_ydata()[-1] == pytest.approx(made.table.loc[made.table["model.head"] == "dense", "score"].max())
    assert len(head.collections) == 2                 # a band per value
    assert "dense has the best expected score at every equal budget" in head.texts[0].get_text()
    assert [c.split(": ", 1)[1] for c, _ in plots.figures(study)][2].startswith("expected best score")


def test_parallel_coordinates_label_every_value_of_a_choice(made):
    ax = plots.plot_parallel(made).axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert {"gap", "dense", "16", "64", "(inactive)"} <= texts
    assert [t.get_text() for t in ax.get_xticklabels()] == ["train.learning_rate", "model.head",
                                                            "model.dense_units", "val_accuracy"]
    assert len(ax.collections[0].get_paths()) == len(made.table)


def test_importance_bars_carry_the_held_out_interval(made):
    table = made.effects.importance
    assert (table["ci95 low"] <= table["ci95 high"]).all()
    # dense_units is inactive exactly when head is gap: the forest may split on either for the same information
    assert table["hyperparameter"].iloc[0] in ("model.head", "model.dense_units")
    ax = plots.plot_importance(made).axes[0]
    assert "95% held-out interval (cross-fitted)" in ax.get_legend_handles_labels()[1]
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == list(table["hyperparameter"])   # most important on top


def test_repeats_show_each_seed_and_the_mean(made):
    fig = plots.plot_repeats(made)
    left = fig.axes[0]
    assert [t.get_text() for t in left.get_xticklabels()] == ["trial 3", "trial 7"]
    points = np.concatenate([c.get_offsets()[:, 1] for c in left.collections if len(c.get_offsets())])
    assert set(np.round(points, 2)) >= {0.71, 0.69, 0.70, 0.66, 0.68}
    assert summaries(made.effects.repeat_records)["score_mean"].iloc[0] == pytest.approx(0.70)


def test_pareto_front_is_the_trials_nothing_beats():
    cost = np.array([1.0, 2.0, 3.0, 2.0, 5.0])
    score = np.array([0.5, 0.7, 0.6, 0.7, 0.9])
    assert list(plots.pareto_front(cost, score, minimize=False)) == [True, True, False, True, True]
    assert list(plots.pareto_front(cost, 1 - score, minimize=True)) == [True, True, False, True, True]
    assert list(plots.pareto_front(cost, score[::-1], minimize=False)) == [True, False, False, False, False]


def test_a_single_trial_has_no_history_parallel_or_pareto(made):
    one = StudyReport("one", "one", "val_accuracy", made.effects, table=made.table.head(1), scales=made.scales)
    for name in ("plot_history", "plot_parallel", "plot_pareto"):
        with pytest.raises(plots.NothingToPlot, match=r"^one: .* needs? 2 completed trials"):
            getattr(plots, name)(one)


def test_study_plot_methods_return_figures(finished_study):
    study = hpstudy.load_study(finished_study[0])
    for method in ("plot_effects", "plot_parallel", "plot_history", "plot_pareto", "plot_curves"):
        labelled(getattr(study, method)())
    with pytest.raises(hpstudy.HpstudyError, match="no seed repeats"):
        study.plot_repeats()


def test_the_adjusted_estimates_stay_drawn_when_a_value_only_pruned_trials_had_comes_first(made):
    table = made.table
    pruned = table.iloc[:2].assign(trial_id=["90", "91"], status="PRUNED", score=0.1, **{"model.head": "aaa"})
    table = pd.concat([table, pruned], ignore_index=True)      # "aaa" sorts before "dense": the first value drawn
    names = [e.name for e in made.effects.effects]
    fx = effects_module.effects(table, names, "val_accuracy", ranges={"train.learning_rate": "log"})
    study = StudyReport("made", "made", "val_accuracy", fx, table=table, layout=None, scales=made.scales)
    head = plots.plot_effects(study).axes[1]
    assert [t.get_text() for t in head.get_xticklabels()] == ["aaa", "dense", "gap"]
    gap = next(c for c in fx.effects[1].contrasts if c.value == "gap")
    dense_mean = fx.effects[1].table.set_index("value")["mean"]["dense"]
    bars = [line for line in head.lines if line.get_marker() == "D"]
    assert bars and bars[0].get_ydata()[0] == pytest.approx(dense_mean + gap.difference)
    assert "adjusted, 95% interval (vs dense)" in head.get_legend_handles_labels()[1]
