"""A trial's status, defined once: keras-tuner's statuses and hpstudy's PRUNED, with the sets of statuses
that have ended and that have a score. Standard library only, so the command line may import it."""
from __future__ import annotations

import enum


class TrialStatus(str, enum.Enum):
    """A trial's status in the trials table, the progress lines and `hpstudy serve`. Each member is the string
    keras-tuner writes (`TrialStatus.COMPLETED == "COMPLETED"`), so it compares with what is read from a file."""

    RUNNING = "RUNNING"
    IDLE = "IDLE"                # keras-tuner: no trial to hand out yet, a worker asks again
    INVALID = "INVALID"
    FAILED = "FAILED"
    STOPPED = "STOPPED"          # keras-tuner: no more trials
    COMPLETED = "COMPLETED"
    # hpstudy's own: a trial search.pruning stopped. keras-tuner records it COMPLETED (so its oracle learns from
    # the score), and hpstudy reads it as PRUNED from the trial's pruned.json.
    PRUNED = "PRUNED"

    # The plain string wherever a status is printed or formatted (Python 3.12's Enum would show the member name).
    def __str__(self) -> str:
        return self.value

    def __format__(self, format_spec: str) -> str:
        return format(self.value, format_spec)


# The statuses with a score and the weights of a best epoch: the trials that can be ranked and loaded.
SCORED = frozenset({TrialStatus.COMPLETED, TrialStatus.PRUNED})
# The statuses of a trial that will not run again. One set serves keras-tuner's records and the trials table
# alike: a pruned trial is COMPLETED in keras-tuner's record and PRUNED in the table, ended in both.
ENDED = frozenset({*SCORED, TrialStatus.FAILED, TrialStatus.INVALID})
