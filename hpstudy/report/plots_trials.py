"""Figures of the trials themselves: how the search progressed, what each trial's accuracy cost (parameters,
FLOPs, seconds) with the Pareto front, and the best trials' learning curves. Each takes a report's StudyReport
and returns a matplotlib Figure. No Keras."""
from __future__ import annotations

import numpy as np
import pandas as pd

from hpstudy.errors import ResultsError
from hpstudy.report.plots_base import (
    PRUNED_STYLE,
    NothingToPlot,
    done,
    in_trial_order,
    legend,
    new_figure,
    numbers,
    objective_label,
    ranked,
    stopped,
)
from hpstudy.results.curves import draw_curves
from hpstudy.results.trials import read_history
from hpstudy.study.objective import best_so_far
from hpstudy.text import literal_figure

COSTS = (("params", "parameters (count, log scale)"), ("flops", "FLOPs per image (log scale)"),
         ("seconds", "training time of the trial (s)"))


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
    runs = [(f"trial {row['trial_id']}", h, row["best_epoch"]) for _, row in best.iterrows()
            if (h := _history(study.layout, row["trial_id"])) is not None and len(h)]
    if not runs:
        raise NothingToPlot(f"{study.name}: no trial history")
    return draw_curves(runs, f"{study.name}: learning curves of the {len(runs)} best trials "
                             f"(train solid, validation dashed)")
