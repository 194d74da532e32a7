"""Seed repeats of the best configurations (`search.confirm`, `hpstudy confirm`): the noise floor of a study.
A repeat is recorded in `repeats/<trial>/seed_<seed>.json` when it ends, so a killed confirm resumes with the
repeats it has and runs only the missing ones.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time

import keras
import numpy as np

from hpstudy import files
from hpstudy.analysis import repeats as repeats_module
from hpstudy.engine import interrupt
from hpstudy.engine.search.hypermodel import load_data, make_hypermodel, repeat_seed, trial_hyperparameters
from hpstudy.engine.training import callbacks as callbacks_module
from hpstudy.errors import ResultsError
from hpstudy.results import folder, trials
from hpstudy.results.layout import Layout
from hpstudy.results.status import TrialStatus
from hpstudy.study.spec import ConfirmSpec, StudySpec
from hpstudy.text import one_line


class BestEpoch(keras.callbacks.Callback):
    """Keeps the weights and logs of the epoch with the best objective (as keras-tuner's checkpoint does), and
    the last epoch's logs."""

    def __init__(self, objective: str, minimize: bool):
        super().__init__()
        self.objective, self.minimize = objective, minimize
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.weights: list | None = None
        self.best_logs: dict[str, float] = {}
        self.last_logs: dict[str, float] = {}
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        """Remember this epoch if its objective is the best so far."""
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.last_logs, self.epochs = logs, self.epochs + 1
        value = logs.get(self.objective)
        if value is None or not math.isfinite(value):
            return
        if self.best is None or (value < self.best if self.minimize else value > self.best):
            self.best, self.best_logs, self.best_epoch = value, logs, epoch + 1
            self.weights = [np.array(w) for w in self.model.get_weights()]


def confirm(layout: Layout, *, top: int | None = None, seeds: int | None = None, dataset=None, stream=None) -> dict:
    """Train the top `top` configurations of the study in `layout` again with `seeds` new seeds each (defaults:
    the study's search.confirm, else ConfirmSpec's); returns the summary written into best.json's `confirmed`."""
    study = folder.study_of(layout)
    spec = study.search.confirm or ConfirmSpec()
    top, seeds = top or spec.top, seeds or spec.seeds
    ranked = trials.ranked_trials(layout)[:top]
    if not ranked:
        raise ResultsError(f"{layout.root}: no completed trial to confirm yet")
    for number in ranked:       # each recorded configuration checked against the study's space before any training
        trial_hyperparameters(layout, number)
    stream = stream or sys.stdout
    dataset = dataset if dataset is not None else load_data(study)
    hypermodel = make_hypermodel(study, dataset)
    with interrupt.handled():
        for number in ranked:
            _repeat_configuration(study, layout, hypermodel, dataset, number, seeds, stream)
    table = trials.write_repeats(layout)
    summary = repeats_module.confirmed(table[table.trial_id.isin(ranked)], study.search.objective, ranked,
                                       minimize=study.search.minimize)
    best = trials.read_best(layout)
    if best:
        files.write_json(layout.best, {**best, "confirmed": summary})
    return summary


def repeat_trials(layout: Layout, numbers, seeds: int, *, hypermodel, dataset, stream=None) -> None:
    """The first `seeds` repeats of each of trials `numbers` that are not done yet (search.until: answered asks
    for them between rounds), then `repeats.csv` written again."""
    study = folder.study_of(layout)
    for number in numbers:
        _repeat_configuration(study, layout, hypermodel, dataset, number, seeds, stream or sys.stdout)
    trials.write_repeats(layout)


def _repeat_configuration(study: StudySpec, layout: Layout, hypermodel, dataset, number: str, seeds: int,
                          stream) -> None:
    """The repeats of trial `number`'s configuration not done yet, each written when it ends."""
    hp = trial_hyperparameters(layout, number)
    for k in range(seeds):
        seed = repeat_seed(study, k)
        # Resumed: done repeats are kept (a damaged one is a ResultsError naming it, never overwritten).
        if files.read_record(layout.repeat(number, seed), dict, trials.REPEAT_FIELDS, root=layout.root) is None:
            record = _repeat(study, hypermodel, hp, dataset, number, seed)
            files.write_json(layout.repeat(number, seed), record)
            outcome = (f"{study.search.objective}={record['score']:.4f}" if record["status"] == TrialStatus.COMPLETED
                       else f"{TrialStatus.FAILED}: {record['message']}")
            print(one_line(f"repeat of trial {number:>4}  seed {seed}  {outcome}  {record['seconds']:6.1f}s"),
                  file=stream, flush=True)


# Each of the top K completed trials is trained again with N new seeds (initial weights, data order and
# augmentation; the same splits), as its trial was: the same epochs, callbacks and fine-tune phase (a Hyperband
# trial gets the study's whole `train.epochs`), scored by the objective at its best epoch and evaluated on the test
# split with that epoch's weights. The search's own run of a trial is not one of its repeats: it was picked for
# scoring high, so counting it would bias the estimate upward (the winner's curse).
def _repeat(study: StudySpec, hypermodel, hp, dataset, number: str, seed: int) -> dict:
    """One repeat of trial `number`'s configuration with `seed`, as a record."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    hypermodel.augment_seed = seed
    started = time.perf_counter()
    tracker = BestEpoch(study.search.objective, study.search.minimize)
    model = hypermodel.build(hp)
    # The study's callbacks (early stopping, the NaN guard) without TensorBoard: repeats keep no logs of their own.
    shared = callbacks_module.study_callbacks(dataclasses.replace(study.callbacks, tensorboard=False), None)
    hypermodel.fit(hp, model, dataset.train.x, dataset.train.y, verbose=0, callbacks=[*shared, tracker],
                   validation_data=(dataset.validation.x, dataset.validation.y))
    record = {"trial_id": number, "seed": seed, "status": TrialStatus.COMPLETED.value, "score": tracker.best,
              "best_epoch": tracker.best_epoch, "epochs_run": tracker.epochs,
              **{name: tracker.best_logs.get(name) for name in trials.METRICS},
              **{f"last_{name}": tracker.last_logs.get(name) for name in trials.METRICS}}
    diverged = [k for k in ("loss", "val_loss") if not math.isfinite(tracker.last_logs.get(k, 0.0))]
    if tracker.weights is None or diverged:
        record.update(status=TrialStatus.FAILED.value,
                      message=f"{(diverged or ['the objective'])[0]} was never finite; the repeat diverged")
    else:
        if study.search.checkpoint_epoch == "best":     # else the weights stay the last epoch's
            model.set_weights(tracker.weights)
        test = model.evaluate(dataset.test.x, dataset.test.y, verbose=0, return_dict=True)
        record.update(test_loss=float(test["loss"]), test_accuracy=float(test["accuracy"]))
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record
