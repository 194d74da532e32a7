"""Reports of one or more studies: the trials table and what each hyperparameter did (no Keras).

Formats:
  markdown  the trials table, then per study its effects: summary lines, importance ranking, per-value tables
  csv       the trials table only
  json      the trials table only, as a list of records (one object per trial)
  latex     LaTeX tabulars (written here, no jinja2 needed): the trials table, then each study's importance
            ranking and per-value tables
  html      one self-contained page (inline CSS, no external resources): everything markdown has, plus
            any PNG images handed to render_html

The report reads the trial files (not trials.csv), so a study still running can be reported at any time:
a trial file being written is skipped, a RUNNING trial shows with blanks and is left out of the effects.
"""
from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hpstudy.analysis import effects as effects_module
from hpstudy.lazy import import_quietly
from hpstudy.results import folder
from hpstudy.results.trials import is_minimized, read_trials
from hpstudy.results.layout import Layout
from hpstudy.errors import HpstudyError, ResultsError

FORMATS = ("markdown", "csv", "json", "html", "latex")


@dataclass
class StudyReport:
    """One study of a report: its name, folder, objective and effects."""

    name: str
    path: str
    objective: str
    effects: effects_module.Effects


@dataclass
class BestModel:
    """One of the best models, evaluated on the test split: a title, its per-class table and figure files."""

    title: str
    table: pd.DataFrame
    figures: dict[str, Path] = field(default_factory=dict)    # caption -> PNG file


@dataclass
class Report:
    """The trials table (a `study` column when several studies), each study's effects and best models."""

    trials: pd.DataFrame
    studies: list[StudyReport] = field(default_factory=list)
    best: list[BestModel] = field(default_factory=list)


# ---------------------------------------------------------------- reading
def read_study(path, *, attempts: int = 3) -> tuple[Layout, object, pd.DataFrame]:
    """(layout, study spec, trials table with `gap`) of one results folder. Trial files that change while
    they are read (a study still running) are retried a few times before giving up with one line."""
    layout = folder.open_folder(path)
    study = folder.study_of(layout)
    for attempt in range(attempts):
        try:
            table = read_trials(layout)
            break
        except (OSError, KeyError, ValueError, TypeError) as err:
            if attempt == attempts - 1:
                raise ResultsError(f"{path}: cannot read the trials while they change ({err}); "
                                   "try again") from None
            time.sleep(0.2)
    return layout, study, with_gap(table)


def with_gap(table: pd.DataFrame) -> pd.DataFrame:
    """The table with `gap` (accuracy - val_accuracy) right after val_accuracy."""
    table = table.copy()
    table.insert(table.columns.get_loc("val_accuracy") + 1, "gap", effects_module.gap(table))
    return table


def sort_trials(table: pd.DataFrame, column: str | None = None, *, minimize: bool = False) -> pd.DataFrame:
    """Sort a trials table. No column: by score, best first, trials that did not complete last. `column`:
    any column, "COL:asc" or "COL:desc"; by default accuracies descend, score goes best first, anything else
    ascends; blanks always last. Unknown columns raise HpstudyError listing the columns."""
    if column is None:
        done = (table["status"] == "COMPLETED").map(lambda x: 0 if x else 1)
        score = pd.to_numeric(table["score"], errors="coerce").astype(float)
        key = pd.DataFrame({"done": done, "score": score if minimize else -score})
        order = key.sort_values(["done", "score"], na_position="last", kind="stable").index
        return table.loc[order].reset_index(drop=True)
    name, _, direction = column.partition(":")
    if name not in table.columns or direction not in ("", "asc", "desc"):
        raise HpstudyError(f"--sort {column}: unknown column; one of {', '.join(table.columns)} "
                           "(optionally with :asc or :desc)")
    if direction:
        ascending = direction == "asc"
    elif name == "score":
        ascending = minimize
    else:
        ascending = not name.endswith("accuracy")
    values = table[name]
    if name == "trial_id":
        values = pd.to_numeric(values, errors="coerce")
    order = values.sort_values(ascending=ascending, na_position="last", kind="stable").index
    return table.loc[order].reset_index(drop=True)


def build(paths, *, sort: str | None = None, top: int | None = None) -> Report:
    """The report of results folders `paths`: the trials of each, sorted (see sort_trials) and cut to the
    first `top` of each study; several folders give one table with a `study` column. Effects are computed
    over every completed trial, whatever `top` keeps."""
    paths = list(paths)
    read = [read_study(path) for path in paths]
    names_seen = [study.name for _, study, _ in read]
    tables, studies = [], []
    for path, (layout, study, table) in zip(paths, read):
        label = study.name if names_seen.count(study.name) == 1 else str(path)    # same name twice: the folder
        objective = study.search.objective
        names = [t.name for t in study.tunables()]
        found = effects_module.effects(table, names, objective, importance_cache=layout.importance)
        studies.append(StudyReport(label, str(path), objective, found))
        if len(paths) > 1:
            table.insert(0, "study", label)
        tables.append((table, is_minimized(objective)))
    if sort is None:
        sorted_tables = [sort_trials(t, minimize=m) for t, m in tables]
        if top is not None:
            sorted_tables = [t.head(top) for t in sorted_tables]
        trials = _concat(sorted_tables)
    else:
        trials = _concat([t for t, _ in tables])
        trials = sort_trials(trials, sort, minimize=all(m for _, m in tables))
        if top is not None:
            key = trials["study"] if "study" in trials else pd.Series(0, index=trials.index)
            trials = trials[trials.groupby(key, sort=False).cumcount() < top].reset_index(drop=True)
    return Report(trials, studies)


def _concat(tables: list[pd.DataFrame]) -> pd.DataFrame:
    if len(tables) == 1:
        return tables[0].reset_index(drop=True)
    # columns in order of first appearance (studies may tune different hyperparameters)
    return pd.concat(tables, ignore_index=True)


def trials_table(paths, *, sort: str | None = None, top: int | None = None) -> pd.DataFrame:
    """The trials of one or more results folders, best first (a `study` column when several)."""
    return build(paths, sort=sort, top=top).trials


# ---------------------------------------------------------------- rendering
def render(report: Report | pd.DataFrame, fmt: str, images: dict[str, bytes] | None = None) -> str:
    """The report (or a bare trials table) as text in `fmt` (one of FORMATS)."""
    if isinstance(report, pd.DataFrame):
        report = Report(report)
    if fmt == "csv":
        return report.trials.to_csv(index=False)
    if fmt == "json":
        return report.trials.to_json(orient="records", indent=2) + "\n"
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "latex":
        return render_latex(report)
    if fmt == "html":
        return render_html(report, images)
    raise HpstudyError(f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """The columns worth showing: none that is blank in every row."""
    def blank(column):
        """Whether a column is blank: every value missing or empty."""
        values = table[column]
        return bool(values.isna().all() or (values.astype(str).str.strip() == "").all())
    table = table.drop(columns=[c for c in table if blank(c)])
    for column in table:    # counts (params, flops, epochs) made float by blanks: whole numbers again
        values = table[column]
        if pd.api.types.is_float_dtype(values) and column in _COUNTS:
            known = values.dropna()
            if len(known) and (known == known.round()).all() and known.abs().max() < 2 ** 53:
                table[column] = values.astype("Int64")
    return table


_COUNTS = {"best_epoch", "epochs_run", "params", "flops", "count"}


def _direction(report: StudyReport) -> str:
    return "lower is better" if report.effects.minimize else "higher is better"


def _heading(study: StudyReport) -> str:
    return (f"Effects: {study.name} (objective {study.objective}, {_direction(study)}; "
            f"{study.effects.trials} completed trials)")


def _value_table(effect: effects_module.Effect) -> pd.DataFrame:
    table = effect.table.copy()
    table["value"] = table["value"].map(effects_module.show)
    return table.rename(columns={"value": effect.name})


def evaluate_best(paths: list, figures: Path, top: int) -> list[BestModel]:
    """The best `top` models of each study, evaluated on the test split, as report sections; their figures are
    written under `figures`. Imports Keras (the only part of a report that does)."""
    evaluate = import_quietly("hpstudy.results.evaluate")
    sections = []
    for path in paths:
        found = evaluate.evaluate(path, Path(figures) / Path(path).name, top=top)
        for model in found.models:
            pictures = {"confusion matrix": model.confusion_png, "test images, true and predicted": model.samples_png}
            if model.rank == 0 and found.learning_curves_png:
                pictures["learning curves of the best trials"] = found.learning_curves_png
            sections.append(BestModel(
                f"{Path(path).name}: best model {model.rank + 1} (trial {model.trial_id}), test accuracy "
                f"{model.test_accuracy:.4f}, per-class precision, recall and F1",
                model.report, {k: v for k, v in pictures.items() if v}))
    return sections


def best_models_markdown(report: Report, relative_to: Path | None = None) -> str:
    """The best models section in markdown; figures linked relative to `relative_to` (the report's folder)."""
    parts = []
    for best in report.best:
        table = best.table.rename_axis("class").astype(object)
        parts += [f"## {best.title}", "", table.where(table.notna(), None).to_markdown(floatfmt=".4g", missingval=""),
                  ""]
        for caption, png in best.figures.items():
            link = png.relative_to(relative_to) if relative_to and png.is_relative_to(relative_to) else png
            parts += [f"![{caption}]({link.as_posix()})", ""]
    return "\n".join(parts)


def render_markdown(report: Report) -> str:
    """The trials table, then per study: summary lines, importance ranking and the per-value tables."""
    def md(table):
        """A table as GitHub markdown."""
        if not len(table):
            return "(none)"
        table = table.astype(object).where(table.notna(), None)     # blanks, not "nan"
        return table.to_markdown(index=False, floatfmt=".4g", missingval="")
    parts = [md(shown(report.trials)), ""]
    for study in report.studies:
        fx = study.effects
        parts += [f"## {_heading(study)}", "", "### Summary", ""]
        parts += [f"- {line}" for line in fx.sentences()] or ["(no tuned hyperparameters)"]
        parts += ["", "### Importance", "", fx.importance_note, ""]
        if fx.importance is not None:
            parts += [md(fx.importance), ""]
        for effect in fx.effects:
            parts += [f"### {effect.name}", "", md(_value_table(effect)), ""]
            if effect.spearman is not None:
                parts += [f"Spearman rank correlation with {study.objective}: {effect.spearman:+.3f}", ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def latex_escape(text) -> str:
    """Text with LaTeX's special characters escaped."""
    replace = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(replace.get(c, c) for c in str(text))


def latex_tabular(table: pd.DataFrame) -> str:
    """A plain LaTeX tabular of `table` (numbers right-aligned, 4 significant digits, blanks empty)."""
    def cell(value):
        """One LaTeX cell: numbers rounded for reading, text escaped."""
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.4g}"
        return latex_escape(value)
    align = "".join("r" if pd.api.types.is_numeric_dtype(table[c]) else "l" for c in table)
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\hline",
             " & ".join(latex_escape(c) for c in table.columns) + r" \\", r"\hline"]
    for row in table.itertuples(index=False):
        lines.append(" & ".join(cell(v) for v in row) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines)


def render_latex(report: Report) -> str:
    """LaTeX tabulars: the trials table, then each study's importance ranking and per-value tables."""
    parts = ["% trials", latex_tabular(shown(report.trials)), ""]
    for study in report.studies:
        fx = study.effects
        parts += [f"% {latex_escape(_heading(study))}"]
        parts += [f"% {latex_escape(line)}" for line in fx.sentences()]
        parts += [f"% importance: {latex_escape(fx.importance_note)}"]
        if fx.importance is not None:
            parts += [latex_tabular(fx.importance)]
        parts += [""]
        for effect in fx.effects:
            parts += [f"% {latex_escape(effect.name)}", latex_tabular(_value_table(effect)), ""]
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
"""


def _html_table(table: pd.DataFrame) -> str:
    if not len(table):
        return "<p>(none)</p>"
    return table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0, escape=True)


def render_html(report: Report, images: dict[str, bytes] | None = None) -> str:
    """One self-contained HTML page: the trials table, each study's summary lines, importance ranking and
    per-value tables, then `images` (caption -> PNG bytes), embedded as base64 data URIs."""
    esc = html.escape
    body = ["<h1>hpstudy report</h1>", "<h2>Trials</h2>", _html_table(shown(report.trials))]
    for study in report.studies:
        fx = study.effects
        body += [f"<h2>{esc(_heading(study))}</h2>", "<h3>Summary</h3>"]
        lines = fx.sentences()
        body += (["<ul>"] + [f"<li>{esc(line)}</li>" for line in lines] + ["</ul>"]) if lines else \
            ["<p>(no tuned hyperparameters)</p>"]
        body += ["<h3>Importance</h3>", f'<p class="note">{esc(fx.importance_note)}</p>']
        if fx.importance is not None:
            body.append(_html_table(fx.importance))
        for effect in fx.effects:
            body += [f"<h3>{esc(effect.name)}</h3>", _html_table(_value_table(effect))]
            if effect.spearman is not None:
                body.append(f'<p class="note">Spearman rank correlation with {esc(study.objective)}: '
                            f"{effect.spearman:+.3f}</p>")
    for best in report.best:
        body += [f"<h2>{esc(best.title)}</h2>", _html_table(best.table.rename_axis("class").reset_index())]
        images = {**(images or {}), **{f"{best.title}: {caption}": png.read_bytes()
                                       for caption, png in best.figures.items()}}
    if images:
        body.append("<h2>Figures</h2>")
        for caption, png in images.items():
            data = base64.b64encode(png).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption, quote=True)}">'
                        f"<figcaption>{esc(caption)}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>hpstudy report</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")
