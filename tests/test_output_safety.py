"""Every output format safe to open: a real study whose class names, hyperparameter values, question, failure
messages and repeat messages carry hostile strings (spreadsheet formulas, HTML, pipes, line breaks, ANSI escape
sequences, C1 and bidirectional controls, matplotlib mathtext), written to each format and figure hpstudy makes.
CSV cells never start a formula and read back as they were; markdown, HTML and LaTeX hold no tag, broken row or
control character from a value; JSON is standard; figures draw `$` literally; the terminal gets no control
character."""
import csv
import io
import json
import math
import re
import shutil
import textwrap

import numpy as np
import pandas as pd
import pytest

from hpstudy import files, text as safe
from hpstudy.cli import main
from hpstudy.results import trials
from hpstudy.results.folder import open_folder
from tests.helpers import pattern, write_png

# Each a value drawn from data; the "neighbours" of the cases: every formula start OWASP names, HTML, the
# markdown table's pipe, line breaks, ANSI CSI and OSC sequences, a C1 control, a bidirectional override, a leading
# quote (read back exactly), and the three mathtext class names that crashed or were drawn as formulas.
HOSTILE = ['=HYPERLINK("http://x.invalid","click")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB=1", "\rCR=1",
           "<script>alert(1)</script>", "a|b", "line\nbreak", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07osc",
           "\x9bC1", "bidi\u202eevil", "'quoted", "&amp;<b>bold</b>", "$5-$10 bills", "a_$b$^c $x_{$", "$\\frac{$"]
FORMULA = tuple("=+-@\t\r")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Recorded values of the searched `model.pooling` in the received folder: each original value becomes one of these.
VALUES = {"max": "=1+1|<b>$5-$10 bills</b>\n\x1b[2J", "avg": "-a_$b$^c $x_{$\r@x"}
MESSAGE = "=cmd|' /C calc'!A0 <img src=x onerror=alert(1)>\n\x1b[31m$\\frac{$"
QUESTION = "Question: does =SUM(A1) <b>pooling</b> | matter for $5-$10 bills?"

STUDY = """
# {question}
name: hostile
data:
  dataset: npz
  data_dir: {npz}
model:
  builder: plain_cnn
  conv_layers: 1
  filters: 4
  dense_units: 8
  pooling: {{tune: choice, values: [max, avg]}}
  dropout: {{tune: choice, values: [0.0, 0.5]}}
train:
  epochs: 2
  batch_size: 32
search:
  tuner: grid
  seed: 1
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A real 4-trial study on arrays whose class names are HOSTILE, then, as a folder received from someone else
    would be, its recorded pooling values replaced by VALUES, a fifth trial FAILED with MESSAGE, and two seed
    repeats (one failed with MESSAGE); trials.csv and repeats.csv rewritten by hpstudy. Its results folder."""
    import hpstudy
    folder = tmp_path_factory.mktemp("hostile")
    n = len(HOSTILE)
    x = np.stack([pattern(i, 8, 8) for i in range(4 * n)])
    y = np.arange(4 * n) % n
    np.savez(folder / "d.npz", x_train=x[:2 * n], y_train=y[:2 * n], x_val=x[2 * n:3 * n], y_val=y[2 * n:3 * n],
             x_test=x[3 * n:], y_test=y[3 * n:], class_names=np.array(HOSTILE))
    study_file = folder / "hostile.yaml"
    study_file.write_text(textwrap.dedent(STUDY.format(question=QUESTION, npz=folder / "d.npz")).lstrip())
    root = hpstudy.run(study_file, results_dir=folder / "results").path
    layout = open_folder(root)
    for trial_file in layout.tuner_trials():
        record = json.loads(trial_file.read_text())
        values = record["hyperparameters"]["values"]
        values["model.pooling"] = VALUES[values["model.pooling"]]
        trial_file.write_text(json.dumps(record))
    failed = json.loads(trial_file.read_text())
    # keras-tuner records a traceback; the table keeps its last line: here the whole message, on one line.
    failed.update(trial_id="9", status="FAILED", score=None,
                  message=f"Traceback (most recent call last):\n  ...\n{MESSAGE.replace(chr(10), ' ')}")
    failed["metrics"]["metrics"] = {}
    (trial_file.parent.parent / "trial_9").mkdir()
    (trial_file.parent.parent / "trial_9" / "trial.json").write_text(json.dumps(failed))
    best = trials.read_best(layout)["trial_id"]
    for seed, status in ((11, "COMPLETED"), (12, "FAILED")):
        files.write_json(layout.repeat(best, seed), {
            "trial_id": best, "seed": seed, "status": status, "score": 0.5 if status == "COMPLETED" else None,
            "epochs_run": 2, "seconds": 1.0, "message": MESSAGE if status == "FAILED" else None})
    trials.write_table(layout)
    trials.write_repeats(layout)
    return root


def raw(path) -> str:
    """A file's text as written (read_text would turn a carriage return inside a cell into a line break)."""
    return path.read_bytes().decode("utf-8")


def cells(csv_text: str) -> list[str]:
    """Every cell of a CSV text, as a spreadsheet reads it (header included)."""
    return [cell for row in csv.reader(io.StringIO(csv_text)) for cell in row]


def assert_no_formula(csv_text: str) -> None:
    starts = [cell for cell in cells(csv_text) if cell.startswith(FORMULA)]
    # A number (a negative one, say) is a number to a spreadsheet too, not a formula: it may start with "-".
    assert all(re.fullmatch(r"-?[0-9.e+-]+|-?inf", cell) for cell in starts), starts


def test_trials_csv_and_repeats_csv_neutralise_formulas_and_read_back_as_recorded(hostile):
    layout = open_folder(hostile)
    written = raw(layout.table)
    assert_no_formula(written)
    assert "'=1+1|<b>" in written and "'-a_$b$" in written and "'=cmd|" in written
    table = safe.read_csv(layout.table)
    pd.testing.assert_series_equal(table["model.pooling"], trials.read_trials(layout)["model.pooling"],
                                   check_dtype=False)
    assert set(table["model.pooling"].dropna()) == set(VALUES.values())
    assert table.loc[table.status == "FAILED", "message"].item() == MESSAGE.replace("\n", " ")
    repeats = raw(layout.repeats_table)
    assert_no_formula(repeats) and "'=cmd|' /C calc'!A0" in repeats
    assert MESSAGE in set(safe.read_csv(layout.repeats_table).message.dropna())


def test_csv_cells_keep_numbers_and_round_trip_every_string():
    table = pd.DataFrame({"=x": [*HOSTILE, "plain", None], "n": [-0.5, *range(len(HOSTILE)), math.nan]})
    written = safe.csv_text(table)
    assert_no_formula(written)
    assert written.splitlines()[1].endswith(",-0.5")                     # a negative number stays a number
    pd.testing.assert_frame_equal(safe.read_csv(io.StringIO(written), keep_default_na=False, na_values=[""]),
                                  table.fillna(np.nan))
    assert safe.read_csv(io.StringIO("a\n'-0.5\n''x\n")).a.tolist() == ["-0.5", "'x"]


def test_report_csv_is_neutralised(hostile, tmp_path):
    out = tmp_path / "report.csv"
    assert main(["report", str(hostile), "--format", "csv", "--output", str(out)]) == 0
    written = raw(out)
    assert_no_formula(written)
    assert set(safe.read_csv(out)["model.pooling"].dropna()) == set(VALUES.values())


def _markdown_rows_are_whole(text: str) -> None:
    """Every row of every markdown table has as many cells as its header (no value split a row or a cell)."""
    table = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            table.append(len(re.findall(r"(?<!\\)\|", line)))
        elif table:
            assert len(set(table)) == 1, (table, text)
            table = []


def test_markdown_escapes_html_pipes_line_breaks_and_controls(hostile, tmp_path):
    out = tmp_path / "report.md"
    assert main(["report", str(hostile), "--format", "markdown", "--output", str(out), "--best", "1"]) == 0
    text = out.read_text()
    assert not CONTROL.search(text)
    assert not re.search(r"<(?!br>)[a-z/!]", text), re.findall(r"<[^>]*>", text)  # no tag but the line breaks
    _markdown_rows_are_whole(text)
    assert "&lt;b&gt;pooling&lt;/b&gt; \\| matter for \\$5-\\$10 bills" in text     # the question
    assert "=1+1\\|&lt;b&gt;\\$5-\\$10 bills&lt;/b&gt;<br>" in text             # a recorded value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "line<br>break" in text     # class names
    assert "red" in text and "osc" in text and "\\x1b" not in text           # ANSI sequences dropped whole


def test_html_escapes_every_value(hostile, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(hostile), "--format", "html", "--output", str(out), "--best", "1"]) == 0
    page = out.read_text()
    assert not CONTROL.search(page)
    assert not re.search(r"<(script|img src=x|b>bold|b>pooling|b>\$5)", page), re.findall(r"<[^>]{0,20}", page)
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_latex_escapes_every_value(hostile, tmp_path):
    out = tmp_path / "report.tex"
    assert main(["report", str(hostile), "--format", "latex", "--output", str(out)]) == 0
    text = out.read_text()
    assert not CONTROL.search(text)
    assert r"\textless{}b\textgreater{}" in text and r"\$5-\$10 bills" in text and "<" not in text
    assert not re.search(r"(?<!\\)[$#^_]", text), re.findall(r".{20}(?<!\\)[$#^_].{20}", text)


def test_json_is_standard_with_nan_and_infinities_as_null(hostile, tmp_path):
    copy = tmp_path / "nan"
    shutil.copytree(hostile, copy)
    best = json.loads((copy / "best.json").read_text())
    (copy / "best.json").write_text(json.dumps({**best, "test_accuracy": math.nan, "test_loss": math.inf}))
    out = tmp_path / "report.json"
    assert main(["report", str(copy), "--format", "json", "--output", str(out)]) == 0

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")
    found = json.loads(out.read_text(), parse_constant=refuse)
    assert found["answer"]["test_accuracy"] is None
    assert {r["model.pooling"] for r in found["trials"]} >= set(VALUES.values())
    files.write_json(tmp_path / "record.json", {"a": math.nan, "b": [-math.inf, np.float32("nan"), 1.5]})
    assert json.loads((tmp_path / "record.json").read_text(), parse_constant=refuse) == {"a": None,
                                                                                          "b": [None, None, 1.5]}


def _drawn(fig) -> list[tuple[str, bool]]:
    """(text, drawn as mathtext) of every text of `fig` once drawn, tick labels included."""
    from matplotlib.text import Text
    fig.savefig(io.BytesIO(), format="png")          # drawn as a report draws it (tick labels set only then)
    # matplotlib's own decision (Text._preprocess_math): what would be drawn, and whether as mathtext.
    return [t._preprocess_math(t.get_text()) for t in fig.findobj(Text) if t.get_text() and t.get_visible()]


def test_figures_draw_dollar_signs_literally(hostile, tmp_path):
    from hpstudy.report import plots, tables
    study = tables.build([hostile]).studies[0]
    drawn = {}
    for plot in (plots.plot_effects, plots.plot_history, plots.plot_curves, plots.plot_repeats, plots.plot_parallel):
        try:
            fig = plot(study)
        except plots.NothingToPlot:
            continue
        for text, math_ in _drawn(fig):
            drawn[text] = math_ or drawn.get(text, False)
    assert VALUES["max"].split("|")[0] + "|<b>$5-$10 bills</b>" in "".join(drawn)   # the tick label, literally
    assert not [t for t, math_ in drawn.items() if math_ and "$" in t and "mathdefault" not in t], drawn
    assert main(["report", str(hostile), "--output", str(tmp_path / "r.md"), "--best", "1"]) == 0
    assert len(list(tmp_path.rglob("*.png"))) >= 5


def test_evaluation_figures_draw_class_names_literally(hostile, tmp_path):
    from hpstudy.trained import evaluate
    confusion = pd.DataFrame(np.eye(len(HOSTILE), dtype=int), index=HOSTILE, columns=HOSTILE)
    evaluate.plot_confusion(confusion, tmp_path / "c.png", title="$\\frac{$")
    evaluate.plot_samples(np.zeros((3, 8, 8, 3), np.uint8), [15, 16, 17], [16, 17, 15], HOSTILE, tmp_path / "s.png",
                          title="a_$b$^c $x_{$")
    assert (tmp_path / "c.png").stat().st_size and (tmp_path / "s.png").stat().st_size


def test_the_notebook_view_draws_hostile_names(hostile):
    import hpstudy
    page = hpstudy.load_study(hostile)._repr_html_()
    assert page.count("data:image/png;base64,") == 2 and not CONTROL.search(page)
    assert "<script" not in page and "hpstudy:</b>" not in page               # drawn, not an error line


def test_report_to_a_terminal_has_no_control_character(hostile, capsys):
    for fmt in ("markdown", "csv", "html", "latex", "json"):
        assert main(["report", str(hostile), "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert not CONTROL.search(out.replace("\r\n", "\n")), fmt          # CSV rows end in CRLF


def test_predict_prints_hostile_class_names_one_line_each(hostile, tmp_path, capsys):
    image = tmp_path / "\x1b[2Jimage.png"
    write_png(image, pattern(3, 8, 8))
    assert main(["predict", str(hostile), str(image), "--top", str(len(HOSTILE))]) == 0
    out = capsys.readouterr().out
    assert not CONTROL.search(out.replace("\n", ""))
    lines = out.splitlines()
    assert len(lines) == 1 + len(HOSTILE) and lines[0].endswith("\\x1b[2Jimage.png")
    assert "  line\\nbreak" in out and "\\x1b[31mred\\x1b[0m" in out and "bidi\\u202eevil" in out


def test_progress_and_error_lines_hold_no_control_character(capsys):
    from hpstudy.engine.progress import Progress
    stream = io.StringIO()
    progress = Progress(2, "val_accuracy", stream=stream)
    progress.trial_begin("0")
    progress.trial_end("0", "FAILED", {"model.pooling": VALUES["max"]}, None, MESSAGE)
    progress.close()
    line = stream.getvalue()
    assert line.count("\n") == 1 and not CONTROL.search(line[:-1]) and "\\x1b[2J" in line
    assert main(["report", "\x1b]0;owned\x07missing\nfolder"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not CONTROL.search(err[:-1]) and "\\x1b]0;owned\\x07missing\\nfolder" in err


def test_markdown_text_neutralises_each_hostile_string():
    for value in HOSTILE:
        shown = safe.markdown_text(value)
        assert not CONTROL.search(shown) and "<" not in shown.replace("<br>", "") and "\n" not in shown
        assert not re.search(r"(?<!\\)\|", shown.replace("\\\\", ""))
    assert safe.markdown_text("a\\|b") == "a\\\\\\|b"         # a backslash before a pipe cannot unescape it
    assert safe.terminal_text("a\tb\nc\x1b[0m\x85") == "a\tb\nc\\x1b[0m\\x85"


def test_study_fixture_is_the_hostile_one(hostile):
    """The received folder holds what the tests above rely on (else they would prove nothing)."""
    layout = open_folder(hostile)
    assert trials.read_best(layout)["class_names"] == HOSTILE
    table = trials.read_trials(layout)
    assert set(table["model.pooling"].dropna()) == set(VALUES.values()) and "FAILED" in set(table.status)
