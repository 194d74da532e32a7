"""The tuner registry: keras-tuner's four search algorithms, by the names a study file uses."""
from __future__ import annotations

import keras_tuner as kt


class ResumableGridSearchOracle(kt.oracles.GridSearchOracle):
    """keras-tuner's grid oracle, with its walk through the grid saved in oracle.json.

    The stock oracle keeps that walk (which trials still have a successor to propose, and the grid
    order of the trials) only in memory, so a reloaded grid search stops at once.
    """

    def get_state(self):
        state = super().get_state()
        order, index = [], self._ordered_ids._next_index[None]
        while index is not None:
            order.append(self._ordered_ids._memory[index])
            index = self._ordered_ids._next_index[index]
        state["grid"] = {"populate_next": list(self._populate_next), "order": order}
        return state

    def set_state(self, state):
        super().set_state(state)
        grid = state.get("grid", {"populate_next": [], "order": []})
        self._populate_next = list(grid["populate_next"])
        self._ordered_ids = type(self._ordered_ids)()
        for trial_id in grid["order"]:
            self._ordered_ids.insert(trial_id)


class GridSearch(kt.Tuner):
    """kt.GridSearch with the resumable oracle (same arguments)."""

    def __init__(self, hypermodel=None, objective=None, max_trials=None, seed=None, hyperparameters=None,
                 tune_new_entries=True, allow_new_entries=True, max_retries_per_trial=0,
                 max_consecutive_failed_trials=3, **kwargs):
        oracle = ResumableGridSearchOracle(
            objective=objective, max_trials=max_trials, seed=seed, hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries, allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial, max_consecutive_failed_trials=max_consecutive_failed_trials)
        super().__init__(oracle, hypermodel, **kwargs)


TUNERS = {
    "random": kt.RandomSearch,
    "grid": GridSearch,
    "hyperband": kt.Hyperband,
    "bayesian": kt.BayesianOptimization,
}
