"""Which hyperparameters the score depends on most: a ranking with intervals, beside the adjusted effects, by
held-out grouped permutation importance of a random forest (`_permutation_importance`). Pure
numpy/pandas/scikit-learn (no Keras).
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from hpstudy.analysis.adjusted import is_numeric, labelled
from hpstudy.files import read_json, write_json

MIN_TRIALS = 4              # below this, an importance ranking would be noise
FOLDS, TREES = 5, 100       # the importance's cross-fitting: each trial is predicted by a forest that never saw it
IMPORTANCE_METHOD = (f"held-out grouped permutation importance of a random forest (RandomForestRegressor, {TREES} "
                     f"trees; {FOLDS}-fold cross-fitting, each trial predicted by a forest fitted without it; 30 "
                     "shuffles per hyperparameter; mean increase in squared error); 95% interval: t interval of "
                     "the folds' mean increases, Nadeau-Bengio corrected (it includes zero for a hyperparameter the "
                     "score does not depend on)")
IMPORTANCE_COLUMNS = ["hyperparameter", "importance", "std", "ci95 low", "ci95 high", "share"]


def importance(trials: pd.DataFrame, names: list[str], *, random_state: int = 0, repeats: int = 30,
               cache: Path | None = None, save: bool = False) -> pd.DataFrame | None:
    """Grouped permutation importance of a random forest (see `_permutation_importance`) over `trials` (already
    completed()); None with fewer than MIN_TRIALS trials or no hyperparameters.

    With `cache` (a JSON file), a ranking computed from the same trials is read back instead: `hpstudy run`
    leaves one for its report, which then needs neither scikit-learn's import nor the forest (about a second).
    Otherwise it is computed, and written to `cache` only with `save` (`hpstudy run`'s, at its end): reading a
    study writes nothing.
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
    if cache is not None and save:
        write_json(cache, {"key": key, "table": table.to_dict("records")})
    return table


def _permutation_importance(trials: pd.DataFrame, names: list[str], random_state: int, repeats: int) -> pd.DataFrame:
    """*Held-out grouped permutation importance* of a random forest: the trials are split into FOLDS folds; for
    each, a `sklearn.ensemble.RandomForestRegressor` (TREES trees) is fitted on the other folds to predict the score
    from the hyperparameters (numbers as they are, other values one-hot encoded; inactive values get their own
    code), and each held-out trial's hyperparameter columns are replaced together by another trial's (`repeats`
    shuffles, fixed seed). A hyperparameter's importance is the mean increase of the squared error over the
    held-out trials; `share` is its fraction of the positive total. Its 95% interval (`ci95 low`, `ci95 high`) is
    the t interval of the FOLDS folds' mean increases, its variance corrected for the folds' overlap (Nadeau and
    Bengio 2003). Held out, because a forest scored on the trials it was fitted to has memorised them: shuffling a
    hyperparameter that does nothing still raises its in-sample error, and such intervals lay above zero for
    87-99% of irrelevant hyperparameters."""
    x, groups = encoded_design(trials, names)
    y = trials["score"].to_numpy(dtype=float)
    per_trial, folds = _held_out_increases(x, y, groups, seed=random_state, repeats=repeats)
    from scipy import stats

    rows = []
    for i, name in enumerate(names):
        # The trials of one fold share a forest and the folds share training trials, so neither the trials nor
        # the folds' means are independent: the folds' means' variance gets Nadeau and Bengio's (2003) correction
        # for cross-validation, 1/K + n_test/n_train instead of 1/K (per-trial t intervals held 82% coverage
        # under no effect, uncorrected fold means 84%).
        means = np.array([per_trial[i][folds == f].mean() for f in np.unique(folds)])
        mean, k = float(per_trial[i].mean()), len(means)
        half = float(stats.t.ppf(0.975, k - 1) * means.std(ddof=1) * math.sqrt(1 / k + 1 / (k - 1)))
        rows.append({"hyperparameter": name, "importance": mean, "std": float(per_trial[i].std(ddof=1)),
                     "ci95 low": mean - half, "ci95 high": mean + half})
    table = pd.DataFrame(rows, columns=IMPORTANCE_COLUMNS[:-1])
    positive = table["importance"].clip(lower=0)
    table["share"] = positive / positive.sum() if positive.sum() > 0 else 0.0
    return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def encoded_design(trials: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, dict]:
    """The forest's inputs: every hyperparameter's encoded columns side by side, and name -> its column numbers.
    The offsets count encoded columns (a choice of three strings is three columns), not hyperparameters."""
    columns, groups, width = [], {}, 0
    for name in names:
        encoded = _encode(trials[name])
        groups[name] = list(range(width, width + encoded.shape[1]))
        width += encoded.shape[1]
        columns.append(encoded)
    return np.hstack(columns), groups


def _held_out_increases(x: np.ndarray, y: np.ndarray, groups: dict, *, seed: int, repeats: int) -> tuple:
    """((hyperparameters, trials), each trial's fold): each trial's increase in squared error, predicted by a forest
    that never saw it (FOLDS-fold cross-fitting), when the hyperparameter's columns are replaced by another trial's
    (the mean over `repeats` shuffles). A hyperparameter the score does not depend on has an expected increase of
    zero, which an in-sample forest (that memorised the trials) would not give."""
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(seed)
    folds = rng.permutation(len(x)) % min(FOLDS, len(x))
    out = np.zeros((len(groups), len(x)))
    for fold in np.unique(folds):
        test = np.flatnonzero(folds == fold)
        forest = RandomForestRegressor(n_estimators=TREES, random_state=seed + int(fold))
        forest.fit(x[folds != fold], y[folds != fold])
        base = (forest.predict(x[test]) - y[test]) ** 2
        shuffles = []
        for columns in groups.values():
            for _ in range(repeats):
                shuffled = x[test].copy()
                shuffled[:, columns] = x[rng.integers(0, len(x), len(test))][:, columns]
                shuffles.append(shuffled)
        # One predict call for every shuffle: per call the forest's overhead (joblib, input checks) is ~25 ms.
        predicted = forest.predict(np.vstack(shuffles)).reshape(len(groups), repeats, len(test))
        out[:, test] = np.mean((predicted - y[test]) ** 2, axis=1) - base
    return out, folds


def _encode(values: pd.Series) -> np.ndarray:
    """Numbers as a column (inactive: below the smallest), anything else one-hot (inactive its own column)."""
    if is_numeric(values):
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
        low = numbers.min() if numbers.notna().any() else 0.0
        return numbers.fillna(low - 1.0).to_numpy().reshape(-1, 1)
    labels = labelled(values).map(str)
    return pd.get_dummies(labels).to_numpy(dtype=float)


def importance_note(ranking, computed: bool, names: list[str], trials: int) -> str:
    """What the importance section says: the method, or why there is no ranking."""
    return (IMPORTANCE_METHOD if ranking is not None else "not computed" if not computed else
            "no tuned hyperparameters" if not names else f"too few trials for an importance ranking ({trials} "
            f"completed that trained; at least {MIN_TRIALS} needed)")
