"""The figures of a study, for reports and for `Study.plot_*`: one public function per figure (`CAPTIONS` says
what each draws), each taking a report's StudyReport (`tables.build(paths).studies[k]`) and returning a
matplotlib Figure (no pyplot: nothing opens a window or needs closing), and `figures`, every figure that has
something to show as PNGs. No Keras.
"""
from __future__ import annotations

from hpstudy.report.plots_base import NothingToPlot, png
from hpstudy.report.plots_effects import plot_budget, plot_effects, plot_importance, plot_parallel, plot_repeats
from hpstudy.report.plots_trials import pareto_front, plot_curves, plot_history, plot_pareto

__all__ = ["plot_effects", "plot_parallel", "plot_importance", "plot_budget", "plot_history", "plot_pareto",
           "plot_curves", "plot_repeats", "figures", "named_figures", "NothingToPlot", "pareto_front", "png"]

CAPTIONS = (("effects", plot_effects, "effect of each hyperparameter: every trial, raw means, adjusted estimates "
                                      "with 95% intervals and verdicts"),
            ("importance", plot_importance, "importance of each hyperparameter, with its interval"),
            ("budget", plot_budget, "expected best score of each question value at equal budgets, with 95% bands"),
            ("parallel", plot_parallel, "every trial in parallel coordinates, coloured by the objective"),
            ("history", plot_history, "optimization history: each trial's score and the best so far"),
            ("pareto", plot_pareto, "objective against parameters, FLOPs and seconds, Pareto front marked"),
            ("curves", plot_curves, "learning curves of the best trials, best and last epoch marked"),
            ("repeats", plot_repeats, "seed repeats of the confirmed configurations"))


def figures(study, *, top: int = 3) -> list[tuple[str, bytes]]:
    """Every figure of one study that has something to show, in order, as (caption, PNG bytes); `top` trials get
    learning curves. A figure with nothing to show (one trial, no repeats, no ranking) is left out."""
    return [(caption, data) for _, caption, data in named_figures(study, top=top)]


def named_figures(study, *, top: int = 3) -> list[tuple[str, str, bytes]]:
    """As `figures`, each with its short name first (effects, importance, ...: the file name reports give it)."""
    out = []
    for name, plot, caption in CAPTIONS:
        try:
            fig = plot(study, top=top) if plot is plot_curves else plot(study)
        except NothingToPlot:
            continue
        out.append((name, f"{study.name}: {caption}", png(fig)))
    return out
