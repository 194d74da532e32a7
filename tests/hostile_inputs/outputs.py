"""What hpstudy prints when it refuses a name or a value that carries terminal escape sequences, line breaks, C1
or bidirectional controls, spreadsheet formulas or HTML: a folder, an image, a report's output, a sort column, a
study file's key, a results folder's record. The error line quotes each with its control characters written as
escapes (`\\x1b[2J`, never the byte), on one line; nothing in the results folder changes. Reports and figures
that succeed with hostile values are tested in tests/test_output_safety.py."""
from __future__ import annotations

import json

from tests.hostile_inputs import case
from tests.hostile_inputs.results import HISTORY, TRIAL, _damage, unchanged

CLEAR = "\x1b[2J"               # erases the screen when printed raw
TITLE = "\x1b]0;owned\x07"      # sets the terminal's title when printed raw
REVERSE = "\u202e"              # shows the rest of the line reversed


def _image(ctx):
    from PIL import Image
    path = ctx.tmp / "digit.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)
    return path


@case("output_report_of_a_missing_folder_named_with_escapes", "\\x1b]0;owned\\x07gone\\nnext")
def _(ctx):
    return ["report", ctx.tmp / f"{TITLE}gone\nnext"]


@case("output_predict_a_missing_image_named_with_escapes", "\\x1b[2J\\u202egnp.exe.png")
def _(ctx):
    return ["predict", ctx.results(), _image(ctx), ctx.tmp / f"{CLEAR}{REVERSE}gnp.exe.png"]


@case("output_report_into_a_missing_folder_named_with_escapes", "\\x1b[2J\\x9b31m<b>=1+1</b>")
def _(ctx):
    return ["report", ctx.results(), "--output", ctx.tmp / f"{CLEAR}\x9b31m<b>=1+1</b>" / "report.md"]


@case("output_report_sorted_by_a_column_named_with_escapes", "\\x1b[2J=HYPERLINK(1)")
def _(ctx):
    return ["report", ctx.results(), "--sort", f"{CLEAR}=HYPERLINK(1)"]


@case("output_study_file_key_with_escapes", "\\x1b[2J=cmd|")
def _(ctx):
    study = ctx.tmp / "hostile_key.yaml"
    text = ctx.study_file().read_text()
    # YAML's own escape: the key holds a real ESC; a study file is read as YAML 1.2 text.
    study.write_text(text.replace("train:\n", 'train:\n  "\\e[2J=cmd|\' /C calc\'!A0": 1\n', 1))
    return ["validate", study]


@case("output_trial_record_with_an_escape_in_its_trial_id", "\\x1b[2J", check=unchanged)
def _(ctx):
    def edit(path):
        data = json.loads(path.read_text())
        data["trial_id"] = f"{CLEAR}1"
        path.write_text(json.dumps(data))
    return ["report", _damage(ctx, TRIAL, edit)]


@case("output_history_column_named_with_a_formula_and_escapes", "=cmd\\x1b[2J", check=unchanged)
def _(ctx):
    def edit(path):
        path.write_text(f"epoch,loss,=cmd{CLEAR}\n1,0.5,<b>x</b>\n", encoding="utf-8")
    return ["report", _damage(ctx, HISTORY, edit), "--best", "1", "--output", ctx.tmp / "report.md"]


@case("output_study_name_with_escapes", "\\x1b[31mred")
def _(ctx):
    study = ctx.tmp / "hostile_name.yaml"
    text = ctx.study_file().read_text()
    study.write_text(text.replace("name: tiny", 'name: "\\e[31mred"', 1))
    return ["validate", study]
