"""The behaviour hpstudy adds to every keras-tuner tuner: each trial recorded, progress reported, failures
contained (a diverged, crashing or process-killing trial is failed with its reason and the study goes on, up
to `search.max_failed_trials` failed trials in all), old checkpoints pruned, the memory allowance watched, and
the chief of a distributed study served. keras-tuner's internals are left to `engine.search.adapter`.
"""
from __future__ import annotations

import contextlib
import math
import threading
import traceback
from pathlib import Path

import keras
import keras_tuner as kt

from hpstudy import files
from hpstudy.engine import interrupt
from hpstudy.engine.progress import Progress
from hpstudy.engine.search import pruning, retention
from hpstudy.engine.search.adapter import MixinBase
from hpstudy.engine.search.distributed import chief
from hpstudy.engine.search.distributed.roles import Role, is_chief, is_worker
from hpstudy.engine.search.distributed.worker import ChiefFinished
from hpstudy.engine.search.hypermodel import trial_seed
from hpstudy.engine.training import callbacks as callbacks_module
from hpstudy.errors import DiskFull, FreshProcessNeeded
from hpstudy.results import trials
from hpstudy.results.layout import Layout, trial_number
from hpstudy.results.status import TrialStatus
from hpstudy.results.trials_table import TrialsTable
from hpstudy.study.spec import StudySpec

# A trial that was running when its process died this many times is failed rather than started again:
# the same configuration killing the run (out of memory, say) must not stop a study forever.
MAX_INTERRUPTED_STARTS = 2


class _NoRoom(DiskFull, kt.errors.FatalError):
    """A trial found the disk full: a FatalError, which keras-tuner lets end the search instead of failing the
    trial for good."""


class StopWhenChiefFinished(keras.callbacks.Callback):
    """A worker's training stops at the end of a batch once the chief it served has finished the study (its
    heartbeat sets `chief_finished`): the trial was given to another worker, which ended it."""

    def __init__(self, chief_finished: threading.Event):
        super().__init__()
        self.chief_finished = chief_finished

    def __deepcopy__(self, memo):
        # keras-tuner deep-copies each trial's callbacks: an Event cannot be copied, and every copy must watch
        # the heartbeat's own.
        return self

    def on_train_batch_end(self, batch, logs=None):
        """Raise ChiefFinished once the chief has finished."""
        if self.chief_finished.is_set():
            raise ChiefFinished("the chief has finished the study")


class StudyTuner(MixinBase):
    """Mixed into each keras-tuner tuner (see `adapter.make_tuner`)."""

    role: Role | None           # set by adapter.StudyTunerBase, below this in the tuner's classes

    def __init__(self, *args, study: StudySpec, layout: Layout, progress: Progress,
                 memory_allowance_mib: float | None = None, trials_table: TrialsTable | None = None, **kwargs):
        # `role` and a worker's `chief_finished` go on to adapter.StudyTunerBase, which keeps them.
        self.study, self.layout, self.progress = study, layout, progress
        self.memory_allowance = memory_allowance_mib
        self.memory_baseline: float | None = None
        # Kept in memory for the whole run, each updated per trial end (a single process's or a chief's: the
        # workers write no table and delete no checkpoint).
        self.retention = retention.Retention(layout, study.search.keep_checkpoints)
        self.trials_table = trials_table or TrialsTable(layout)
        super().__init__(*args, **kwargs)

    def search(self, *args, **kwargs):
        """Run the search; the chief of a distributed study serves it to the workers instead."""
        # Saved before the first trial: keras-tuner reloads a project only once its tuner file exists, and a run
        # killed after its first trial's record but before that file would otherwise start over and run it again.
        self.save()
        if is_chief(self.role):
            self.oracle.verbose = 0     # as keras-tuner's search(verbose=0) would: hpstudy reports progress itself
            chief.serve(self.oracle, self.layout, self.role, on_ended=self._record_ended)
            return
        with interrupt.deferred():      # Ctrl-C stops at a batch's end or between trials (see engine.interrupt)
            super().search(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        """keras-tuner's trial, recorded in trials/<n>/ and counted as started until it ends."""
        starts_file = self.layout.starts(trial.trial_id)
        starts = _unfinished_starts(starts_file)
        if starts >= MAX_INTERRUPTED_STARTS:
            raise kt.errors.FailedTrialError(
                f"the run stopped {starts} times during this trial without finishing it (killed, or out of "
                f"memory?); it is failed so the study can go on")
        clear_trial_files(self.layout, trial.trial_id, keep=starts_file)    # left by an interrupted run of it
        checkpoint = Path(self.checkpoint_file(trial.trial_id))
        if checkpoint.is_symlink():         # a received folder's link there would have its target written
            checkpoint.unlink()
        files.write_json(starts_file, starts + 1)
        worker = self.role.worker_id if is_worker(self.role) else None
        recorder = callbacks_module.TrialRecorder(self.layout, trial_number(trial.trial_id), worker=worker)
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), recorder]
        if is_worker(self.role):     # its trial given to another worker, which ended it, and the study over
            kwargs["callbacks"].append(StopWhenChiefFinished(self.oracle.chief_finished))
        if self.study.search.checkpoint_epoch == "last":
            kwargs["callbacks"].append(callbacks_module.KeepLastEpoch(self.checkpoint_file(trial.trial_id)))
        if self.study.search.pruning is not None:     # after the recorder: the epoch is on disk when it decides
            kwargs["callbacks"].append(pruning.Pruner(self.study.search, self.layout, trial_number(trial.trial_id)))
        keras.utils.set_random_seed(trial_seed(self.study, trial.trial_id))     # weights, data order: reproducible
        try:
            histories = super().run_trial(trial, *args, **kwargs)
        except BaseException as err:
            if isinstance(err, KeyboardInterrupt) or interrupt.requested():   # stopped by its user: not its failure
                files.write_json(starts_file, starts)
                raise KeyboardInterrupt from err
            reason = files.no_room(err)
            if reason is not None:       # nor is a full disk: the search stops, and resuming runs the trial again
                with contextlib.suppress(Exception):
                    files.write_json(starts_file, starts)
                # Free the half-written weights file now, while the run's handler quiets what h5py says on freeing it.
                traceback.clear_frames(err.__traceback__)
                number = trial_number(trial.trial_id)
                raise _NoRoom(f"{self.layout.root}: cannot write trial {number}'s files ({reason}); the search "
                              f"stopped, and trial {number} runs again on resume: make room and run the same "
                              "command again") from None
            starts_file.unlink(missing_ok=True)
            raise
        starts_file.unlink(missing_ok=True)
        _fail_if_diverged(histories)
        return histories

    def on_trial_begin(self, trial):
        """keras-tuner's, then the progress bar names the trial."""
        interrupt.check()
        super().on_trial_begin(trial)
        self.progress.trial_begin(trial_number(trial.trial_id))

    def on_epoch_end(self, trial, model, epoch, logs=None):
        """keras-tuner's, then the progress bar shows the epoch."""
        super().on_epoch_end(trial, model, epoch, logs=logs)
        self.progress.epoch_end(trial_number(trial.trial_id), epoch, logs or {})

    def on_trial_end(self, trial):
        """keras-tuner's, then the trial's line, checkpoints pruned, the table rewritten, memory checked."""
        if trial.message:       # keras-tuner's gRPC messages carry no failure reason: keep it beside the trial
            files.write_text(self.layout.failure(trial.trial_id), trial.message)
        super().on_trial_end(trial)
        self._record_ended([self.oracle.get_trial(trial.trial_id)], trial.message)
        interrupt.check()
        self._check_memory()

    def _record_ended(self, ended: list, message: str | None = None) -> None:
        """Trials that ended (here, or at a worker the chief serves): their lines; then, but in a worker (its
        chief does it), the checkpoints no longer needed deleted and the trials table updated with them."""
        for trial in ended:
            report_trial(self.progress, trial, message, trials.read_pruned(self.layout, trial.trial_id))
        if not is_worker(self.role):
            self.retention.prune(self.oracle)
            self.trials_table.write([trial.trial_id for trial in ended], known=self.oracle.trials)

    def _check_memory(self):
        """Between trials (everything saved): ask for a fresh process once this one outgrew its allowance."""
        resident = resident_mib()
        if self.memory_allowance is None or resident is None:
            return
        if self.memory_baseline is None:
            self.memory_baseline = resident       # after the first trial: the framework's own start-up included
        elif resident - self.memory_baseline > self.memory_allowance:
            raise FreshProcessNeeded(resident - self.memory_baseline)


def report_trial(progress: Progress, trial, message: str | None = None, pruned: dict | None = None) -> None:
    """One finished trial's line of progress (`message`: its failure, where the oracle's copy has none; `pruned`:
    its pruned.json, where search.pruning stopped it)."""
    if pruned is not None and trial.status == TrialStatus.COMPLETED:
        progress.trial_end(trial_number(trial.trial_id), TrialStatus.PRUNED, trial.hyperparameters.values, trial.score,
                           f"at epoch {pruned['epoch']}: {pruned['reason']}")
        return
    progress.trial_end(trial_number(trial.trial_id), trial.status, trial.hyperparameters.values,
                       trial.score, trials.failure_reason(message or trial.message))


def resident_mib() -> float | None:
    """This process's resident memory in MiB (Linux), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return None


def clear_trial_files(layout: Layout, trial_id, *, keep) -> None:
    """Delete what an interrupted run of trial `trial_id` left in trials/<n>/ (but `keep`): hpstudy's own files
    only, by name; anything else there (a user's notes, a folder) stays."""
    for stale in layout.trial(trial_id).glob("*"):
        owned = layout.is_owned(stale.relative_to(layout.root), folder=False)
        if stale != keep and owned and (stale.is_symlink() or not stale.is_dir()):
            stale.unlink()


def _unfinished_starts(starts_file) -> int:
    starts = files.read_json(starts_file)
    return starts if isinstance(starts, int) and not isinstance(starts, bool) else 0


def _fail_if_diverged(histories) -> None:
    """A trial whose loss became NaN or infinite fails: its best epoch before that must never be the best."""
    for history in histories:
        for key in ("loss", "val_loss"):
            for epoch, value in enumerate(history.history.get(key, [])):
                if not math.isfinite(value):
                    raise kt.errors.FailedTrialError(
                        f"{key} became {value} at epoch {epoch + 1}: the training diverged (a lower learning "
                        "rate, or gradient-friendly settings, may help)")
