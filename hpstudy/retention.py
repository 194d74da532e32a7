"""Checkpoint retention: a long study keeps the weights of its best trials only, so it never fills the disk."""
from __future__ import annotations

from hpstudy import results


def prune_checkpoints(oracle, layout: results.Layout, keep, *, search_over: bool = False) -> list[str]:
    """Delete the checkpoints of finished trials outside the best `keep` ("all": delete none).

    Until `search_over`, kept as well: trials still running or queued to run again, and trials a Hyperband
    bracket in progress may continue from (it loads their weights). Returns the numbers of the trials whose
    weights were deleted.
    """
    if keep == "all":
        return []
    needed = {t.trial_id for t in oracle.get_best_trials(keep)}
    if not search_over:
        needed |= {t.trial_id for t in oracle.ongoing_trials.values()} | set(oracle._retry_queue)
        for bracket in getattr(oracle, "_brackets", []):       # HyperbandOracle's brackets in progress
            for round_ in bracket["rounds"]:
                needed |= {entry["id"] for entry in round_}
    deleted = []
    for trial_id, trial in list(oracle.trials.items()):
        if trial_id in needed or trial.status not in ("COMPLETED", "FAILED", "INVALID"):
            continue
        checkpoint = layout.tuner / f"trial_{trial_id}" / results.CHECKPOINT    # keras-tuner names folders by its id
        if checkpoint.exists():
            checkpoint.unlink()
            deleted.append(results.trial_number(trial_id))
    return deleted
