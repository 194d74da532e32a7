"""Figures of what the hyperparameters did: each one's effect with its 95% interval and verdict, every trial in
parallel coordinates, the importance ranking with its interval, the question's expected best score at equal
budgets, and the confirmed configurations' seed spread.
Each takes a report's StudyReport (`tables.build(...).studies[k]`) and returns a matplotlib Figure. No Keras."""
from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize

from hpstudy.analysis.adjusted import INACTIVE, RANGE, labelled, levels_of
from hpstudy.analysis.effects import value_key as _value_key
from hpstudy.report.plots_base import (
    PRUNED_STYLE,
    VERDICT_COLOURS,
    NothingToPlot,
    done,
    label_of,
    legend,
    new_figure,
    numbers,
    objective_label,
    stopped,
)
from hpstudy.results.status import TrialStatus
from hpstudy.text import literal_figure

JITTER = 0.12                   # half the width of a value's column of trial points (categorical axes)


# ---------------------------------------------------------------- effects
def plot_effects(study, names: list[str] | None = None):
    """One panel per searched hyperparameter (`names`: some of them): every completed trial's objective at its
    value (jittered where values are levels), the raw mean per value, and the estimate adjusted for the other
    hyperparameters with its 95% interval; the verdict in each panel's title. Ranges are drawn on the scale they
    were sampled on (a log axis where `sampling: log`), with the fitted curve and its slope's interval as a band. Pruned
    trials are drawn as grey crosses, apart from every estimate."""
    effects = [e for e in study.effects.effects if names is None or e.name in names]
    table, cut = done(study), stopped(study)
    if not effects or not len(table):
        raise NothingToPlot(f"{study.name}: no searched hyperparameter with a completed trial")
    cols = min(3, len(effects))
    rows = math.ceil(len(effects) / cols)
    fig, axes = new_figure(4.6 * cols, 3.6 * rows + 0.5, rows, cols)
    for ax, effect in zip(axes.flat, effects):
        slope = next((c for c in effect.contrasts if c.kind == RANGE), None)
        if slope is not None:
            _slope_panel(ax, effect, table, slope, study.scales.get(effect.name) == "log", cut)
        else:
            _levels_panel(ax, effect, table, cut)
        ax.set_title(f"{effect.name}: {effect.verdict}", color=VERDICT_COLOURS.get(effect.verdict, "black"))
        ax.set_ylabel(objective_label(study.objective, study.effects.minimize), fontsize=8)
        ax.grid(alpha=0.3)
        legend(ax)
    for ax in axes.flat[len(effects):]:
        ax.set_visible(False)
    fig.suptitle(f"{study.name}: effect of each hyperparameter on {study.objective} "
                 f"({study.effects.trials} completed trials; adjusted estimates with 95% intervals)")
    return literal_figure(fig)


def _levels_panel(ax, effect, table: pd.DataFrame, cut: pd.DataFrame) -> None:
    levels = levels_of(pd.concat([table[effect.name], cut[effect.name]]) if len(cut) else table[effect.name],
                       _value_key)
    position = {level: k for k, level in enumerate(levels)}
    rng = np.random.default_rng(0)
    for trials, style in ((table, {"s": 14, "alpha": 0.6, "color": "#1f77b4", "label": "a trial"}),
                          (cut, PRUNED_STYLE)):
        if len(trials):
            x = (labelled(trials[effect.name]).map(position).to_numpy(dtype=float)
                 + rng.uniform(-JITTER, JITTER, len(trials)))
            ax.scatter(x, trials["score"], **style)
    means = effect.table.set_index("value")["mean"]
    ax.scatter([position[v] for v in means.index if v in position], [means[v] for v in means.index if v in position],
               marker="_", s=400, color="black", label="raw mean", zorder=3)
    for contrast in effect.contrasts:
        # Its own reference, not the first value drawn: that may be one only pruned trials had (no mean).
        reference = contrast.reference
        if contrast.value not in position or contrast.difference is None or reference not in means:
            continue
        estimate = means[reference] + contrast.difference
        low, high = means[reference] + contrast.ci95[0], means[reference] + contrast.ci95[1]
        ax.errorbar([position[contrast.value] + 0.3], [estimate], yerr=[[estimate - low], [high - estimate]],
                    fmt="D", markersize=5, capsize=4, color=VERDICT_COLOURS.get(contrast.verdict, "black"),
                    label=f"adjusted, 95% interval (vs {label_of(reference)})")
    ax.set_xticks(range(len(levels)), [label_of(v) for v in levels], rotation=30 if len(levels) > 4 else 0)
    ax.set_xlim(-0.6, len(levels) - 0.3)
    ax.set_xlabel(f"{effect.name} (value searched)")


def _slope_panel(ax, effect, table: pd.DataFrame, slope, log: bool, cut: pd.DataFrame) -> None:
    if len(cut):
        known = numbers(cut[effect.name])
        ax.scatter(known[known.notna()], cut["score"][known.notna()], **PRUNED_STYLE)
    values = numbers(table[effect.name])
    active = values.notna() & (values > 0 if log else True)
    x, y = values[active].to_numpy(), table["score"][active].to_numpy()
    ax.scatter(x, y, s=14, alpha=0.6, color="#1f77b4", label="a trial")
    if log:
        ax.set_xscale("log")
    curve = slope.curve
    if slope.difference is not None and curve is not None and len(x) >= 2:
        # The model's fitted curve on the sampled scale (straight term and square, per unit), through the trials'
        # mean; the band is the straight term's interval. The legend gives the reported q75 vs q25 difference.
        scaled = np.log10(x) if log else x
        grid = np.linspace(scaled.min(), scaled.max(), 50)
        u = grid - curve.centre
        bend = curve.square * (u ** 2 - curve.spread)
        lines = [y.mean() + s * u + bend for s in (curve.slope, *curve.slope_ci)]
        shown = 10 ** grid if log else grid
        colour = VERDICT_COLOURS.get(slope.verdict, "black")
        ax.plot(shown, lines[0], color=colour, label=f"adjusted {slope.difference:+.3g}, {slope.value}")
        ax.fill_between(shown, np.minimum(lines[1], lines[2]), np.maximum(lines[1], lines[2]), color=colour,
                        alpha=0.15, label=f"95% interval {slope.ci95[0]:+.3g} to {slope.ci95[1]:+.3g}")
    inactive = int((~values.notna()).sum())
    note = f"; {inactive} trials inactive, not shown" if inactive else ""
    ax.set_xlabel(f"{effect.name} ({'log scale' if log else 'linear scale'}{note})")


# ---------------------------------------------------------------- parallel coordinates
def _axis(values: pd.Series, scale: str | None):
    """(positions in [0, 1] of each trial, [(position, tick label)]) of one hyperparameter's axis."""
    numeric = numbers(values)
    if scale in ("log", "linear") and numeric.notna().any():
        x = np.log10(numeric.where(numeric > 0)) if scale == "log" else numeric
        low, high = x.min(), x.max()
        span = (high - low) or 1.0
        position = ((x - low) / span).fillna(-0.08).to_numpy()      # inactive: just below the axis
        ticks = [(p, f"{float(10 ** (low + p * span) if scale == 'log' else low + p * span):.3g}")
                 for p in (0.0, 0.5, 1.0)]
        return position, ticks + ([(-0.08, INACTIVE)] if numeric.isna().any() else [])
    levels = levels_of(values, _value_key)
    spots = np.linspace(0, 1, len(levels)) if len(levels) > 1 else np.array([0.5])
    where = dict(zip(levels, spots))
    return labelled(values).map(where).to_numpy(dtype=float), [(where[v], label_of(v)) for v in levels]


def plot_parallel(study):
    """Every completed trial as one line through an axis per searched hyperparameter and the objective, coloured
    by the objective (best on top); choices and booleans are evenly spaced positions with their values as labels,
    ranges span their searched values (log where sampled so)."""
    table = done(study)
    names = [e.name for e in study.effects.effects]
    if len(table) < 2 or not names:
        raise NothingToPlot(f"{study.name}: parallel coordinates need 2 completed trials and a searched value")
    axes_data = [_axis(table[name], study.scales.get(name)) for name in names]
    axes_data.append(_axis(table["score"], "linear"))
    order = np.argsort(table["score"].to_numpy() * (-1 if study.effects.minimize else 1))   # best drawn last
    positions = np.column_stack([p for p, _ in axes_data])[order]
    scores = table["score"].to_numpy()[order]
    norm = Normalize(scores.min(), scores.max() if scores.max() > scores.min() else scores.min() + 1e-9)
    cmap = colormaps["viridis_r" if study.effects.minimize else "viridis"]
    fig, axes = new_figure(max(6.0, 1.9 * len(axes_data) + 1.5), 4.6)
    ax = axes[0, 0]
    xs = np.arange(len(axes_data))
    ax.add_collection(LineCollection([np.column_stack([xs, row]) for row in positions], colors=cmap(norm(scores)),
                                     linewidths=1.2, alpha=0.8))
    for k, (_, ticks) in enumerate(axes_data):
        ax.axvline(k, color="black", linewidth=0.8)
        for where, text in ticks:
            ax.text(k + 0.03, where, text, fontsize=7, va="center", ha="left",
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "alpha": 0.7, "linewidth": 0})
    ax.set_xlim(-0.2, len(axes_data) - 0.4)
    ax.set_ylim(-0.15, 1.08)
    ax.set_xticks(xs, [*names, study.objective], rotation=15, fontsize=8)
    ax.set_yticks([0, 1], ["low / first value", "high / last value"], fontsize=7)
    ax.set_xlabel("searched hyperparameter (each axis spans its values; labels on the axis)")
    ax.set_ylabel("position on each axis")
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=objective_label(study.objective,
                                                                                  study.effects.minimize))
    cut = len(stopped(study))
    ax.set_title(f"{study.name}: every completed trial ({len(table)}), coloured by {study.objective}"
                 + (f"; {cut} pruned trials not drawn" if cut else ""))
    return literal_figure(fig)


# ---------------------------------------------------------------- importance
def plot_importance(study):
    """The importance ranking as bars (most important on top), with its 95% held-out interval where
    computed (else ± the std over shuffles)."""
    table = study.effects.importance
    if table is None or not len(table):
        raise NothingToPlot(f"{study.name}: {study.effects.importance_note or 'no importance ranking'}")
    table = table.iloc[::-1]
    y = np.arange(len(table))
    value = table["importance"].to_numpy(dtype=float)
    if {"ci95 low", "ci95 high"} <= set(table.columns) and table["ci95 low"].notna().all():
        low, high = table["ci95 low"].to_numpy(dtype=float), table["ci95 high"].to_numpy(dtype=float)
        what = "95% held-out interval (cross-fitted)"
    else:
        spread = table["std"].to_numpy(dtype=float)
        low, high = value - spread, value + spread
        what = "± std over shuffles"
    fig, axes = new_figure(7.5, 1.2 + 0.45 * len(table))
    ax = axes[0, 0]
    ax.barh(y, value, color="#1f77b4", alpha=0.8, label="importance")
    ax.errorbar(value, y, xerr=[np.maximum(value - low, 0), np.maximum(high - value, 0)], fmt="none", ecolor="black",
                capsize=4, label=what)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, table["hyperparameter"], fontsize=8)
    ax.set_ylabel("searched hyperparameter")
    ax.set_xlabel(f"increase in squared error of {study.objective} when the hyperparameter is shuffled "
                  f"({study.objective} squared)", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{study.name}: importance (random forest, permutation; {study.effects.trials} trials)")
    return literal_figure(fig)


# ---------------------------------------------------------------- equal budgets
def plot_budget(study):
    """One panel per question hyperparameter: each value's expected best score against the number of its trials
    (analysis.budget), with its 95% bootstrap band; the ranking sentence under the panel."""
    budget = study.effects.budget
    if not budget:
        raise NothingToPlot(f"{study.name}: no question hyperparameter with two values among the trials")
    fig, axes = new_figure(5.2 * len(budget), 4.4, 1, len(budget))
    for ax, (name, (curves, sentence)) in zip(axes.flat, budget.items()):
        for value, group in curves.groupby("value", sort=False):
            line, = ax.plot(group["trials"], group["expected"], marker="o", markersize=3,
                            label=f"{value} ({int(group['of'].iloc[0])} trials)")
            ax.fill_between(group["trials"], group["low"], group["high"], color=line.get_color(), alpha=0.15)
        ax.set_xlabel("trials per value (budget)")
        ax.set_ylabel(f"expected best {objective_label(study.objective, study.effects.minimize)}", fontsize=8)
        ax.set_title(name)
        ax.text(0.0, -0.22, "\n".join(textwrap.wrap(sentence + ".", 70)), transform=ax.transAxes, fontsize=7,
                va="top")
        ax.grid(alpha=0.3)
        legend(ax)
    fig.suptitle(f"{study.name}: expected best score at equal budgets (95% bootstrap bands)")
    return literal_figure(fig)


# ---------------------------------------------------------------- seed repeats
def plot_repeats(study):
    """Each confirmed configuration's seed repeats (objective and test accuracy): every repeat as a point, the
    mean with its 95% interval, and the score the search gave it (picked for being high, so often above)."""
    records, summaries = study.effects.repeat_records, study.effects.repeats
    if records is None or summaries is None or not len(summaries):
        raise NothingToPlot(f"{study.name}: no seed repeats (search.confirm or hpstudy confirm)")
    records = records[records["status"] == TrialStatus.COMPLETED]
    trials = list(summaries["trial_id"])
    searched = (study.table.assign(trial_id=study.table["trial_id"].astype(str)).set_index("trial_id")["score"]
                if study.table is not None else pd.Series(dtype=float))
    fig, axes = new_figure(10, 4.2, 1, 2)
    rng = np.random.default_rng(0)
    score_label = objective_label(study.objective, study.effects.minimize)
    accuracy_label = "test accuracy (fraction correct)"
    for ax, column, prefix, label in ((axes[0, 0], "score", "score", score_label),
                                      (axes[0, 1], "test_accuracy", "test_accuracy", accuracy_label)):
        for k, trial in enumerate(trials):
            values = numbers(records.loc[records["trial_id"] == trial, column]).dropna()
            ax.scatter(k + rng.uniform(-JITTER, JITTER, len(values)), values, s=16, alpha=0.7, color="#1f77b4",
                       label="a seed repeat")
            row = summaries.iloc[k]
            mean, ci = row[f"{prefix}_mean"], row[f"{prefix}_ci95"]
            if mean is not None and not pd.isna(mean):
                err = [[mean - ci[0]], [ci[1] - mean]] if isinstance(ci, tuple) else None
                ax.errorbar([k + 0.3], [mean], yerr=err, fmt="D", markersize=5, capsize=4, color="black",
                            label="mean, 95% interval")
            if column == "score" and trial in searched.index and not pd.isna(searched[trial]):
                ax.scatter([k - 0.3], [float(searched[trial])], marker="x", s=40, color="#d62728",
                           label="the search's own run")
        ax.set_xticks(range(len(trials)), [f"trial {t}" for t in trials])
        ax.set_xlim(-0.7, len(trials) - 0.3)
        ax.set_xlabel("confirmed configuration")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
        legend(ax)
    floor = study.effects.noise_floor
    fig.suptitle(f"{study.name}: seed repeats of the confirmed configurations"
                 + (f" (noise floor {floor:.4f})" if floor is not None else ""))
    return literal_figure(fig)
