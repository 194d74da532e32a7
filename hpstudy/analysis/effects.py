"""What each hyperparameter did to the objective: its effect adjusted for the others with a 95% interval and a
verdict (`adjusted`, `verdicts`), per-value tables, an importance ranking (analysis.importance), the noise floor
from seed repeats, and the scientific hyperparameters at their best nuisance settings. Pure
pandas/numpy/scikit-learn/statsmodels (no Keras).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy.analysis import (
    adjusted,
    budget as budget_module,
    interactions,
    repeats as repeats_module,
    statistics,
    training as training_module,
    verdicts,
)
from hpstudy.analysis.adjusted import INACTIVE, Contrast, is_numeric
from hpstudy.analysis.importance import importance, importance_note
from hpstudy.results.status import TrialStatus
from hpstudy.results.trials import TRAINED_MARGIN, trained
from hpstudy.study.objective import default_direction


@dataclass
class Effect:
    """One hyperparameter: its adjusted contrasts and verdict, the objective per value, its rank correlation
    (numbers only) and its line in words."""

    name: str
    numeric: bool
    table: pd.DataFrame            # value, count, mean, best[, gap, last_gap]: one row per value, in value order
    spearman: float | None         # Spearman rank correlation of value and score (numeric, >= 2 values)
    contrasts: list[Contrast]      # adjusted for the other hyperparameters, each with its interval and verdict
    sentence: str
    training: training_module.Training | None = None   # its runs that did not train, where some did not

    @property
    def outcomes(self) -> list[Contrast]:
        """Its score contrasts, then those of the share of runs that did not train."""
        return [*self.contrasts, *(self.training.contrasts if self.training else [])]

    @property
    def verdict(self) -> str:
        """`effect` when any of its score or training contrasts is one (a hyperparameter that keeps runs from
        training changes the result even where too few of its runs trained to compare their scores), else its
        score contrasts' word (see verdicts.verdict_of): a share of failed runs is never shown negligible, so it
        must not keep a negligible score difference from being said."""
        if self.training and verdicts.verdict_of(self.training.contrasts) == statistics.EFFECT:
            return statistics.EFFECT
        return verdicts.verdict_of(self.contrasts)


@dataclass
class Effects:
    """The effects of every tuned hyperparameter of one study."""

    objective: str
    minimize: bool
    trials: int                                   # completed trials with a finite score
    untrained: int = 0                            # of those, the runs that did not train (left out of the effects)
    training: list = field(default_factory=list)  # training.Training per hyperparameter ([]: every run trained)
    pruned: int = 0                               # pruned trials, left out of every estimate (see `pruned_trials`)
    effects: list[Effect] = field(default_factory=list)
    importance: pd.DataFrame | None = None        # importance.IMPORTANCE_COLUMNS, most important first
    importance_note: str = ""                     # the method, or why there is no ranking
    noise_floor: float | None = None              # pooled seed-to-seed std of the objective (seed repeats)
    noise_note: str = ""
    smallest_effect: float | None = None          # below it a difference is negligible: declared, else the floor
    repeats: pd.DataFrame | None = None           # per confirmed configuration: its seed repeats' intervals
    repeat_records: pd.DataFrame | None = None    # every seed repeat (results.read_repeats)
    question: dict[str, pd.DataFrame] = field(default_factory=dict)   # scientific hyperparameter -> isolation
    beats: repeats_module.Beats | None = None     # P(best confirmed beats the runner-up in a new run)
    interactions: list[Contrast] = field(default_factory=list)        # the question's, see analysis.interactions
    dependences: list = field(default_factory=list)                   # interactions.Dependence per interaction
    budget: dict = field(default_factory=dict)    # scientific hyperparameter -> (curves, sentence): analysis.budget

    def main_contrasts(self) -> list[Contrast]:
        """Every hyperparameter's contrasts in order, score ones before those of the runs that did not train."""
        return [c for e in self.effects for c in e.outcomes]

    def contrasts(self) -> list[Contrast]:
        """`main_contrasts`, then the question's "A | B=b" and "A * B" ones (see analysis.interactions)."""
        return [*self.main_contrasts(), *self.interactions]

    def sentences(self) -> list[str]:
        """One plain-language line per hyperparameter, each with its verdict (see `verdicts.line`)."""
        return [e.sentence for e in self.effects]


def _with_status(trials: pd.DataFrame, status: str) -> pd.DataFrame:
    """The trials of one status with a finite score (score as float), in the table's order."""
    score = pd.to_numeric(trials["score"], errors="coerce").astype(float)
    keep = (trials["status"] == status) & np.isfinite(score)
    table = trials[keep].copy()
    table["score"] = score[keep]
    return table.reset_index(drop=True)


# Everything is computed over the COMPLETED trials whose score is finite; running, failed and invalid trials are
# left out. Trials where a conditional hyperparameter was inactive form their own group, shown as "(inactive)".
def completed(trials: pd.DataFrame) -> pd.DataFrame:
    """The COMPLETED trials with a finite score (score as float)."""
    return _with_status(trials, TrialStatus.COMPLETED)


# PRUNED trials (stopped by search.pruning) are left out of every estimate and counted apart: a pruned trial's
# score is the best epoch of a curve cut short because it was falling behind, a lower bound (for an accuracy) of
# what it would have reached, and that censoring is not random, so no interval computed with it would mean what
# it says. Each per-value table counts them (`pruned`), and each hyperparameter's line names where they were.
def pruned_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The PRUNED trials with a finite score (score as float), in the table's order."""
    return _with_status(trials, TrialStatus.PRUNED)


def _pruned_counts(stopped: pd.DataFrame, name: str) -> pd.Series:
    """How many pruned trials had each value of `name` (inactive ones under INACTIVE)."""
    return adjusted.labelled(stopped[name]).value_counts(sort=False)


def with_pruned(table: pd.DataFrame, stopped: pd.DataFrame, name: str) -> pd.DataFrame:
    """A value table (see `value_table`) with a `pruned` column: how many pruned trials had each value (a value
    only pruned trials had gets a row of its own, with a count of 0)."""
    return _with_counts(table, _pruned_counts(stopped, name), "pruned")


def with_untrained(table: pd.DataFrame, failed) -> pd.DataFrame:
    """A value table (over the runs that trained) with a `did not train` column where some runs did not (`failed`:
    the hyperparameter's training.Training); a value none of whose runs trained gets a row with a count of 0."""
    return table if failed is None else _with_counts(table, failed.table.set_index("value")["did not train"],
                                                     "did not train")


def _with_counts(table: pd.DataFrame, counts: pd.Series, column: str) -> pd.DataFrame:
    extra = [v for v in counts.index if v not in set(table["value"])]
    table = pd.concat([table, pd.DataFrame({"value": extra, "count": 0})], ignore_index=True) if extra else table
    table[column] = table["value"].map(lambda v: int(counts.get(v, 0)))
    order = sorted(range(len(table)), key=lambda i: _value_key(table["value"].iloc[i]))
    return table.iloc[order].reset_index(drop=True)


def pruned_note(stopped: pd.DataFrame, name: str) -> str:
    """Where a hyperparameter's pruned trials were, in words ("" without any)."""
    if not len(stopped):
        return ""
    counts = _pruned_counts(stopped, name)
    ordered = sorted(counts.items(), key=lambda item: _value_key(item[0]))
    where = ", ".join(f"{verdicts.show(value)}: {int(n)}" for value, n in ordered)
    return f" (pruned trials, left out of the estimate: {where})"


def gap(trials: pd.DataFrame, prefix: str = "") -> pd.Series:
    """The generalization gap of each trial: accuracy - val_accuracy at the best epoch (`prefix` "last_": at
    the last epoch run); NaN where either is missing."""
    if f"{prefix}accuracy" not in trials:
        return pd.Series(np.nan, index=trials.index)
    train = pd.to_numeric(trials[f"{prefix}accuracy"], errors="coerce").astype(float)
    val = pd.to_numeric(trials[f"{prefix}val_accuracy"], errors="coerce").astype(float)
    return train - val


def value_table(trials: pd.DataFrame, name: str, *, minimize: bool) -> pd.DataFrame:
    """The objective per value of hyperparameter `name` over `trials` (already completed()):
    value, count, mean, best, and the generalization gaps (mean train - validation accuracy) at the best epoch
    (`gap`) and the last (`last_gap`) when the accuracies are known."""
    frame = pd.DataFrame({"value": adjusted.labelled(trials[name]),
                          "score": trials["score"].astype(float),
                          "gap": gap(trials), "last_gap": gap(trials, "last_")})
    grouped = frame.groupby("value", sort=False)
    table = pd.DataFrame({"count": grouped["score"].size(),
                          "mean": grouped["score"].mean(),
                          "best": grouped["score"].min() if minimize else grouped["score"].max()})
    for column in ("gap", "last_gap"):
        if frame[column].notna().any():
            table[column] = grouped[column].mean()
    table = table.reset_index()
    order = sorted(range(len(table)), key=lambda i: _value_key(table["value"].iloc[i]))
    return table.iloc[order].reset_index(drop=True)


def value_key(value):
    """The order of a hyperparameter's values in reports and plots: numbers ascending, then text, then inactive."""
    if value == INACTIVE:
        return (2, 0, "")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return (0, float(value), "")
    return (1, 0, str(value))


_value_key = value_key


def spearman(trials: pd.DataFrame, name: str) -> float | None:
    """Spearman rank correlation of a numeric hyperparameter with the score, over the trials where it was
    active (None with fewer than 2 distinct values or 3 trials, or when the score does not vary)."""
    frame = pd.DataFrame({"value": pd.to_numeric(trials[name], errors="coerce").astype(float),
                          "score": trials["score"].astype(float)}).dropna()
    if len(frame) < 3 or frame["value"].nunique() < 2 or frame["score"].nunique() < 2:
        return None
    rho = frame.corr(method="spearman").loc["value", "score"]
    return None if not math.isfinite(rho) else float(rho)


def study_importance(study, trials: pd.DataFrame, *, cache: Path | None = None,
                     save: bool = False) -> pd.DataFrame | None:
    """The importance ranking `of_study` gives `study`'s trials table: over its completed runs that trained (see
    `importance` for `cache` and `save`)."""
    return importance(trained_runs(completed(trials)), [t.name for t in study.tunables()], cache=cache, save=save)


def trained_runs(done: pd.DataFrame) -> pd.DataFrame:
    """The runs of `done` (completed trials) that trained: those the score effects and the importance are of."""
    return done[training_module.trained_mask(done)].reset_index(drop=True)


def of_study(study, trials: pd.DataFrame, repeats: pd.DataFrame | None = None, *,
             importance_cache: Path | None = None, with_importance: bool = True) -> Effects:
    """`effects` of every hyperparameter `study` (a StudySpec) searches, over its trials table, as its report
    computes them: ranges fitted on their sampling scale, its question compared at its best nuisance settings."""
    tunables = study.tunables()
    return effects(trials, [t.name for t in tunables], study.search.objective, question=study.question,
                   ranges={t.name: t.sampling for t in tunables if t.kind in ("int", "float")}, repeats=repeats,
                   importance_cache=importance_cache, with_importance=with_importance,
                   smallest_effect=study.smallest_effect, minimize=study.search.minimize)


def effects(trials: pd.DataFrame, names: list[str], objective: str, *, ranges: dict | None = None, question=(),
            repeats: pd.DataFrame | None = None, importance_cache: Path | None = None,
            with_importance: bool = True, classes: int | None = None,
            smallest_effect: float | None = None, minimize: bool | None = None) -> Effects:
    """The effects of hyperparameters `names` on the score in the trials table `trials` (results.read_trials).

    `ranges`: the hyperparameters searched over a range (name -> its sampling), fitted on their sampling scale
    and compared between their trials' quartiles (see analysis.adjusted); numbers with more than
    adjusted.MAX_LEVELS values are too; `question`: the scientific ones, compared at their best nuisance settings;
    `repeats`: the seed repeats (results.read_repeats), which give the noise floor; `importance_cache`: see
    `importance`; `with_importance=False` leaves the ranking out (its forests are most of the time taken, and
    verdicts do not use it); `classes`: the dataset's class count, which decides the `trained` column
    (results.trials.trained) where a table has none; `smallest_effect`: the smallest difference that matters
    (default: the noise floor, where measured), below which a difference whose whole interval lies is `negligible`;
    `minimize`: whether lower scores are better (default: the objective's `default_direction`).

    Runs that did not train (`trained` False) are left out of the score effects, the value tables and the
    importance, and reported per value apart (`training`, see analysis.training)."""
    minimize = default_direction(objective) == "min" if minimize is None else minimize
    trials, repeats = (_with_trained(trials, classes),
                       _with_trained(repeats, classes) if repeats is not None and len(repeats) else None)
    everything, stopped = completed(trials), pruned_trials(trials)
    done, learnt = trained_runs(everything), training_module.trained_mask(everything)
    result = Effects(objective=objective, minimize=minimize, trials=len(everything), pruned=len(stopped),
                     untrained=int((~learnt).sum()), beats=repeats_module.beats(repeats, minimize))
    floor, dof = repeats_module.noise_floor(repeats) if repeats is not None else (None, 0)
    summaries = repeats_module.summaries(repeats) if repeats is not None else None
    result.noise_floor, result.repeats, result.repeat_records = floor, summaries, repeats
    result.noise_note = verdicts.noise_note(floor, dof, len(summaries) if summaries is not None else 0, objective,
                                            smallest_effect)
    ranges = ranges or {}
    searched = {name: (name in ranges or (is_numeric(everything[name]) and
                                          everything[name].nunique() > adjusted.MAX_LEVELS),
                       ranges.get(name) == "log") for name in names}
    ranged = {name for name, (is_range, _) in searched.items() if is_range}
    result.training = training_module.training(everything, names, order_key=_value_key, margin=TRAINED_MARGIN,
                                               ranged=ranged)
    smallest = result.smallest_effect = smallest_effect if smallest_effect is not None else floor
    found = adjusted.contrasts(done, searched, smallest=smallest, order_key=_value_key, question=question,
                               minimize=minimize) if len(done) else []
    failed = {t.name: t for t in result.training}
    for name in names:
        trained_values = value_table(done, name, minimize=minimize)
        table = with_untrained(trained_values, failed.get(name))
        numeric = is_numeric(everything[name])
        mine = [c for c in found if c.hyperparameter == name]
        only = trained_values["value"].iloc[0] if len(trained_values) == 1 else None
        sentence = verdicts.line(name, mine, objective, only=only) + pruned_note(stopped, name)
        if name in failed:
            sentence += "; " + failed[name].sentence.split(": ", 1)[1]
        result.effects.append(Effect(name, numeric, with_pruned(table, stopped, name) if len(stopped) else table,
                                     spearman(done, name) if numeric else None, mine, sentence, failed.get(name)))
    result.question = {name: verdicts.isolation(done, name, minimize=minimize, summaries=summaries,
                                                order_key=_value_key) for name in question if len(done)}
    result.budget = budget_module.of_question(everything, question, minimize=minimize, ranged=ranged)
    result.interactions, result.dependences = interactions.interactions(done, searched, question,
                                                                        smallest=smallest, order_key=_value_key)
    result.importance = importance(done, names, cache=importance_cache) if with_importance else None
    result.importance_note = importance_note(result.importance, with_importance, names, len(done))
    return result


def _with_trained(table: pd.DataFrame, classes: int | None) -> pd.DataFrame:
    """`table` with the `trained` column decided from `classes` (results.trials.trained) where it has none."""
    return table.assign(trained=trained(table, classes)) if classes is not None and "trained" not in table else table
