"""The content of a report, whatever its format: the trials of one or more studies (sorted, cut), each study's
effects, seed repeats and question, and the best models' sections. No Keras (but `evaluate_best`, lazily).

The report reads the trial files (not trials.csv), so a study still running can be reported at any time:
a trial file being written is skipped, a RUNNING trial shows with blanks and is left out of the effects.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hpstudy.analysis import adjusted, effects as effects_module, interactions, verdicts
from hpstudy.errors import HpstudyError, ResultsError
from hpstudy.lazy import import_quietly
from hpstudy.report import answer as answer_module
from hpstudy.results import folder, outputs
from hpstudy.results.layout import Layout
from hpstudy.results.status import TrialStatus
from hpstudy.results.trials import read_best, read_repeats, read_trials
from hpstudy.study.objective import default_direction
from hpstudy.study.spec import StudySpec
from hpstudy.study.yamlfile import opening_comment


@dataclass
class Figure:
    """One figure of a report: its caption, its PNG and, once written next to a markdown report, its file."""

    caption: str
    png: bytes
    file: Path | None = None


@dataclass
class StudyReport:
    """One study of a report: its name, folder, objective, effects and the answer the report opens with; every
    trial (with `gap`), where each searched hyperparameter was sampled (name -> "log", "linear" or "choice") and
    the figures, for the plots."""

    name: str
    path: str
    objective: str
    effects: effects_module.Effects
    answer: answer_module.Answer | None = None
    table: pd.DataFrame | None = None
    layout: Layout | None = None
    scales: dict[str, str] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)


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
    folder: Path | None = None      # where the report is written: figure files are linked relative to it


# ---------------------------------------------------------------- reading
def read_study(path, *, attempts: int = 3) -> tuple[Layout, StudySpec, pd.DataFrame]:
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
    """The table with `gap` (accuracy - val_accuracy, at the best epoch) right after val_accuracy, and
    `last_gap` (the same at the last epoch run) right after last_val_accuracy."""
    table = table.copy()
    table.insert(table.columns.get_loc("val_accuracy") + 1, "gap", effects_module.gap(table))
    if "last_val_accuracy" in table:
        table.insert(table.columns.get_loc("last_val_accuracy") + 1, "last_gap", effects_module.gap(table, "last_"))
    return table


def sort_trials(table: pd.DataFrame, column: str | None = None, *, minimize: bool = False) -> pd.DataFrame:
    """Sort a trials table. No column: by score, best first, the pruned trials after the completed ones, trials
    that did not complete last. `column`: any column, "COL:asc" or "COL:desc"; by default score goes best first,
    any other column in its metric's `default_direction` (accuracies descend, anything else ascends); blanks
    always last. Unknown columns raise HpstudyError listing the columns."""
    if column is None:
        done = table["status"].map(lambda status: {TrialStatus.COMPLETED: 0, TrialStatus.PRUNED: 1}.get(status, 2))
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
        ascending = default_direction(name) == "min"
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
        tunables = study.tunables()
        found = effects_module.of_study(study, table, read_repeats(layout), importance_cache=layout.importance)
        scales = {t.name: t.sampling if t.kind in ("int", "float") else "choice" for t in tunables}
        studies.append(StudyReport(label, str(path), objective, found, answer_module.answer_of(
            label, study, read_best(layout), table, found, opening_comment(layout.spec)), table.copy(), layout,
            scales))
        if len(paths) > 1:
            table.insert(0, "study", label)
        tables.append((table, study.search.minimize))
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


def columns_worth_showing(table: pd.DataFrame) -> pd.DataFrame:
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


_COUNTS = {"best_epoch", "epochs_run", "params", "trainable_params", "flops", "count", "pruned", "pruned_at_epoch"}


def add_figures(report: Report, folder: Path | None, *, top: int = 3) -> None:
    """Every study's figures (see `plots.figures`) into its StudyReport; with `folder`, each is also written there
    as <folder>/<study folder's name>/<figure>.png, for a markdown report to link."""
    from hpstudy.report import plots  # matplotlib: only for reports that show figures
    names = [Path(study.path).name for study in report.studies]
    for k, study in enumerate(report.studies):
        where = names[k] if names.count(names[k]) == 1 else f"{k + 1}_{names[k]}"    # two folders of one name
        for name, caption, png in plots.named_figures(study, top=top):
            file = None
            if folder is not None:
                file = outputs.write_bytes(Path(folder) / where / f"{name}.png", png, "a figure")
            study.figures.append(Figure(caption, png, file))


def evaluate_best(paths: list, figures: Path, top: int) -> list[BestModel]:
    """The best `top` models of each study, evaluated on the test split, as report sections; their figures are
    written under `figures`. Imports Keras (the only part of a report that does)."""
    evaluate = import_quietly("hpstudy.trained.evaluate")
    sections = []
    for path in paths:
        found = evaluate.evaluate(path, Path(figures) / Path(path).name, top=top)
        for model in found.models:
            pictures = {"confusion matrix": model.confusion_png, "test images, true and predicted": model.samples_png}
            if model.rank == 0 and found.learning_curves_png:
                pictures["learning curves of the best trials"] = found.learning_curves_png
            pruned = "" if model.pruned_at_epoch is None else f", pruned at epoch {model.pruned_at_epoch}"
            sections.append(BestModel(
                f"{Path(path).name}: best model {model.rank + 1} (trial {model.trial_id}{pruned}), test accuracy "
                f"{model.test_accuracy:.4f} with the weights of epoch {model.weights_epoch} (its "
                f"{model.checkpoint_epoch}), per-class precision, recall and F1",
                model.report, {k: v for k, v in pictures.items() if v}))
    return sections


@dataclass
class Section:
    """One part of a study's report: a title, lines of text, and a table (any of them may be empty)."""

    title: str
    lines: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None
    level: int = 3                  # heading level (2: the study's own heading)


def _heading(study: StudyReport) -> str:
    direction = "lower is better" if study.effects.minimize else "higher is better"
    pruned = f"; {study.effects.pruned} pruned, left out" if study.effects.pruned else ""
    return (f"Effects: {study.name} (objective {study.objective}, {direction}; {study.effects.trials} completed "
            f"trials{pruned})")


def effects_table(fx: effects_module.Effects, contrasts=None) -> pd.DataFrame:
    """Every main contrast (or `contrasts`), adjusted for the other hyperparameters: its difference, 95%
    interval, counts, verdict."""
    rows = [{"hyperparameter": c.hyperparameter, "value": verdicts.show(c.value),
             "reference": "" if c.reference is None else verdicts.show(c.reference), "difference": c.difference,
             "ci95 low": c.ci95[0] if c.ci95 else None, "ci95 high": c.ci95[1] if c.ci95 else None, "n": c.n,
             "n reference": c.n_reference, "verdict": c.verdict, "p (Holm)": c.p_family,
             "outcome": c.outcome} for c in (fx.main_contrasts() if contrasts is None else contrasts)]
    return pd.DataFrame(rows, columns=["hyperparameter", "value", "reference", "difference", "ci95 low", "ci95 high",
                                       "n", "n reference", "verdict", "p (Holm)", "outcome"])


def repeats_table(fx: effects_module.Effects) -> pd.DataFrame | None:
    """The confirmed configurations: mean, std and 95% interval over seeds of the objective and test accuracy."""
    if fx.repeats is None or not len(fx.repeats):
        return None
    def interval(ci):
        return f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""
    table = fx.repeats.copy()
    table["score_ci95"] = table["score_ci95"].map(interval)
    table["test_accuracy_ci95"] = table["test_accuracy_ci95"].map(interval)
    return table.rename(columns={"score_mean": f"{fx.objective} mean", "score_std": f"{fx.objective} std",
                                 "score_ci95": f"{fx.objective} 95% interval", "n": "seeds",
                                 "test_accuracy_mean": "test_accuracy mean", "test_accuracy_std": "test_accuracy std",
                                 "test_accuracy_ci95": "test_accuracy 95% interval"})


def raw_means_table(effect: effects_module.Effect) -> pd.DataFrame:
    """The objective per value of one hyperparameter (descriptive: raw means, not adjusted)."""
    table = effect.table.copy()
    table["value"] = table["value"].map(verdicts.show)
    return table.rename(columns={"value": effect.name})


INTERACTIONS = ("Each question hyperparameter's effect within each value of another (\"A | B=b\": adjusted for "
                "the other hyperparameters on the trials with that value), and the interaction itself (\"A * B\": "
                "how much A's effect with that value of B differs from its effect with B's reference; the product "
                "column's coefficient in the adjusted model). Extra looks at the question: a Holm family of their "
                f"own, held at {interactions.SHARE * 5:g}% (the main effects' families at 5%).")


BUDGET = ("The expected best score of n trials of each value (Dodge et al. 2019, with Tang et al. 2020's unbiased "
          "estimator: the mean best over every n of the value's trials), so that values are compared at equal "
          "budgets; a 95% percentile bootstrap band over the value's trials. Every completed run counts, those "
          "that did not train too. The whole curves are in the JSON report (`budget`) and the figure.")


def budget_table(curves: pd.DataFrame, name: str) -> pd.DataFrame:
    """Per value of a question hyperparameter: its trials, its expected best of 1 trial (the mean), and of as
    many trials as the value with the fewest has (its equal budget), with that budget's 95% band."""
    common = int(curves.groupby("value")["of"].first().min())
    rows = []
    for value, group in curves.groupby("value", sort=False):
        first, equal = group[group.trials == 1].iloc[0], group[group.trials == common].iloc[0]
        rows.append({name: value, "trials": int(first["of"]), "expected best of 1": first["expected"],
                     f"expected best of {common}": equal["expected"],
                     f"95% band at {common}": f"[{equal['low']:.4f}, {equal['high']:.4f}]"})
    return pd.DataFrame(rows)


def sections(study: StudyReport) -> list[Section]:
    """What the report says of one study, in order, for every format to render alike."""
    fx = study.effects
    out = [Section(_heading(study), level=2),
           Section("Summary", [*fx.sentences(), fx.noise_note] if fx.effects else ["(no tuned hyperparameters)"]),
           Section("Effects, adjusted for the other hyperparameters",
                   [f"{adjusted.METHOD} Differences are in {fx.objective} (rows with outcome 'did not train': in the "
                    "share of runs that did not train). effect: the interval excludes zero after Holm's control "
                    "over the study's contrasts; negligible: the whole interval lies within +- the smallest effect "
                    "that matters (the study's smallest_effect, else the noise floor); undetermined: neither (more "
                    "trials needed); too few trials: no interval."],
                   effects_table(fx))]
    if (repeats := repeats_table(fx)) is not None:
        beats = [f"{fx.beats.text()} (Bouthillier et al. 2021: the Mann-Whitney estimate over every pair of their "
                 "repeats that trained, a tie counting half; percentile bootstrap interval)."] if fx.beats else []
        out.append(Section("Seed repeats of the best configurations", [fx.noise_note, *beats], repeats))
    if fx.interactions:
        out.append(Section("Interactions among the question's hyperparameters",
                           [INTERACTIONS, *(d.sentence for d in fx.dependences)],
                           effects_table(fx, fx.interactions)))
    for name, table in fx.question.items():
        out.append(Section(f"The question: {name}, each value at its best setting of the other hyperparameters",
                           ["The best trial per value (the Tuning Playbook's isolation view); its seed repeats' "
                            "interval where it was confirmed."], table))
    for name, (curves, sentence) in fx.budget.items():
        out.append(Section(f"The question at equal budgets: {name}", [BUDGET, sentence + "."],
                           budget_table(curves, name)))
    out.append(Section("Importance", [fx.importance_note], fx.importance))
    for effect in fx.effects:
        note = ([f"Spearman rank correlation with {study.objective}: {effect.spearman:+.3f}"]
                if effect.spearman is not None else [])
        out.append(Section(f"{effect.name} (raw means per value)", note, raw_means_table(effect)))
    return out
