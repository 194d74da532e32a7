"""The tuner registry (keras-tuner's four search algorithms, by the names a study file uses), and the
repairs that make keras-tuner's saved state survive a process killed at any moment."""
from __future__ import annotations

import json
from pathlib import Path

import keras_tuner as kt
from keras_tuner.src import config as kt_config
from keras_tuner.src import utils as kt_utils
from keras_tuner.src.engine.trial import TrialStatus

from hpstudy import results

FINISHED = (TrialStatus.COMPLETED, TrialStatus.FAILED)


def _save_json_atomically(path, obj) -> str:
    """keras-tuner's `utils.save_json`, but written to a temporary file and renamed into place."""
    text = json.dumps(obj)
    results.write_text(Path(path), text)
    return text


# keras-tuner truncates oracle.json and trial.json, then writes them: a process killed in between leaves a
# file that refuses to reload, and the study cannot resume. Every keras-tuner module calls it as
# `utils.save_json`, so replacing the function here covers all of its state files.
kt_utils.save_json = _save_json_atomically


def show_tracebacks(show: bool) -> None:
    """Whether keras-tuner prints the traceback of each failed trial (the reason is in the trials table anyway)."""
    kt_config.DEBUG = show


def reconcile(oracle, *, chief: bool = False) -> None:
    """Repair an oracle reloaded after its process was killed, possibly between two of its state files.

    keras-tuner queues every trial that was running to run again. Of those, a trial whose trial.json says it
    finished (the kill came before oracle.json was saved) is ended instead, so it is not run twice; a trial
    saved as running that oracle.json never recorded is queued too, so it is not lost. A restarted chief gives
    each worker back the trial it is still running (the watchdog reclaims those of workers that are gone).
    """
    for trial_id in list(oracle._retry_queue):
        if oracle.trials[trial_id].status in FINISHED:
            oracle._retry_queue.remove(trial_id)
            if trial_id not in oracle.end_order:
                oracle.end_order.append(trial_id)
    if chief:
        saved = (results.read_json(Path(oracle._get_oracle_fname())) or {}).get("ongoing_trials", {})
        for worker, trial_id in saved.items():
            if trial_id in oracle._retry_queue:
                oracle._retry_queue.remove(trial_id)
                oracle.ongoing_trials[worker] = oracle.trials[trial_id]
    held = {t.trial_id for t in oracle.ongoing_trials.values()} | set(oracle._retry_queue)
    for trial_id, trial in oracle.trials.items():
        if trial.status == TrialStatus.RUNNING and trial_id not in held and trial_id not in oracle.end_order:
            oracle._retry_queue.append(trial_id)


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
