"""Checkpoint retention: a long study keeps the weights of its best trials only, so it never fills the disk."""
from __future__ import annotations

from hpstudy.engine.search.pruning import best_trials
from hpstudy.results.layout import Layout, trial_number
from hpstudy.results.status import ENDED


def prune_checkpoints(oracle, layout: Layout, keep, *, search_over: bool = False) -> list[str]:
    """Delete the checkpoints of finished trials outside the best `keep` ("all": delete none), pruned trials
    ranked after the completed ones.

    Until `search_over`, kept as well: the trials a search in progress may still load weights from (running,
    queued to run again, or in a Hyperband bracket in progress). Returns the numbers of the trials whose
    weights were deleted.
    """
    if keep == "all":
        return []
    needed = {t.trial_id for t in best_trials(oracle, layout, keep)}
    if not search_over:
        needed |= oracle.still_needed()
    deleted = []
    for trial_id, trial in list(oracle.trials.items()):
        if trial_id in needed or trial.status not in ENDED:
            continue
        checkpoint = layout.checkpoint(trial_id)
        if checkpoint is not None and (checkpoint.is_symlink() or checkpoint.is_file()):   # never a folder there
            checkpoint.unlink()
            deleted.append(trial_number(trial_id))
    return deleted
