"""Learning curves, drawn once for the report, the evaluation of the best models and `hpstudy serve`: loss and
accuracy per epoch of each run, on a matplotlib Figure of its own (no pyplot, no backend chosen, no global state,
so it is drawn in any thread and never needs closing). No Keras."""
from __future__ import annotations

from matplotlib.figure import Figure

from hpstudy.text import literal_figure

CURVE_METRICS = (("loss", "loss (cross-entropy)"), ("accuracy", "accuracy (fraction correct)"))
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
DPI = 90                                # PNGs of about 1000 x 400 pixels: readable, small, fast


def legend(ax) -> None:
    """The axes' legend, each label once (a label repeated per run or value is one entry)."""
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(list(unique.values()), list(unique.keys()), fontsize=7, loc="best")


def draw_curves(runs, title: str, *, size: tuple[float, float] = (11, 4.2)) -> Figure:
    """A figure of `size` inches with loss and accuracy per epoch of each run in `runs`, (label, history, best
    epoch or None): a history (results.trials.read_history) has `epoch` counted from 1 and Keras's metric
    columns. Train is solid, validation dashed, one colour per run; the last epoch run is circled, and the best
    epoch (the one scored and kept), where given, starred. Every text is drawn as written (`literal_figure`)."""
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(CURVE_METRICS), squeeze=False)[0]
    last_epoch = 1
    for k, (label, history, best_epoch) in enumerate(runs):
        colour, epochs = COLOURS[k % len(COLOURS)], history["epoch"].to_numpy()
        last_epoch = max(last_epoch, int(epochs.max()) if len(epochs) else 1)
        for ax, (metric, _) in zip(axes, CURVE_METRICS):
            for prefix, style, what in (("", "-", "train"), ("val_", "--", "validation")):
                if f"{prefix}{metric}" in history and len(epochs):
                    _draw_run(ax, epochs, history[f"{prefix}{metric}"].to_numpy(dtype=float), colour, style,
                              f"{label} {what}", _epoch(best_epoch) if prefix else None, marked=bool(prefix))
    for ax, (metric, axis_label) in zip(axes, CURVE_METRICS):
        ax.set_xlabel("epoch")
        ax.set_ylabel(axis_label)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.set_xlim(0.5, max(2, last_epoch) + 0.5)        # a run of one epoch still gets an axis to sit on
        ax.xaxis.get_major_locator().set_params(integer=True)
        legend(ax)
    fig.suptitle(title)
    return literal_figure(fig)


def _epoch(value) -> int | None:
    """An epoch number, or None for a missing one (None, NaN or a pandas blank)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _draw_run(ax, epochs, values, colour: str, style: str, label: str, best_epoch, *, marked: bool) -> None:
    """One curve; `marked`: its last epoch circled and its `best_epoch` starred (validation curves)."""
    ax.plot(epochs, values, style, color=colour, marker=".", markersize=4, label=label)
    if not marked:
        return
    ax.scatter([epochs[-1]], [values[-1]], marker="o", s=40, facecolors="none", edgecolors=colour,
               label="last epoch run", zorder=3)
    hit = [i for i, epoch in enumerate(epochs) if best_epoch is not None and epoch == best_epoch]
    if hit:
        ax.scatter([epochs[hit[0]]], [values[hit[0]]], marker="*", s=110, color=colour, edgecolors="black",
                   linewidths=0.5, label="best epoch (kept)", zorder=4)
