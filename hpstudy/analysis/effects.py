"""What each hyperparameter did to the objective: its effect adjusted for the others with a 95% interval and a
verdict (`adjusted`, `verdicts`), per-value tables, an importance ranking, the noise floor from seed repeats,
and the scientific hyperparameters at their best nuisance settings.

Pure pandas/numpy/scikit-learn/statsmodels (no Keras). Everything is computed over the COMPLETED trials whose
score is finite; running, failed and invalid trials are left out. Trials where a conditional hyperparameter was
inactive form their own group, shown as "(inactive)".

PRUNED trials (stopped by search.pruning) are left out of every estimate and counted apart: a pruned trial's
score is the best epoch of a curve cut short because it was falling behind, a lower bound (for an accuracy) of
what it would have reached, and that censoring is not random, so no interval computed with it would mean what
it says. Each per-value table counts them (`pruned`), and each hyperparameter's line names where they were.

Importance is *grouped permutation importance* of a random forest: a
`sklearn.ensemble.RandomForestRegressor` (200 trees, random_state=0) is fitted to predict the score from the
hyperparameters (numbers as they are, other values one-hot encoded; inactive values get their own code), then
each hyperparameter's columns are shuffled together (30 repeats, fixed seed) and the mean increase of the
forest's squared error on the trials is that hyperparameter's importance; `share` is its fraction of the total.
Its 95% interval (`ci95 low`, `ci95 high`) is a bootstrap over trials: BOOTSTRAP_ROUNDS resamples of the trials
(with replacement), each fitted by a smaller forest (50 trees) and shuffled 5 times, their 2.5th and 97.5th
percentiles. With fewer than MIN_TRIALS completed trials no ranking is given ("too few trials").
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy.analysis import adjusted, repeats as repeats_module, verdicts
from hpstudy.analysis.adjusted import INACTIVE, Contrast
from hpstudy.results.files import read_json, write_json
from hpstudy.results.trials import is_minimized

MIN_TRIALS = 4              # below this, an importance ranking would be noise
BOOTSTRAP_ROUNDS = 20       # resamples of the trials behind the importance's interval (about 0.1 s each)
IMPORTANCE_METHOD = ("grouped permutation importance of a random forest (RandomForestRegressor, 200 trees, "
                     "random_state=0; 30 shuffles per hyperparameter; mean increase in squared error); 95% "
                     f"interval: bootstrap over trials ({BOOTSTRAP_ROUNDS} resamples, 50 trees, 5 shuffles each)")
IMPORTANCE_COLUMNS = ["hyperparameter", "importance", "std", "ci95 low", "ci95 high", "share"]


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

    @property
    def verdict(self) -> str:
        """effect, within noise, or too few trials (see verdicts.verdict_of)."""
        return verdicts.verdict_of(self.contrasts)


@dataclass
class Effects:
    """The effects of every tuned hyperparameter of one study."""

    objective: str
    minimize: bool
    trials: int                                   # completed trials with a finite score
    pruned: int = 0                               # pruned trials, left out of every estimate (see the module's doc)
    effects: list[Effect] = field(default_factory=list)
    importance: pd.DataFrame | None = None        # IMPORTANCE_COLUMNS, most important first
    importance_note: str = ""                     # the method, or why there is no ranking
    noise_floor: float | None = None              # pooled seed-to-seed std of the objective (seed repeats)
    noise_note: str = ""
    repeats: pd.DataFrame | None = None           # per confirmed configuration: its seed repeats' intervals
    repeat_records: pd.DataFrame | None = None    # every seed repeat (results.read_repeats)
    question: dict[str, pd.DataFrame] = field(default_factory=dict)   # scientific hyperparameter -> isolation

    def contrasts(self) -> list[Contrast]:
        """Every hyperparameter's contrasts, in order."""
        return [c for e in self.effects for c in e.contrasts]

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


def completed(trials: pd.DataFrame) -> pd.DataFrame:
    """The COMPLETED trials with a finite score (score as float)."""
    return _with_status(trials, "COMPLETED")


def pruned_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The PRUNED trials with a finite score (score as float), in the table's order."""
    return _with_status(trials, "PRUNED")


def _pruned_counts(stopped: pd.DataFrame, name: str) -> pd.Series:
    """How many pruned trials had each value of `name` (inactive ones under INACTIVE)."""
    return adjusted.labelled(stopped[name]).value_counts(sort=False)


def with_pruned(table: pd.DataFrame, stopped: pd.DataFrame, name: str) -> pd.DataFrame:
    """A value table (see value_table) with a `pruned` column: how many pruned trials had each value (a value
    only pruned trials had gets a row of its own, with a count of 0)."""
    counts = _pruned_counts(stopped, name)
    extra = [v for v in counts.index if v not in set(table["value"])]
    table = pd.concat([table, pd.DataFrame({"value": extra, "count": 0})], ignore_index=True) if extra else table
    table["pruned"] = table["value"].map(lambda v: int(counts.get(v, 0)))
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


def is_numeric(values: pd.Series) -> bool:
    """Whether a hyperparameter's known values are all numbers (booleans and strings are not)."""
    known = values.dropna()
    if known.empty or pd.api.types.is_bool_dtype(known):
        return False
    if pd.api.types.is_numeric_dtype(known):
        return True
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in known)


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
    return _value_key(value)


def _value_key(value):
    if value == INACTIVE:
        return (2, 0, "")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return (0, float(value), "")
    return (1, 0, str(value))


def spearman(trials: pd.DataFrame, name: str) -> float | None:
    """Spearman rank correlation of a numeric hyperparameter with the score, over the trials where it was
    active (None with fewer than 2 distinct values or 3 trials, or when the score does not vary)."""
    frame = pd.DataFrame({"value": pd.to_numeric(trials[name], errors="coerce").astype(float),
                          "score": trials["score"].astype(float)}).dropna()
    if len(frame) < 3 or frame["value"].nunique() < 2 or frame["score"].nunique() < 2:
        return None
    rho = frame.corr(method="spearman").loc["value", "score"]
    return None if not math.isfinite(rho) else float(rho)


def importance(trials: pd.DataFrame, names: list[str], *, random_state: int = 0, repeats: int = 30,
               cache: Path | None = None) -> pd.DataFrame | None:
    """Grouped permutation importance of a random forest (see the module's doc) over `trials` (already
    completed()); None with fewer than MIN_TRIALS trials or no hyperparameters.

    With `cache` (a JSON file), a ranking computed from the same trials is read back instead: `hpstudy run`
    leaves one for its report, which then needs neither scikit-learn's import nor the forest (about a second).
    """
    if len(trials) < MIN_TRIALS or not names:
        return None
    key = hashlib.sha256(json.dumps([IMPORTANCE_METHOD, names, random_state, repeats,
                                     trials[[*names, "score"]].to_csv(index=False)]).encode()).hexdigest()
    saved = read_json(cache) if cache is not None else None
    if isinstance(saved, dict) and saved.get("key") == key and isinstance(saved.get("table"), list) \
            and all(isinstance(row, dict) for row in saved["table"]):     # else a damaged cache: computed again
        return pd.DataFrame(saved["table"], columns=IMPORTANCE_COLUMNS)
    table = _permutation_importance(trials, names, random_state, repeats)
    if cache is not None:
        write_json(cache, {"key": key, "table": table.to_dict("records")})
    return table


def _permutation_importance(trials: pd.DataFrame, names: list[str], random_state: int, repeats: int) -> pd.DataFrame:
    columns, groups = [], {}
    for name in names:
        encoded = _encode(trials[name])
        groups[name] = list(range(len(columns), len(columns) + encoded.shape[1]))
        columns.append(encoded)
    x = np.hstack(columns)
    y = trials["score"].to_numpy(dtype=float)
    increases = _increases(x, y, groups, trees=200, seed=random_state, repeats=repeats,
                           rng=np.random.default_rng(random_state))
    rng = np.random.default_rng(random_state + 1)
    rounds = []
    for round_ in range(BOOTSTRAP_ROUNDS):
        rows = rng.integers(0, len(x), len(x))
        rounds.append(_increases(x[rows], y[rows], groups, trees=50, seed=round_, repeats=5, rng=rng).mean(axis=1))
    low, high = np.percentile(np.array(rounds), [2.5, 97.5], axis=0)
    table = pd.DataFrame([{"hyperparameter": name, "importance": float(np.mean(increases[i])),
                           "std": float(np.std(increases[i])), "ci95 low": float(low[i]), "ci95 high": float(high[i])}
                          for i, name in enumerate(names)])
    positive = table["importance"].clip(lower=0)
    table["share"] = positive / positive.sum() if positive.sum() > 0 else 0.0
    return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def _increases(x: np.ndarray, y: np.ndarray, groups: dict, *, trees: int, seed: int, repeats: int, rng) -> np.ndarray:
    """(hyperparameters, repeats): the increase of a forest's squared error on (x, y) when each hyperparameter's
    columns are shuffled together."""
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=trees, random_state=seed).fit(x, y)
    base = np.mean((forest.predict(x) - y) ** 2)
    shuffles = []
    for name in groups:
        for _ in range(repeats):
            shuffled = x.copy()
            order = rng.permutation(len(x))
            shuffled[:, groups[name]] = x[order][:, groups[name]]
            shuffles.append(shuffled)
    # One predict call for every shuffle: per call the forest's overhead (joblib, input checks) is ~25 ms, which
    # made `hpstudy report` take seconds (benchmarks/RESULTS.md, startup).
    predicted = forest.predict(np.vstack(shuffles)).reshape(len(groups), repeats, len(x))
    return np.mean((predicted - y) ** 2, axis=2) - base


def _encode(values: pd.Series) -> np.ndarray:
    """Numbers as a column (inactive: below the smallest), anything else one-hot (inactive its own column)."""
    if is_numeric(values):
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
        low = numbers.min() if numbers.notna().any() else 0.0
        return numbers.fillna(low - 1.0).to_numpy().reshape(-1, 1)
    labels = adjusted.labelled(values).map(str)
    return pd.get_dummies(labels).to_numpy(dtype=float)


def of_study(study, trials: pd.DataFrame, repeats: pd.DataFrame | None = None, *,
             importance_cache: Path | None = None, with_importance: bool = True) -> Effects:
    """`effects` of every hyperparameter `study` (a StudySpec) searches, over its trials table, as its report
    computes them: ranges fitted on their sampling scale, its question compared at its best nuisance settings."""
    tunables = study.tunables()
    return effects(trials, [t.name for t in tunables], study.search.objective, question=study.question,
                   ranges={t.name: t.sampling for t in tunables if t.kind in ("int", "float")}, repeats=repeats,
                   importance_cache=importance_cache, with_importance=with_importance)


def effects(trials: pd.DataFrame, names: list[str], objective: str, *, ranges: dict | None = None, question=(),
            repeats: pd.DataFrame | None = None, importance_cache: Path | None = None,
            with_importance: bool = True) -> Effects:
    """The effects of hyperparameters `names` on the score in the trials table `trials` (results.read_trials).

    `ranges`: the hyperparameters searched over a range (name -> its sampling), fitted as slopes (per tenfold
    where sampled log); numbers with more than adjusted.MAX_LEVELS values are too; `question`: the scientific ones,
    compared at their best nuisance settings; `repeats`: the seed repeats (results.read_repeats), which give the
    noise floor; `importance_cache`: see `importance`; `with_importance=False` leaves the ranking out (its forest
    is most of the time taken, and verdicts do not use it)."""
    minimize = is_minimized(objective)
    done, stopped = completed(trials), pruned_trials(trials)
    result = Effects(objective=objective, minimize=minimize, trials=len(done), pruned=len(stopped))
    repeats = repeats if repeats is not None and len(repeats) else None
    floor, dof = repeats_module.noise_floor(repeats) if repeats is not None else (None, 0)
    summaries = repeats_module.summaries(repeats) if repeats is not None else None
    result.noise_floor, result.repeats, result.repeat_records = floor, summaries, repeats
    result.noise_note = verdicts.noise_note(floor, dof, len(summaries) if summaries is not None else 0, objective)
    ranges = ranges or {}
    searched = {name: (name in ranges or (is_numeric(done[name]) and done[name].nunique() > adjusted.MAX_LEVELS),
                       ranges.get(name) == "log") for name in names}
    found = adjusted.contrasts(done, searched, noise_floor=floor, order_key=_value_key) if len(done) else []
    for name in names:
        table = value_table(done, name, minimize=minimize)
        numeric = is_numeric(done[name])
        mine = [c for c in found if c.hyperparameter == name]
        only = table["value"].iloc[0] if len(table) == 1 else None
        sentence = verdicts.line(name, mine, objective, only=only) + pruned_note(stopped, name)
        result.effects.append(Effect(name, numeric, with_pruned(table, stopped, name) if len(stopped) else table,
                                     spearman(done, name) if numeric else None, mine, sentence))
    result.question = {name: verdicts.isolation(done, name, minimize=minimize, summaries=summaries,
                                                order_key=_value_key) for name in question if len(done)}
    result.importance = importance(done, names, cache=importance_cache) if with_importance else None
    if result.importance is not None:
        result.importance_note = IMPORTANCE_METHOD
    elif not with_importance:
        result.importance_note = "not computed"
    elif not names:
        result.importance_note = "no tuned hyperparameters"
    else:
        result.importance_note = (f"too few trials for an importance ranking ({len(done)} completed; "
                                  f"at least {MIN_TRIALS} needed)")
    return result
