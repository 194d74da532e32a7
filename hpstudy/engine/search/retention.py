"""Checkpoint retention: a long study keeps the weights of its best trials only, so it never fills the disk."""
from __future__ import annotations

from hpstudy.engine.search.pruning import best_trials
from hpstudy.results.layout import Layout, trial_number
from hpstudy.results.status import ENDED


class Retention:
    """A run's checkpoint retention, asked after each trial end: the checkpoints of ended trials outside the best
    `keep` ("all": none) are deleted, pruned trials ranked after the completed ones.

    It remembers what it has done: a trial's checkpoint is looked for (at the path keras-tuner wrote it, without
    listing tuner/) until the trial has ended and was deleted or found absent, and whether search.pruning stopped
    a completed trial is looked up once. So a trial's end costs file operations for the trials whose standing
    changed, not for every trial of the study.
    """

    def __init__(self, layout: Layout, keep):
        self.layout, self.keep = layout, keep
        self._gone: set[str] = set()            # keras-tuner ids of ended trials whose checkpoint is gone
        self._stopped: dict[str, bool] = {}     # keras-tuner id -> whether search.pruning stopped it

    def prune(self, oracle, *, search_over: bool = False) -> list[str]:
        """Delete the checkpoints no longer needed; returns the numbers of the trials whose weights were deleted.

        Until `search_over`, kept as well: the trials a search in progress may still load weights from (running,
        queued to run again, or in a Hyperband bracket in progress)."""
        if self.keep == "all":
            return []
        for trial_id, trial in oracle.trials.items():
            if trial.status not in ENDED:          # running (again): its files are being written
                self._gone.discard(trial_id)
                self._stopped.pop(trial_id, None)
        needed = {t.trial_id for t in best_trials(oracle, self.layout, self.keep, stopped=self._stopped)}
        if not search_over:
            needed |= oracle.still_needed()
        deleted = []
        for trial_id, trial in oracle.trials.items():
            if trial_id in needed or trial_id in self._gone or trial.status not in ENDED:
                continue
            checkpoint = self.layout.checkpoint_of(trial_id)
            if checkpoint.is_symlink() or checkpoint.is_file():     # never a folder there
                checkpoint.unlink()
                deleted.append(trial_number(trial_id))
            self._gone.add(trial_id)
        return deleted
