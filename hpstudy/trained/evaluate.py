"""Evaluate a study's best models on its test split: per-class tables and figures for the report.

    ev = evaluate("results/quickstart", "report/", top=3)
    ev.models[0].report        # scikit-learn's classification_report as a DataFrame
    ev.models[0].confusion_png, ev.models[0].samples_png, ev.learning_curves_png

A trial's model is rebuilt from its stored hyperparameters and loaded with keras-tuner's
checkpoint: its best epoch's weights, or its last epoch's with search.checkpoint_epoch: last
(rank 0 is best.keras itself). This module imports Keras: the API
imports it lazily.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# Figures of their own (no pyplot, no backend chosen): files only, never a window, in any thread.
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from hpstudy.engine.search.hypermodel import load_data
from hpstudy.errors import ResultsError
from hpstudy.results import folder, outputs, trials
from hpstudy.results.curves import draw_curves
from hpstudy.text import literal_figure
from hpstudy.trained.models import model_at_rank

SAMPLES = 25                            # test images in a samples grid
MAX_ANNOTATED_CLASSES = 20              # confusion matrices with more classes get no numbers in their cells


@dataclass
class ModelEvaluation:
    """One of the best models on the test split."""

    rank: int
    trial_id: str
    score: float | None               # the objective at the trial's best epoch (validation)
    weights_epoch: int | None         # the epoch (from 1) whose weights were evaluated
    checkpoint_epoch: str             # which epoch the study keeps: "best" or "last" (search.checkpoint_epoch)
    test_loss: float
    test_accuracy: float
    report: pd.DataFrame              # rows: each class, then accuracy, macro avg, weighted avg
    confusion: pd.DataFrame           # rows: true class, columns: predicted class; counts
    predicted: np.ndarray = field(repr=False)   # predicted class of each test image
    confusion_png: Path | None = None
    samples_png: Path | None = None
    pruned_at_epoch: int | None = None  # where search.pruning stopped the trial (ranked after every completed one)


@dataclass
class Evaluation:
    """What `evaluate` produced: one ModelEvaluation per model, best first, and the learning curves."""

    path: Path                        # the results folder
    folder: Path                      # where the PNGs are
    class_names: list[str]
    test_size: int
    models: list[ModelEvaluation]
    learning_curves_png: Path | None = None


# ---------------------------------------------------------------- tables
def classification_table(y_true, y_pred, class_names) -> pd.DataFrame:
    """scikit-learn's classification_report as a DataFrame: precision, recall, f1-score, support per class
    (every class, even one absent from the test split), then accuracy, macro avg and weighted avg."""
    from sklearn.metrics import classification_report
    names = [str(n) for n in class_names]
    report = classification_report(np.asarray(y_true), np.asarray(y_pred), labels=list(range(len(names))),
                                   target_names=names, output_dict=True, zero_division=0)
    rows = {}
    for key, value in report.items():
        if isinstance(value, dict):
            rows[key] = value
        else:   # "accuracy" is a bare number in sklearn's dict
            rows[key] = {"precision": np.nan, "recall": np.nan, "f1-score": value, "support": len(y_true)}
    table = pd.DataFrame.from_dict(rows, orient="index")[["precision", "recall", "f1-score", "support"]]
    table["support"] = table["support"].astype(int)
    return table


def confusion_table(y_true, y_pred, class_names) -> pd.DataFrame:
    """Counts: rows are the true class, columns the predicted one."""
    from sklearn.metrics import confusion_matrix
    names = [str(n) for n in class_names]
    matrix = confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=list(range(len(names))))
    return pd.DataFrame(matrix, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


# ---------------------------------------------------------------- figures
def plot_confusion(confusion: pd.DataFrame, file: Path, title: str = "") -> Path:
    """The confusion matrix as a heat map, counts in the cells while there are few classes."""
    n = len(confusion)
    side = min(4 + 0.45 * n, 16)
    fig = Figure(figsize=(side, side * 0.85), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(confusion.to_numpy(), cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), confusion.columns, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), confusion.index)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= MAX_ANNOTATED_CLASSES:
        values = confusion.to_numpy()
        high = values.max() / 2 if values.size else 0
        for (i, j), count in np.ndenumerate(values):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                        color="white" if count > high else "black")
    ax.set_title(title)
    return _save(fig, file)


def plot_samples(images: np.ndarray, y_true, y_pred, class_names, file: Path, title: str = "") -> Path:
    """A grid of test images, each titled with its true and predicted class; wrong ones in red with a ✗."""
    n = len(images)
    cols = max(1, min(5, n))
    rows = max(1, -(-n // cols))
    fig = Figure(figsize=(2.1 * cols, 2.4 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k].squeeze(), cmap="gray" if images[k].shape[-1] == 1 else None)
        true, pred = class_names[int(y_true[k])], class_names[int(y_pred[k])]
        wrong = int(y_true[k]) != int(y_pred[k])
        ax.set_title(f"true: {true}\npred: {pred}{' ✗' if wrong else ''}", fontsize=8,
                     color="red" if wrong else "black")
        if wrong:
            ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, edgecolor="red", linewidth=3,
                                   clip_on=False))
    fig.suptitle(title, fontsize=10)
    return _save(fig, file)


def plot_learning_curves(runs: list[tuple], file: Path, title: str = "") -> Path:
    """Loss and accuracy per epoch of each run, (label, history, best epoch or None): see
    `results.curves.draw_curves`, which draws them for the report and `hpstudy serve` too."""
    return _save(draw_curves(runs, title), file)


def _save(fig: Figure, file: Path) -> Path:
    literal_figure(fig)              # class names are drawn as written, never as mathtext
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return outputs.write_bytes(file, buffer.getvalue(), "a figure")


# ---------------------------------------------------------------- the whole evaluation
def evaluate(path: str | Path, figures: str | Path, *, top: int = 3, samples: int = SAMPLES,
             dataset=None) -> Evaluation:
    """Evaluate the best `top` completed trials on the test split; figures are written into `figures`:
    confusion_rank<r>_trial<id>.png, samples_rank<r>_trial<id>.png and learning_curves.png."""
    layout = folder.open_folder(path)
    ranked = trials.ranked_trials(layout)
    if not ranked:
        raise ResultsError(f"{layout.root}: no completed trial to evaluate yet")
    if top < 1:
        raise ResultsError(f"top: expected a positive number of models, got {top}")
    study = folder.study_of(layout)
    dataset = dataset if dataset is not None else load_data(study)
    class_names = list(trials.read_best(layout).get("class_names") or dataset.class_names)
    figures = Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    table = trials.read_trials(layout).set_index("trial_id")
    test = dataset.test
    shown = min(samples, len(test.x))
    evaluations = []
    for rank, number in enumerate(ranked[:top]):
        _, model = model_at_rank(layout, rank, dataset=dataset)
        scores = model.evaluate(test.x, test.y, verbose=0, return_dict=True)
        predicted = np.argmax(model.predict(test.x, verbose=0), axis=-1)
        confusion = confusion_table(test.y, predicted, class_names)
        stem = f"rank{rank}_trial{number}"
        score = table.loc[number, "score"] if number in table.index else None
        best_epoch = table.loc[number, "best_epoch"] if number in table.index else None
        best_epoch = None if best_epoch is None or pd.isna(best_epoch) else int(best_epoch)
        pruned_at = table.loc[number, "pruned_at_epoch"] if number in table.index else None
        name = f"rank {rank}: trial {number}"
        evaluations.append(ModelEvaluation(
            rank=rank, trial_id=number, score=None if score is None or pd.isna(score) else float(score),
            weights_epoch=trials.weights_epoch(layout, number, study.search.checkpoint_epoch, best_epoch),
            checkpoint_epoch=study.search.checkpoint_epoch,
            test_loss=float(scores["loss"]), test_accuracy=float(scores["accuracy"]),
            report=classification_table(test.y, predicted, class_names), confusion=confusion, predicted=predicted,
            confusion_png=plot_confusion(confusion, figures / f"confusion_{stem}.png", name),
            samples_png=plot_samples(test.x[:shown], test.y[:shown], predicted[:shown], class_names,
                                     figures / f"samples_{stem}.png", name),
            pruned_at_epoch=None if pruned_at is None or pd.isna(pruned_at) else int(pruned_at)))
        del model
    runs = [(f"trial {number}", history, table.loc[number, "best_epoch"] if number in table.index else None)
            for number in ranked[:top] if (history := trials.read_history(layout, number)) is not None and len(history)]
    curves = plot_learning_curves(runs, figures / "learning_curves.png", f"{study.name}: learning curves of the "
                                  f"{len(runs)} best trials (train solid, validation dashed)") if runs else None
    return Evaluation(path=layout.root, folder=figures, class_names=class_names, test_size=len(test.y),
                      models=evaluations, learning_curves_png=curves)
