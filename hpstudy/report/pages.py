"""Reports of one or more studies rendered as text (no Keras): what `report.tables` holds, in every format.

Every format but CSV opens with each study's answer (`report.answer`): its question, best configuration, test
accuracy and findings. Tables are rounded for reading (`report.numbers`); CSV and JSON keep every digit.
"""
from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pandas as pd

from hpstudy.errors import HpstudyError
from hpstudy.report import answer as answer_module
from hpstudy.report.numbers import rounded_text
from hpstudy.report.tables import Report, columns_worth_showing, sections
from hpstudy.text import csv_text, json_ready, markdown_text, one_line, terminal_text

# markdown  the answer, the trials table, then per study: the verdict lines and the noise floor, the effects
#           adjusted for the other hyperparameters with their intervals, the seed repeats, the question, the
#           importance ranking and the raw per-value tables
# csv       the trials table only
# json      {"answer", "trials", "effects", "noise_floor", "repeats", "confirmed", "budget"} (see `render_json`)
# latex     the answer as an itemize list, then LaTeX tabulars (written here, no jinja2 needed) of the same,
#           the lines as comments
# html      one self-contained page (inline CSS, no external resources): everything markdown has, plus
#           any PNG images handed to render_html
FORMATS = ("markdown", "csv", "json", "html", "latex")


# ---------------------------------------------------------------- rendering
def _answers(report: Report, render_one) -> list[str]:
    """Each study's answer rendered by `render_one(answer, several)`: what every report opens with."""
    several = len(report.studies) > 1
    return [render_one(study.answer, several) for study in report.studies if study.answer is not None]


def render(report: Report | pd.DataFrame, fmt: str, images: dict[str, bytes] | None = None) -> str:
    """The report (or a bare trials table) as text in `fmt` (one of FORMATS)."""
    if isinstance(report, pd.DataFrame):
        report = Report(report)
    if fmt == "csv":
        return csv_text(report.trials)
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "latex":
        return render_latex(report)
    if fmt == "html":
        return render_html(report, images)
    raise HpstudyError(f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")


def _records(report: Report, attribute: str, named) -> list[dict]:
    """The rows of every study's effects.`attribute` table, as JSON records."""
    return [named(record, study) for study in report.studies if getattr(study.effects, attribute) is not None
            for record in json.loads(getattr(study.effects, attribute).to_json(orient="records"))]


def render_json(report: Report) -> str:
    """The answer (see `answer.Answer.record`), the trials (one record each), every contrast with its interval,
    count and verdict, the noise floor, the seed repeats (one record each), each confirmed configuration's
    summary and each question hyperparameter's expected best score per value and number of trials (`budget`).
    With several studies each contrast, repeat, summary and budget row names its study, and `answer` and
    `noise_floor` map each study to its own."""
    several = len(report.studies) > 1
    def named(record, study):
        return {"study": study.name, **record} if several else record
    floors = {study.name: study.effects.noise_floor for study in report.studies}
    answers = {study.name: study.answer.record() for study in report.studies if study.answer is not None}
    out = {"answer": answers if several else next(iter(answers.values()), None),
           "trials": json.loads(report.trials.to_json(orient="records")),
           "effects": [named(c.as_record(), study) for study in report.studies for c in study.effects.contrasts()],
           "noise_floor": floors if several else next(iter(floors.values()), None),
           "repeats": _records(report, "repeat_records", named),
           "confirmed": _records(report, "repeats", named),
           "budget": [named({"hyperparameter": name, **record}, study) for study in report.studies
                      for name, (curves, _) in study.effects.budget.items()
                      for record in json.loads(curves.to_json(orient="records"))]}
    return json.dumps(json_ready(out), indent=2, allow_nan=False) + "\n"   # standard JSON: NaN, inf as null


def best_models_markdown(report: Report, relative_to: Path | None = None) -> str:
    """The best models section in markdown; figures linked relative to `relative_to` (the report's folder)."""
    parts = []
    for best in report.best:
        table = best.table.rename_axis("class").astype(object)
        table = table.map(lambda v: markdown_text(v) if isinstance(v, str) else v)     # class names from data
        table = table.rename(index=markdown_text, columns=markdown_text)
        parts += [f"## {markdown_text(best.title)}", "",
                  table.where(table.notna(), None).to_markdown(floatfmt=".4g", missingval=""), ""]
        for caption, png in best.figures.items():
            parts += [f"![{_alt(caption)}]({_link(png, relative_to)})", ""]
    return "\n".join(parts)


def _link(file: Path, relative_to: Path | None) -> str:
    """A figure's file as a markdown link target: relative to the report's folder, and a space or a bracket in a
    name (a study's, a folder's) never ends the link."""
    path = (file.relative_to(relative_to) if relative_to and file.is_relative_to(relative_to) else file).as_posix()
    if re.fullmatch(r"[\w./-]+", path):
        return path
    return "<" + one_line(path).replace("<", "%3C").replace(">", "%3E") + ">"     # CommonMark's form for any name


def _alt(caption: str) -> str:
    """A figure's caption as markdown image text: escaped, and a bracket in it never ends the text."""
    return markdown_text(caption).replace("[", r"\[").replace("]", r"\]")


def _figures_markdown(study, relative_to: Path | None) -> list[str]:
    """A study's figures written to files (`tables.add_figures`), linked relative to the report's folder."""
    written = [f for f in study.figures if f.file is not None]
    if not written:
        return []
    return [f"### Figures: {markdown_text(study.name)}", "",
            *[f"![{_alt(f.caption)}]({_link(f.file, relative_to)})\n" for f in written]]


def render_markdown(report: Report) -> str:
    """The trials table, then every study's sections (see `tables.sections`) and figures (those written to
    files, linked relative to `report.folder`)."""
    def md(table):
        """A table as GitHub markdown."""
        if not len(table):
            return "(none)"
        text, numeric = rounded_text(table)                         # rounded for reading; blanks, not "nan"
        text = text.map(markdown_text).rename(columns=markdown_text)     # values from data: no tag, pipe, line break
        return text.to_markdown(index=False, disable_numparse=True,
                                colalign=["right" if n else "left" for n in numeric])
    parts = [*_answers(report, answer_module.markdown), md(columns_worth_showing(report.trials)), ""]
    for study in report.studies:
        for section in sections(study):
            parts += [f"{'#' * section.level} {markdown_text(section.title)}", ""]
            lines = [markdown_text(line) for line in section.lines]
            lines = lines if section.title != "Summary" else [f"- {line}" for line in lines]
            parts += [*lines, ""] if lines else []
            if section.table is not None:
                parts += [md(section.table), ""]
        parts += _figures_markdown(study, report.folder)
    return "\n".join(parts).rstrip("\n") + "\n"


def latex_escape(text) -> str:
    """Text with LaTeX's special characters escaped, on one line (a line break is a space: a `%` comment line
    never ends early), control characters written as their escapes."""
    replace = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
               ">": r"\textgreater{}", "|": r"\textbar{}"}
    return "".join(replace.get(c, c) for c in one_line(" ".join(str(text).splitlines())))


def latex_tabular(table: pd.DataFrame) -> str:
    """A plain LaTeX tabular of `table` (numbers right-aligned and rounded for reading, blanks empty)."""
    text, numeric = rounded_text(table)             # numbers rounded for reading (report.numbers)
    align = "".join("r" if n else "l" for n in numeric)
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\hline",
             " & ".join(latex_escape(c) for c in table.columns) + r" \\", r"\hline"]
    for row in text.itertuples(index=False):
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines)


def render_latex(report: Report) -> str:
    """Each study's answer, then LaTeX tabulars: the trials table, every study's sections (lines as comments)."""
    parts = [*_answers(report, lambda a, several: answer_module.latex(a, latex_escape, several)),
             "% trials", latex_tabular(columns_worth_showing(report.trials)), ""]
    for study in report.studies:
        for section in sections(study):
            parts += [f"% {latex_escape(section.title)}", *[f"% {latex_escape(line)}" for line in section.lines]]
            if section.table is not None:
                parts += [latex_tabular(section.table)]
            parts += [""]
    return "\n".join(parts).rstrip("\n") + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1, h2, h3 { font-weight: 600; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
tbody tr:nth-child(even) { background: #fafafa; }
p.note { color: #555; }
figure { margin: 1em 0; }
img { max-width: 100%; }
div.scroll { overflow-x: auto; max-width: 100%; }
section.answer { border-left: 4px solid #3b6ea8; padding: 0.2em 1em; background: #f5f8fc; margin-bottom: 1.5em; }
section.answer ul { list-style: none; padding-left: 0; }
"""


def _html_table(table: pd.DataFrame) -> str:
    """A table, rounded for reading, in a box that scrolls sideways when it is wider than the page."""
    if not len(table):
        return "<p>(none)</p>"
    text, _ = rounded_text(table)
    return '<div class="scroll">' + text.to_html(index=False, border=0, escape=True) + "</div>"


def _html_figure(caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption, quote=True)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def render_html(report: Report, images: dict[str, bytes] | None = None) -> str:
    """One self-contained HTML page: each study's answer, the trials table, each study's summary lines,
    importance ranking, per-value tables and figures (`tables.add_figures`), then `images` (caption -> PNG bytes)
    and the best models' figures, every image embedded as a base64 data URI."""
    esc = html.escape
    body = ["<h1>hpstudy report</h1>", *_answers(report, answer_module.html_block), "<h2>Trials</h2>",
            _html_table(columns_worth_showing(report.trials))]
    for study in report.studies:
        for section in sections(study):
            body.append(f"<h{section.level}>{esc(section.title)}</h{section.level}>")
            if section.title == "Summary":
                body += ["<ul>"] + [f"<li>{esc(line)}</li>" for line in section.lines] + ["</ul>"]
            else:
                body += [f'<p class="note">{esc(line)}</p>' for line in section.lines]
            if section.table is not None:
                body.append(_html_table(section.table))
        if study.figures:
            body.append(f"<h3>Figures: {esc(study.name)}</h3>")
            body += [_html_figure(f.caption, f.png) for f in study.figures]
    for best in report.best:
        body += [f"<h2>{esc(best.title)}</h2>", _html_table(best.table.rename_axis("class").reset_index())]
        images = {**(images or {}), **{f"{best.title}: {caption}": png.read_bytes()
                                       for caption, png in best.figures.items()}}
    if images:
        body.append("<h2>Figures</h2>")
        body += [_html_figure(caption, png) for caption, png in images.items()]
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>hpstudy report</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")
    return terminal_text(page)     # every value escaped above; a control character from one is shown as its escape
