"""The behaviour hpstudy adds to every keras-tuner tuner: each trial recorded, progress reported, failures
contained (a diverged, crashing or process-killing trial is failed with its reason and the study goes on, up
to `search.max_failed_trials`), old checkpoints pruned, and the chief of a distributed study served.
"""
from __future__ import annotations

import math

import keras_tuner as kt
from keras_tuner.src.engine.trial import Trial, TrialStatus

from hpstudy import callbacks as callbacks_module
from hpstudy import distributed, results, retention, tuners
from hpstudy.errors import FreshProcessNeeded
from hpstudy.progress import Progress
from hpstudy.spec import StudySpec

# A trial that was running when its process died this many times is failed rather than started again:
# the same configuration killing the run (out of memory, say) must not stop a study forever.
MAX_INTERRUPTED_STARTS = 2
STARTS = "starts.json"        # in trials/<n>/: starts of the trial that have not finished yet


class StudyTuner:
    """Mixed into each keras-tuner tuner (see `tuner_class`)."""

    def __init__(self, *args, study: StudySpec, layout: results.Layout, progress: Progress,
                 memory_allowance_mib: float | None = None, **kwargs):
        self.study, self.layout, self.progress = study, layout, progress
        self.memory_allowance, self.memory_baseline = memory_allowance_mib, None
        super().__init__(*args, **kwargs)
        if self._is_worker():             # the oracle is the chief's, behind gRPC
            distributed.patient(self.oracle)
        else:
            if self.oracle.trials:       # reloaded
                tuners.reconcile(self.oracle, chief=distributed.role() == distributed.CHIEF)
            guard_trials(self.oracle, study.search.max_failed_trials)

    def search(self, *args, **kwargs):
        if distributed.role() == distributed.CHIEF:
            self.oracle.verbose = 0     # as keras-tuner's search(verbose=0) would: hpstudy reports progress itself
            self.save()
            distributed.serve(self.oracle, self.layout, self.study, self.progress)
            return
        super().search(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        folder = self.layout.trial(trial.trial_id)
        starts = _unfinished_starts(folder)
        if starts >= MAX_INTERRUPTED_STARTS:
            raise kt.errors.FailedTrialError(
                f"the run stopped {starts} times during this trial without finishing it (killed, or out of "
                f"memory?); it is failed so the study can go on")
        for stale in folder.glob("*"):      # left by an interrupted run of this trial
            if stale.name != STARTS:
                stale.unlink()
        results.write_json(folder / STARTS, starts + 1)
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), callbacks_module.TrialRecorder(folder)]
        try:
            histories = super().run_trial(trial, *args, **kwargs)
        except KeyboardInterrupt:           # stopped by its user: not held against the trial
            results.write_json(folder / STARTS, starts)
            raise
        except BaseException:
            (folder / STARTS).unlink(missing_ok=True)
            raise
        (folder / STARTS).unlink(missing_ok=True)
        _fail_if_diverged(histories)
        return histories

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self.progress.trial_begin(results.trial_number(trial.trial_id))

    def on_epoch_end(self, trial, model, epoch, logs=None):
        super().on_epoch_end(trial, model, epoch, logs=logs)
        self.progress.epoch_end(results.trial_number(trial.trial_id), epoch, logs or {})

    def on_trial_end(self, trial):
        if trial.message:       # keras-tuner's gRPC messages carry no failure reason: keep it beside the trial
            results.write_text(self.layout.trial(trial.trial_id) / results.FAILURE, trial.message)
        super().on_trial_end(trial)
        report_trial(self.progress, self.oracle.get_trial(trial.trial_id), trial.message)
        if not self._is_worker():
            retention.prune_checkpoints(self.oracle, self.layout, self.study.search.keep_checkpoints)
        results.write_table(self.layout)
        self._check_memory()

    def _check_memory(self):
        """Between trials (everything saved): ask for a fresh process once this one outgrew its allowance."""
        resident = resident_mib()
        if self.memory_allowance is None or resident is None:
            return
        if self.memory_baseline is None:
            self.memory_baseline = resident       # after the first trial: the framework's own start-up included
        elif resident - self.memory_baseline > self.memory_allowance:
            raise FreshProcessNeeded(resident - self.memory_baseline)


def tuner_class(base: type) -> type:
    """`base` (a keras-tuner tuner class) with hpstudy's behaviour mixed in."""
    return type(f"Study{base.__name__}", (StudyTuner, base), {})


def report_trial(progress: Progress, trial, message: str | None = None) -> None:
    """One finished trial's line of progress (`message`: its failure, where the oracle's copy has none)."""
    progress.trial_end(results.trial_number(trial.trial_id), trial.status, trial.hyperparameters.values,
                       trial.score, results.failure_reason(message or trial.message))


def resident_mib() -> float | None:
    """This process's resident memory in MiB (Linux), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return None


def failed_trials(oracle) -> list:
    return [t for t in oracle.trials.values() if t.status == TrialStatus.FAILED]


def guard_trials(oracle, limit: int) -> None:
    """Make `oracle` hand out no new trial once `limit` trials have failed (a running one still finishes),
    and never hand out again a trial that has finished."""
    create = oracle.create_trial

    def create_trial(tuner_id):
        if tuner_id not in oracle.ongoing_trials and len(failed_trials(oracle)) >= limit:
            oracle.tuner_ids.discard(tuner_id)
            return Trial(oracle.get_space(), status=TrialStatus.STOPPED)
        # A trial given to another worker when its own fell silent, then finished by the first after all.
        oracle._retry_queue[:] = [t for t in oracle._retry_queue if oracle.trials[t].status not in tuners.FINISHED]
        return create(tuner_id)
    oracle.create_trial = create_trial
    # hpstudy's limit replaces keras-tuner's own rule, which raises out of the oracle before saving the trial.
    oracle.max_consecutive_failed_trials = 2**31


def _unfinished_starts(folder) -> int:
    starts = results.read_json(folder / STARTS)
    return starts if isinstance(starts, int) else 0


def _fail_if_diverged(histories) -> None:
    """A trial whose loss became NaN or infinite fails: its best epoch before that must never be the best."""
    for history in histories:
        for key in ("loss", "val_loss"):
            for epoch, value in enumerate(history.history.get(key, [])):
                if not math.isfinite(value):
                    raise kt.errors.FailedTrialError(
                        f"{key} became {value} at epoch {epoch + 1}: the training diverged (a lower learning "
                        "rate, or gradient-friendly settings, may help)")
