"""Training callbacks: the study's own (early stopping, NaN guard, TensorBoard), the last epoch's weights kept,
and the recorder that writes each trial's history and timing (the learning-rate schedules are in `schedules`).

keras-tuner deep-copies callbacks for every execution of a trial, so every callback here holds
only plain values until training starts.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import pandas as pd

from hpstudy import files
from hpstudy.models import facts
from hpstudy.results.layout import Layout
from hpstudy.study.spec import CallbacksSpec
from hpstudy.text import csv_text


def study_callbacks(spec: CallbacksSpec, tensorboard_dir: Path | None) -> list[keras.callbacks.Callback]:
    """The callbacks every trial of a study shares (keras-tuner gives each trial a copy); `tensorboard_dir` is
    where callbacks.tensorboard's logs go (None: the study keeps none)."""
    out = []
    if spec.early_stopping is not None:
        es = spec.early_stopping
        out.append(keras.callbacks.EarlyStopping(
            monitor=es.monitor, patience=es.patience, min_delta=es.min_delta,
            restore_best_weights=es.restore_best_weights))
    if spec.terminate_on_nan:
        out.append(StopOnNonFiniteLoss())
    if spec.tensorboard:
        if tensorboard_dir is None:
            raise ValueError("callbacks.tensorboard needs the folder its logs go to")
        # keras-tuner moves the log dir to <dir>/<trial>/execution<k> and adds the HParams callback.
        out.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir)))
    return out


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop training at the first NaN or infinite batch loss (keras.callbacks.TerminateOnNaN, without its
    print): the trial is then failed with the epoch it diverged at."""

    def on_train_batch_end(self, batch, logs=None):
        """Stop at a non-finite batch loss."""
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True


class KeepLastEpoch(keras.callbacks.Callback):
    """`search.checkpoint_epoch: last`: write the weights of the last epoch run over the trial's checkpoint when
    training ends. keras-tuner's own checkpoint writes the best epoch's at each epoch's end and nothing at the end
    of training, so these are the weights kept (after a fine-tune phase: those of its last epoch; with several
    executions: those of the last execution)."""

    def __init__(self, checkpoint: str):
        super().__init__()
        self.checkpoint = checkpoint

    def on_train_end(self, logs=None):
        """Save the model's weights as they are now, at the end of its last epoch."""
        self.model.save_weights(self.checkpoint)


class TrialRecorder(keras.callbacks.Callback):
    """Writes one execution's per-epoch history (CSV), its wall time and model facts (JSON) into the trial's
    folder; the model's summary once per trial. Epochs are counted from 1, as Keras prints them. `worker`: the
    id of the distributed study's worker that runs the trial (None in a study of its own)."""

    def __init__(self, layout: Layout, trial_id: str, worker: str | None = None):
        super().__init__()
        self.layout, self.trial_id, self.worker = layout, trial_id, worker
        self.continuing = False

    def continue_next_fit(self) -> None:
        """Record the next `fit` (a fine-tune phase) as more epochs of the same execution."""
        self.continuing = True

    def on_train_begin(self, logs=None):
        """A new execution (or, after `continue_next_fit`, more epochs of this one)."""
        if self.continuing:
            self.continuing = False
            return
        self.execution = len(self.layout.executions(self.trial_id))
        self.history = self.layout.history(self.trial_id, self.execution)
        self.rows = []
        self.started = time.perf_counter()
        self.epochs_run = 0
        # Counted before the first epoch: a fine-tune phase makes more of the model trainable later.
        self.trainable_params = facts.trainable_params(self.model)
        if self.execution == 0:
            files.write_text(self.layout.summary(self.trial_id), facts.summary(self.model))

    def on_epoch_end(self, epoch, logs=None):
        """One more row of the history, the whole file renamed into place: a crash never leaves half a row."""
        self.rows.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
                          "seconds": round(time.perf_counter() - self.started, 3)})
        files.write_text(self.history, csv_text(pd.DataFrame(self.rows)))
        self.epochs_run += 1

    def on_train_end(self, logs=None):
        """The execution's record: epochs run, seconds, size, worker."""
        files.write_json(self.layout.execution(self.trial_id, self.execution), {
            "execution": self.execution, "epochs_run": self.epochs_run,
            "seconds": round(time.perf_counter() - self.started, 3),
            "params": int(self.model.count_params()), "trainable_params": self.trainable_params,
            "flops": facts.flops(self.model),
            "history": self.history.name, "worker": self.worker,
            # The last epoch's metrics: with early stopping restoring the best epoch, the only trace of overfitting.
            "last": {k: v for k, v in (self.rows[-1] if self.rows else {}).items() if k not in ("epoch", "seconds")}})
