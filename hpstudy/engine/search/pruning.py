"""`search.pruning`: stop a trial whose objective falls behind the other trials' at the same epoch.

The rules (`median_rule`, `halving_rule`) are plain functions of curves: a trial's best objective so far at each
epoch. `Pruner` is the Keras callback that applies the rule at the end of each epoch.
"""
from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass

import keras

from hpstudy import files
from hpstudy.errors import ResultsError
from hpstudy.results import trials
from hpstudy.results.layout import Layout, trial_number
from hpstudy.results.status import SCORED, TrialStatus
from hpstudy.study.objective import best_so_far
from hpstudy.study.spec import PruningSpec, SearchSpec


@dataclass(frozen=True)
class Decision:
    """Why a trial stops: the threshold its best value failed and the trials it was compared with."""

    reason: str
    value: float
    threshold: float
    compared: list[str]


# ---------------------------------------------------------------- curves
def value_at(curve: list[float], epoch: int) -> float:
    """A best-so-far curve at `epoch` (from 1); a curve that ended earlier (early stopping) keeps its last value."""
    return curve[min(epoch, len(curve)) - 1] if curve else math.nan


_CACHE: dict[str, tuple[tuple, list[float]]] = {}      # history file -> (its signature, its curve)


def _curve(layout: Layout, trial_id: str, objective: str, minimize: bool) -> list[float]:
    """A trial's best-so-far curve of `objective` from its history file ([] without one); read again only when
    the file changed."""
    path = layout.history(trial_id)
    try:
        stat = os.stat(path)
    except OSError:
        return []
    signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns, objective, minimize)
    cached = _CACHE.get(str(path))
    if cached is not None and cached[0] == signature:
        return cached[1]
    history = trials.read_history(layout, trial_id)
    curve = best_so_far(history[objective], minimize) if history is not None and objective in history else []
    _CACHE[str(path)] = (signature, curve)
    return curve


# The other trials' curves and statuses come from the results folder itself (each trial's history file and
# keras-tuner's trial record), never from memory, so the same rule decides alike in one process, after a resume,
# after a fresh-process restart for the memory allowance, and in every worker of a distributed study (whose
# results folder is shared).
def other_trials(layout: Layout, trial_id: str, objective: str,
                 minimize: bool) -> list[tuple[str, str | None, list]]:
    """(number, hpstudy status, best-so-far curve) of every trial but `trial_id` in trial order. A record that
    cannot be read is left out: it is not evidence, and a trial is never failed for another trial's file."""
    out = []
    for path in layout.tuner_trials():
        try:
            record = trials.read_tuner_trial(path)
            if record is None or trial_number(record["trial_id"]) == trial_number(trial_id):
                continue
            number = trial_number(record["trial_id"])
            out.append((number, trials.status_of(layout, record), _curve(layout, number, objective, minimize)))
        except (ResultsError, KeyError, TypeError, ValueError):
            continue
    return sorted(out, key=lambda item: int(item[0]))


# ---------------------------------------------------------------- the rules
def _filled(value: int | None, key: str) -> int:
    """A rule's own key (interval, reduction_factor), which loading the study fills in with its default."""
    if value is None:
        raise ValueError(f"search.pruning.{key} is unset: a study file's loader fills it in")
    return value


def is_due(spec: PruningSpec, epoch: int) -> bool:
    """Whether the rule looks at a trial at the end of `epoch` (from 1): median at warmup_epochs and every
    `interval` epochs after; successive halving at its rungs, warmup_epochs x reduction_factor^k."""
    if epoch < spec.warmup_epochs:
        return False
    if spec.rule == "median":
        return (epoch - spec.warmup_epochs) % _filled(spec.interval, "interval") == 0
    rung = spec.warmup_epochs
    while rung < epoch:
        rung *= _filled(spec.reduction_factor, "reduction_factor")
    return rung == epoch


def _worse(value: float, threshold: float, minimize: bool) -> bool:
    return value > threshold if minimize else value < threshold


def _words(minimize: bool) -> str:
    return "above" if minimize else "below"


def median_rule(spec: PruningSpec, epoch: int, value: float, others, objective: str,
                minimize: bool) -> Decision | None:
    """Stop when the trial's best `value` by `epoch` is worse than the median of the completed (not pruned)
    trials' best by the same epoch, once at least min_trials have completed (Optuna's MedianPruner)."""
    done = [(number, value_at(curve, epoch)) for number, status, curve in others
            if status == TrialStatus.COMPLETED and curve]
    done = [(number, v) for number, v in done if math.isfinite(v)]
    if len(done) < spec.min_trials or not math.isfinite(value):
        return None
    median = statistics.median(v for _, v in done)
    if not _worse(value, median, minimize):
        return None
    return Decision(f"best {objective} {value:.4f} by epoch {epoch} is {_words(minimize)} the median {median:.4f} "
                    f"of {len(done)} completed trials at that epoch", value, median, [n for n, _ in done])


def halving_rule(spec: PruningSpec, epoch: int, value: float, others, objective: str,
                 minimize: bool) -> Decision | None:
    """At a rung, keep the trial only if its best `value` by `epoch` is among the top 1/reduction_factor (at least
    one) of every trial that reached the rung so far, this one included, once min_trials have (asynchronous
    successive halving, as Optuna's SuccessiveHalvingPruner); failed trials do not count."""
    reached = [(number, value_at(curve, epoch)) for number, status, curve in others
               if (status in SCORED or status == TrialStatus.RUNNING) and len(curve) >= epoch]
    reached = [(number, v) for number, v in reached if math.isfinite(v)]
    count = len(reached) + 1
    if count < spec.min_trials or not math.isfinite(value):
        return None
    kept = max(1, count // _filled(spec.reduction_factor, "reduction_factor"))
    ordered = sorted([value, *(v for _, v in reached)], reverse=not minimize)
    threshold = ordered[kept - 1]
    if not _worse(value, threshold, minimize):
        return None
    return Decision(f"best {objective} {value:.4f} by epoch {epoch} is {_words(minimize)} {threshold:.4f}: only the "
                    f"top {kept} of the {count} trials at this rung (1/{spec.reduction_factor}) continue", value,
                    threshold, [n for n, _ in reached])


RULES = {"median": median_rule, "successive_halving": halving_rule}


# ---------------------------------------------------------------- the callback
# The callback records a decision in trials/<n>/pruned.json before it stops the training: to keras-tuner the trial
# then ends like an early-stopped one (COMPLETED, scored at its best epoch, its weights kept), and hpstudy reads it
# as PRUNED.
class Pruner(keras.callbacks.Callback):
    """Applies the study's pruning rule to one trial at the end of each epoch; holds only plain values until
    training starts (keras-tuner deep-copies callbacks). `pruned_at` is the epoch it stopped the trial at.
    `search`: the study's search section (its pruning rule, objective and direction)."""

    def __init__(self, search: SearchSpec, layout: Layout, trial_id: str):
        super().__init__()
        self.spec, self.layout, self.trial_id, self.objective = search.pruning, layout, trial_id, search.objective
        self.minimize = search.minimize
        self.values: list[float] = []
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        """Record the epoch's objective; where the rule looks (never at a fit's last epoch), maybe stop."""
        self.values.append(float((logs or {}).get(self.objective, math.nan)))
        number = epoch + 1
        # A fit that ends here anyway (early stopping, the NaN guard, before this in the callbacks) is not cut short.
        ending = self.model.stop_training or number >= self.params.get("epochs", 0)
        if self.spec is None or self.pruned_at is not None or ending or not is_due(self.spec, number):
            return
        value = best_so_far(self.values, self.minimize)[-1]
        others = other_trials(self.layout, self.trial_id, self.objective, self.minimize)
        decision = RULES[self.spec.rule](self.spec, number, value, others, self.objective, self.minimize)
        if decision is None:
            return
        # On disk before the trial ends: whoever reads the trial as ended (another worker) reads it as pruned.
        files.write_json(self.layout.pruned(self.trial_id), {
            "epoch": number, "rule": self.spec.rule, "reason": decision.reason, "objective": self.objective,
            "value": decision.value, "threshold": decision.threshold, "compared": decision.compared})
        self.pruned_at = number
        self.model.stop_training = True


def pruned(callbacks) -> bool:
    """Whether a Pruner among `callbacks` stopped its trial (the fine-tune phase is then skipped)."""
    return any(isinstance(c, Pruner) and c.pruned_at is not None for c in callbacks)


def best_trials(oracle, layout: Layout, count: int, *, stopped: dict | None = None) -> list:
    """The oracle's `get_best_trials(count)` with the pruned trials after every other completed trial (see
    trials.ranked_trials): the completed trials best first, then the pruned ones, then the rest.

    `stopped`: what is known of which completed trials search.pruning stopped (keras-tuner id -> bool), looked up
    and filled in: a run asks once per trial, not once per trial at every trial's end. Trials are looked at in
    rank order only until `count` completed ones were not pruned."""
    ranked = oracle.get_best_trials(len(oracle.trials))
    stopped = {} if stopped is None else stopped
    kept: list = []
    pruned: list = []
    rest: list = []
    for trial in ranked:
        if trial.status != TrialStatus.COMPLETED:
            rest.append(trial)
            continue
        if trial.trial_id not in stopped:
            stopped[trial.trial_id] = os.path.lexists(layout.pruned(trial.trial_id))
        (pruned if stopped[trial.trial_id] else kept).append(trial)
        if len(kept) >= count:
            break
    return (kept + pruned + rest)[:count]
