"""Figures of the trials themselves: how the search progressed, what each trial's accuracy cost (parameters,
FLOPs, seconds) with the Pareto front, and the best trials' learning curves. Each takes a report's StudyReport
and returns a matplotlib Figure. No Keras."""
from __future__ import annotations

import numpy as np
import pandas as pd

from hpstudy.errors import ResultsError
from hpstudy.report.plots_base import (PRUNED_STYLE, NothingToPlot, done, in_trial_order, legend, new_figure,
                                       numbers, objective_label, ranked, stopped)
from hpstudy.results.trials import read_history
from hpstudy.study.objective import best_so_far
from hpstudy.text import literal_figure

COSTS = (("params", "parameters (count, log scale)"), ("flops", "FLOPs per image (log scale)"),
         ("seconds", "training time of the trial (s)"))
CURVE_METRICS = (("loss", "loss (cross-entropy)"), ("accuracy", "accuracy (fraction correct)"))


# ---------------------------------------------------------------- optimization history
def plot_history(study):
    """Each completed trial's score and the best so far, against trial number and against the training time
    spent until that trial ended (trials' `seconds` added up in trial order: the time one worker would take);
    pruned trials as grey crosses, their seconds counted, never the best so far."""
    table, cut = done(study), stopped(study)
    if len(table) < 2:
        raise NothingToPlot(f"{study.name}: an optimization history needs 2 completed trials")
    minimize = study.effects.minimize
    both = pd.concat([table.assign(_cut=False), cut.assign(_cut=True)], ignore_index=True) if len(cut) else \
        table.assign(_cut=False)
    both = in_trial_order(both)
    spent = numbers(both["seconds"]).fillna(0).cumsum().to_numpy()
    kept = ~both["_cut"].to_numpy(dtype=bool)
    number = both["trial_id"].astype(int).to_numpy()
    score = both["score"].to_numpy(dtype=float)
    best = np.asarray(best_so_far(score[kept], minimize))
    fig, axes = new_figure(11, 4.0, 1, 2)
    for ax, x, label in ((axes[0, 0], number, "trial number"),
                         (axes[0, 1], spent, "training time of the search so far (s, trials one after another)")):
        ax.scatter(x[kept], score[kept], s=16, alpha=0.6, color="#1f77b4", label="a trial")
        if (~kept).any():
            ax.scatter(x[~kept], score[~kept], **PRUNED_STYLE)
        ax.step(x[kept], best, where="post", color="#d62728", label="best so far")
        ax.set_xlabel(label)
        ax.set_ylabel(objective_label(study.objective, minimize), fontsize=8)
        ax.grid(alpha=0.3)
        legend(ax)
    axes[0, 0].xaxis.get_major_locator().set_params(integer=True)
    pruned = f", {len(cut)} pruned" if len(cut) else ""
    fig.suptitle(f"{study.name}: optimization history ({len(table)} completed trials{pruned}; best {best[-1]:.4f})")
    return literal_figure(fig)


# ---------------------------------------------------------------- cost and accuracy
def pareto_front(cost: np.ndarray, score: np.ndarray, minimize: bool) -> np.ndarray:
    """Whether each trial is on the Pareto front: no other trial costs no more and scores at least as well,
    being strictly better in one."""
    good = -score if minimize else score
    front = np.ones(len(cost), dtype=bool)
    for i in range(len(cost)):
        dominated = (cost <= cost[i]) & (good >= good[i]) & ((cost < cost[i]) | (good > good[i]))
        front[i] = not dominated.any()
    return front


def plot_pareto(study):
    """The objective of each completed trial against its parameters, FLOPs and training seconds (one panel each,
    where known), the Pareto front (the trials nothing beats on both) marked and joined."""
    table = done(study)
    costs = [(c, label) for c, label in COSTS if c in table and numbers(table[c]).notna().sum() >= 2]
    if len(table) < 2 or not costs:
        raise NothingToPlot(f"{study.name}: cost against accuracy needs 2 completed trials with sizes or times")
    minimize = study.effects.minimize
    fig, axes = new_figure(4.4 * len(costs), 4.0, 1, len(costs))
    for ax, (column, label) in zip(axes.flat, costs):
        known = table[numbers(table[column]).notna()]
        cost, score = numbers(known[column]).to_numpy(), known["score"].to_numpy()
        front = pareto_front(cost, score, minimize)
        ax.scatter(cost[~front], score[~front], s=16, alpha=0.5, color="#1f77b4", label="a trial")
        order = np.argsort(cost[front])
        ax.step(cost[front][order], score[front][order], where="post", color="#d62728", alpha=0.6)
        ax.scatter(cost[front], score[front], s=36, color="#d62728", label="Pareto front", zorder=3)
        for x, y, trial in zip(cost[front], score[front], known["trial_id"][front]):
            ax.annotate(f"{trial}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if column in ("params", "flops") and (cost > 0).all():
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(objective_label(study.objective, minimize), fontsize=8)
        ax.grid(alpha=0.3)
        legend(ax)
    fig.suptitle(f"{study.name}: {study.objective} against what each trial costs (front labelled by trial)")
    return literal_figure(fig)


# ---------------------------------------------------------------- learning curves
def _history(layout, trial_id) -> pd.DataFrame | None:
    """A trial's history, or None when it has none or it is damaged (a figure never stops a report)."""
    try:
        return read_history(layout, trial_id)
    except ResultsError:
        return None


def plot_curves(study, top: int = 3):
    """Loss and accuracy per epoch of the `top` best trials (first execution), train solid and validation
    dashed, one colour per trial; the best epoch (the one scored and kept) marked with a star, the last epoch run
    with a circle."""
    if study.layout is None:
        raise NothingToPlot(f"{study.name}: no results folder to read histories from")
    best = ranked(study).head(max(1, int(top)))
    histories = [(row, h) for _, row in best.iterrows() if (h := _history(study.layout, row["trial_id"])) is not None
                 and len(h)]
    if not histories:
        raise NothingToPlot(f"{study.name}: no trial history")
    fig, axes = new_figure(11, 4.2, 1, 2)
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
    for k, (row, history) in enumerate(histories):
        colour = colours[k % len(colours)]
        epochs = history["epoch"].to_numpy()
        best_epoch = row["best_epoch"] if not pd.isna(row["best_epoch"]) else None
        for ax, (metric, _) in zip(axes.flat, CURVE_METRICS):
            for prefix, style, what in (("", "-", "train"), ("val_", "--", "validation")):
                if f"{prefix}{metric}" not in history:
                    continue
                values = history[f"{prefix}{metric}"].to_numpy(dtype=float)
                ax.plot(epochs, values, style, color=colour, label=f"trial {row['trial_id']} {what}")
                if prefix:
                    ax.scatter([epochs[-1]], [values[-1]], marker="o", s=40, facecolors="none", edgecolors=colour,
                               label="last epoch run", zorder=3)
                    hit = np.flatnonzero(epochs == best_epoch) if best_epoch is not None else []
                    if len(hit):
                        ax.scatter([epochs[hit[0]]], [values[hit[0]]], marker="*", s=110, color=colour,
                                   edgecolors="black", linewidths=0.5, label="best epoch (kept)", zorder=4)
    for ax, (metric, label) in zip(axes.flat, CURVE_METRICS):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        legend(ax)
    fig.suptitle(f"{study.name}: learning curves of the {len(histories)} best trials "
                 f"(train solid, validation dashed)")
    return literal_figure(fig)
