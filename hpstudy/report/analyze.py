"""`hpstudy analyze`: the report's analysis of any tool's trials table, not only of a results folder.

Tables go through `analysis.effects.effects`, the report's own analysis, so a results folder's trials.csv and
repeats.csv give exactly its report's effects. Read only, no Keras. Every problem with a table is one TableError
line naming the file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd

from hpstudy.analysis import effects as effects_module
from hpstudy.errors import HpstudyError
from hpstudy.report import answer as answer_module, pages
from hpstudy.report.tables import Report, StudyReport
from hpstudy.results.status import TrialStatus
from hpstudy.results.trials import LAST_METRICS, METRICS
from hpstudy.study.objective import DIRECTIONS
from hpstudy.text import exception_line

FORMATS = ("markdown", "json", "html")
PREFIX = "params_"                                   # Optuna's trials_dataframe(): params_<name>
COMPLETED = {TrialStatus.COMPLETED, "COMPLETE"}     # hpstudy's and keras-tuner's; Optuna's
# Columns that are never hyperparameters: hpstudy's trials.csv bookkeeping and metrics, Optuna's.
NOT_SEARCHED = {"trial_id", "status", "trained", "state", "number", "score", "value", "best_epoch", "epochs_run",
                "test_loss", "test_accuracy", "seconds", "params", "trainable_params", "flops", "message",
                "pruned_at_epoch", "pruned_reason", "study", "datetime_start", "datetime_complete", "duration",
                *METRICS, *LAST_METRICS}
NOT_SEARCHED_PREFIXES = ("user_attrs_", "system_attrs_", "values_")
MIN_ROWS = 2                                         # one trial compares nothing


class TableError(HpstudyError):
    """A trials or repeats table cannot be analysed: the message names the file and what is wrong."""


# ---------------------------------------------------------------- reading
def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV file as a table of text cells (typed later, column by column, by `typed`)."""
    path = Path(path)
    if path.is_dir():
        raise TableError(f"{path}: is a folder, not a CSV table (a results folder's table is {path / 'trials.csv'})")
    if not path.is_file():
        raise TableError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    try:
        table = pd.read_csv(path, dtype=str)
    except UnicodeDecodeError:
        raise TableError(f"{path}: not a CSV table (not UTF-8 text)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise TableError(f"{path}: not a CSV table ({exception_line(err)})") from None
    except OSError as err:
        raise TableError(f"{path}: cannot be read ({exception_line(err)})") from None
    if "\0" in "".join(table.columns.astype(str)):
        raise TableError(f"{path}: not a CSV table (binary content)")
    return typed(table)


def typed(table: pd.DataFrame) -> pd.DataFrame:
    """Text columns as the values they spell: whole numbers as integers ("32"), other numbers as floats ("0.5",
    "1.0"), True/False as booleans, anything else as text; blanks stay missing (an inactive hyperparameter)."""
    out = table.copy()
    for column in out.columns:
        values = out[column]
        known = values.dropna().astype(str).str.strip()
        if known.empty or column in ("trial_id", "number"):
            continue
        if known.str.lower().isin({"true", "false"}).all():
            out[column] = values.map(lambda v: v if pd.isna(v) else str(v).strip().lower() == "true")
            out[column] = out[column].astype(bool) if out[column].notna().all() else out[column]
        elif pd.to_numeric(known, errors="coerce").notna().all():
            numbers = pd.to_numeric(values, errors="coerce")
            whole = known.str.fullmatch(r"[-+]?\d+").all()
            out[column] = numbers.astype("Int64") if whole else numbers.astype(float)
    return out


# ---------------------------------------------------------------- checking
def _columns(table: pd.DataFrame) -> str:
    names = [str(c) for c in table.columns]
    return ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")


def _unprefixed(table: pd.DataFrame) -> pd.DataFrame:
    renames = {c: c[len(PREFIX):] for c in table.columns
               if isinstance(c, str) and c.startswith(PREFIX) and c[len(PREFIX):] not in table.columns}
    return table.rename(columns=renames)


def _status(table: pd.DataFrame) -> pd.Series:
    column = "status" if "status" in table else "state" if "state" in table else None
    if column is None:
        return pd.Series(TrialStatus.COMPLETED.value, index=table.index)
    normal = table[column].astype(str).str.strip().str.upper()
    return normal.where(~normal.isin(COMPLETED), TrialStatus.COMPLETED.value)


def _objective(values: pd.Series, objective: str, source: str) -> pd.Series:
    """The objective as floats; a cell that is not a number is an error (a blank is a trial without a score)."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() & values.notna() & (values.astype(str).str.strip() != "")]
    if len(bad) or pd.api.types.is_bool_dtype(values):
        example = bad.iloc[0] if len(bad) else values.iloc[0]
        raise TableError(f"{source}: column {objective!r} (--objective) is not numeric: {str(example)[:40]!r} in "
                         f"row {(bad.index[0] if len(bad) else 0) + 1}")
    return numbers.astype(float)


def hyperparameters_of(table: pd.DataFrame, objective: str, given=None, *, source: str = "trials table") -> list[str]:
    """The hyperparameter columns: those `given` (each must be a column), else every column that is neither the
    objective nor bookkeeping or a metric (NOT_SEARCHED)."""
    if given:
        given = [n[len(PREFIX):] if n.startswith(PREFIX) and n not in table else n for n in given]
        for name in given:
            if name not in table:
                raise TableError(f"{source}: no column {name!r} (--hyperparameters); columns: {_columns(table)}")
            if name == objective:
                raise TableError(f"{source}: {name!r} is the objective, not a hyperparameter (--hyperparameters)")
        return list(given)
    names = [c for c in table.columns if c != objective and c not in NOT_SEARCHED
             and not str(c).startswith(NOT_SEARCHED_PREFIXES)]
    if not names:
        raise TableError(f"{source}: no hyperparameter columns besides {objective!r}; name them with "
                         "--hyperparameters")
    return names


# A trials table has a column per hyperparameter, the objective's column, optionally `status` (rows other than
# COMPLETED are left out; Optuna's `state` and its COMPLETE count too), `trial_id` (Optuna's `number`) and `trained`
# (true/false: whether the run learnt at all; runs that did not are reported apart, see analysis.training); Optuna's
# `params_` prefix is taken off.
def prepare(trials: pd.DataFrame, objective: str, hyperparameters=None, *,
            source: str = "trials table") -> tuple[pd.DataFrame, list[str]]:
    """(the completed trials with a finite objective, as effects() reads them: trial_id, status, score; the
    hyperparameters' names)."""
    table = _unprefixed(trials)
    if objective not in table:
        raise TableError(f"{source}: no column {objective!r} (--objective); columns: {_columns(table)}")
    names = hyperparameters_of(table, objective, hyperparameters, source=source)
    score = _objective(table[objective], objective, source)
    ids = table["trial_id"] if "trial_id" in table else table["number"] if "number" in table else table.index
    table = table.assign(trial_id=pd.Series(ids, index=table.index).astype(str), status=_status(table), score=score)
    done = table[(table["status"] == TrialStatus.COMPLETED) & score.map(math.isfinite)].reset_index(drop=True)
    if not len(done):
        raise TableError(f"{source}: no completed trial has a finite {objective!r} ({len(table)} rows)")
    if len(done) < MIN_ROWS:
        raise TableError(f"{source}: only {len(done)} completed trial with a finite {objective!r}; at least "
                         f"{MIN_ROWS} are needed to compare anything")
    return done, names


# A repeats table has rows of trial_id, seed and the objective (or `score`), and optionally `status` and `trained`:
# the seed repeats the noise floor comes from.
def prepare_repeats(repeats: pd.DataFrame, objective: str, *, source: str = "repeats table") -> pd.DataFrame:
    """The seed repeats as effects() reads them (results.read_repeats' columns): trial_id, seed, status, score,
    test_accuracy and, where given, trained; the objective is its own column, else `score`."""
    column = objective if objective in repeats else "score"
    for needed in ("trial_id", "seed", column):
        if needed not in repeats:
            raise TableError(f"{source}: no column {needed!r} (a repeats table has rows of trial_id, seed and "
                             f"{objective}); columns: {_columns(repeats)}")
    out = pd.DataFrame({"trial_id": repeats["trial_id"].astype(str), "seed": repeats["seed"],
                        "status": _status(repeats), "score": _objective(repeats[column], column, source),
                        "test_accuracy": pd.to_numeric(repeats.get("test_accuracy"), errors="coerce")
                        if "test_accuracy" in repeats else float("nan")})
    return out.assign(trained=repeats["trained"]) if "trained" in repeats else out


def _names(values, what: str, names: list[str], source: str) -> list[str]:
    values = [v[len(PREFIX):] if v.startswith(PREFIX) and v not in names else v for v in values]
    for name in values:
        if name not in names:
            raise TableError(f"{source}: {what} {name!r} is not one of the hyperparameters ({', '.join(names)})")
    return list(values)


def _check_log(done: pd.DataFrame, log: list[str], source: str) -> None:
    for name in log:
        numbers = pd.to_numeric(done[name], errors="coerce")
        if not ((numbers > 0) | done[name].isna()).all():
            raise TableError(f"{source}: --log {name}: its values must be positive numbers (a log scale)")


# ---------------------------------------------------------------- analysing
@dataclass
class _TableStudy:
    """What the report's answer reads of a study (`answer.answer_of`), for a table that has no study file."""

    names: list[str]
    question: list[str] = field(default_factory=list)

    def tunables(self) -> list:
        """The searched hyperparameters, as objects with a `name`."""
        return [_Named(name) for name in self.names]


@dataclass(frozen=True)
class _Named:
    name: str


@dataclass
class _TableAnswer(answer_module.Answer):
    """The report's answer, for a table: no best model was evaluated here, so no test accuracy is pending."""

    def test_line(self) -> str:
        """The best trial's test accuracy where the table has one."""
        if self.test_accuracy is None:
            return "Test accuracy: not in the trials table (the answer rests on the objective alone)."
        return super().test_line()


@dataclass
class Analysis:
    """The report's analysis of one trials table: `effects` are the JSON report's effect records, `answer` the
    answer the report opens with; `render(format)` gives the whole report (markdown, json, html), and printing
    it (str) gives the answer's lines."""

    report: Report

    @property
    def study(self) -> StudyReport:
        """The one study of the report."""
        return self.report.studies[0]

    @property
    def effects(self) -> list[dict]:
        """Every contrast as `hpstudy report --format json` writes it under `effects`."""
        return [contrast.as_record() for contrast in self.study.effects.contrasts()]

    @property
    def answer(self) -> answer_module.Answer:
        """The answer: the question, the best configuration and the findings."""
        if self.study.answer is None:          # `analyze` gives every table's study its answer
            raise ValueError("this analysis has no answer")
        return self.study.answer

    def render(self, format: str = "markdown") -> str:
        """The report as text in `format` (one of FORMATS)."""
        if format not in FORMATS:
            raise TableError(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
        return pages.render(self.report, format)

    def __str__(self) -> str:
        return "\n".join(self.answer.lines()) + "\n"

    def _repr_markdown_(self) -> str:
        return answer_module.markdown(self.answer)


def _best(done: pd.DataFrame, names: list[str], minimize: bool) -> dict:
    """The best trial as best.json has it (its test accuracy where the table has one)."""
    row = done.loc[done["score"].idxmin() if minimize else done["score"].idxmax()]
    test = pd.to_numeric(pd.Series([row.get("test_accuracy")]), errors="coerce").iloc[0]
    return {"trial_id": row["trial_id"], "score": float(row["score"]),
            "hyperparameters": {n: row[n] for n in names if not pd.isna(row[n])},
            "test_accuracy": float(test) if math.isfinite(test) else None}


def analyze(trials: pd.DataFrame, objective: str, *, direction: str | None = None, hyperparameters=None, log=(),
            question=(), repeats: pd.DataFrame | None = None, name: str = "trials",
            source: str = "trials table", repeats_source: str = "repeats table") -> Analysis:
    """The report's analysis of `trials` (its columns: see `prepare`) with `objective` its column.

    `direction`: "max" or "min" (default: the objective's `study.objective.default_direction`, as in a study);
    `hyperparameters`: the columns to analyse (default: every column that is not the objective, bookkeeping or a
    metric); `log`: those searched on a log scale (fitted on log10); `question`: the scientific ones, compared
    at their best setting of the others; `repeats`: seed repeats (trial_id, seed, objective) for the noise floor.
    `name` titles the answer; `source` and `repeats_source` name the tables in errors."""
    if direction is not None and direction not in DIRECTIONS:
        raise TableError(f"--direction: 'max' or 'min', not {direction!r}")
    done, names = prepare(trials, objective, hyperparameters, source=source)
    log, question = _names(log, "--log", names, source), _names(question, "--question", names, source)
    _check_log(done, log, source)
    seeds = prepare_repeats(repeats, objective, source=repeats_source) if repeats is not None else None
    fx = effects_module.effects(done, names, objective, ranges={n: "log" for n in log}, question=question,
                                repeats=seeds, minimize=(direction == "min") if direction else None)
    answer = answer_module.answer_of(name, _TableStudy(names, question), _best(done, names, fx.minimize), done, fx)
    answer = _TableAnswer(**{f.name: getattr(answer, f.name) for f in fields(answer)})
    return Analysis(Report(_unprefixed(trials), [StudyReport(name, source, objective, fx, answer, done)]))


def analyze_files(trials: str | Path, objective: str, *, repeats: str | Path | None = None, **options) -> Analysis:
    """`analyze` of a trials CSV file (and a repeats CSV file): what `hpstudy analyze` runs."""
    table = read_table(trials)
    seeds = read_table(repeats) if repeats is not None else None
    return analyze(table, objective, repeats=seeds, name=Path(trials).stem, source=str(trials),
                   repeats_source=str(repeats), **options)
