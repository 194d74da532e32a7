"""Learning curves, drawn by one function (results.curves.draw_curves) for the report, the evaluation of the best
models and `hpstudy serve`: each caller gets its figure, and none leaves matplotlib's pyplot state behind."""
import io
import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

import hpstudy
from hpstudy import api
from hpstudy.report import plots_trials
from hpstudy.results.curves import draw_curves
from hpstudy.results.layout import Layout
from hpstudy.serve import watch
from hpstudy.text import csv_text

PACKAGE = Path(hpstudy.__file__).parent
DRAWERS = ("results/curves.py", "trained/evaluate.py", "report/plots_trials.py", "serve/watch.py")
PYPLOT = re.compile(r"matplotlib\.pyplot|from matplotlib import pyplot|matplotlib\.use\(")


def history(epochs: int = 4, start: float = 0.5) -> pd.DataFrame:
    """A trial's history as hpstudy writes it: epoch from 1, Keras's metrics."""
    return pd.DataFrame({"epoch": range(1, epochs + 1), "loss": [2.0 / e for e in range(1, epochs + 1)],
                         "val_loss": [2.2 / e for e in range(1, epochs + 1)],
                         "accuracy": [start + 0.1 * e for e in range(epochs)],
                         "val_accuracy": [start + 0.08 * e for e in range(epochs)]})


@pytest.fixture
def no_pyplot_figures():
    """No pyplot figure before the test, and none after it: the drawing made none."""
    plt.close("all")
    yield
    assert plt.get_fignums() == []


def _labels(fig: Figure) -> set:
    return {label for ax in fig.axes for label in ax.get_legend_handles_labels()[1]}


def test_the_drawer_marks_the_best_and_the_last_epoch(no_pyplot_figures):
    fig = draw_curves([("trial 3", history(), 2), ("trial 7", history(start=0.3), float("nan"))], "two trials")
    assert isinstance(fig, Figure) and fig.get_suptitle() == "two trials"
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert {"trial 3 train", "trial 3 validation", "trial 7 validation", "last epoch run",
            "best epoch (kept)"} <= _labels(fig)
    stars = [c for ax in fig.axes for c in ax.collections if c.get_label() == "best epoch (kept)"]
    assert len(stars) == 2 and all(c.get_offsets()[0][0] == 2 for c in stars)     # trial 7's best is unknown
    literal = draw_curves([("a $5 trial", history(1), None)], "$x$")
    assert [t.get_parse_math() for t in literal.findobj(Text) if t.get_text() == "$x$"] == [False]


def test_the_report_draws_with_it(tmp_path, no_pyplot_figures):
    layout = Layout(tmp_path / "study")
    for number in ("0", "1"):
        layout.history(number).parent.mkdir(parents=True)
        layout.history(number).write_text(csv_text(history()))
    table = pd.DataFrame({"trial_id": ["0", "1"], "status": "COMPLETED", "score": [0.6, 0.9], "best_epoch": [3, 4]})
    study = SimpleNamespace(name="tiny", layout=layout, table=table, effects=SimpleNamespace(minimize=False))
    fig = plots_trials.plot_curves(study, top=2)
    assert {"trial 1 train", "trial 0 validation", "best epoch (kept)"} <= _labels(fig)
    assert fig.get_suptitle().startswith("tiny: learning curves of the 2 best trials")


def test_the_evaluation_draws_with_it(tmp_path, no_pyplot_figures):
    evaluate = api.import_quietly("hpstudy.trained.evaluate")
    file = evaluate.plot_learning_curves([("trial 0", history(), 3)], tmp_path / "curves.png", "best")
    with Image.open(file) as image:
        assert image.format == "PNG" and image.size[0] > 300
    confusion = pd.DataFrame([[3, 1], [0, 4]], index=["a", "b"], columns=["a", "b"])
    evaluate.plot_confusion(confusion, tmp_path / "confusion.png", "confusion")
    evaluate.plot_samples(np.zeros((2, 8, 8, 1)), [0, 1], [0, 0], ["a", "b"], tmp_path / "samples.png")
    assert {p.name for p in tmp_path.iterdir()} == {"curves.png", "confusion.png", "samples.png"}


def test_serve_draws_with_it(no_pyplot_figures):
    png = watch._curves_png("5", history(2), "trial 5, running")
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size[0] > 300


def test_no_drawer_imports_pyplot_or_chooses_a_backend():
    assert [name for name in DRAWERS if PYPLOT.search((PACKAGE / name).read_text(encoding="utf-8"))] == []


def test_the_pyplot_checks_can_fail():
    assert PYPLOT.search("import matplotlib.pyplot as plt") and PYPLOT.search('matplotlib.use("Agg")')
    assert PYPLOT.search("from matplotlib import pyplot")
    plt.figure()
    try:
        assert plt.get_fignums() != []
    finally:
        plt.close("all")
