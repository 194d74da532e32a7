"""User-facing errors: each is one line, printed without a traceback, exit code 2."""
# What the command line prints of values drawn from data: no control character reaches the terminal.
from hpstudy.text import one_line, terminal_text  # noqa: F401


class HpstudyError(Exception):
    """Base of every error a user can cause and fix (bad study file, missing data, ...)."""

    exit_code = 2


class SpecError(HpstudyError):
    """A study file is invalid: the message names the file, the dotted key and what is allowed."""


class DataError(HpstudyError):
    """A dataset is missing or malformed: the message names the file or folder."""


class ResultsError(HpstudyError):
    """A results folder is missing, incomplete or belongs to another study."""


class DiskFull(ResultsError):
    """The disk refused a write (full, over quota, or past the file-size limit): what was written before is kept,
    and the same command resumes once there is room."""


class SearchError(HpstudyError):
    """The search stopped: search.max_failed_trials trials failed in all (their reasons are in the trials table)."""


class ModelError(HpstudyError):
    """A model cannot be built from the given options (the message names the option)."""


class FreshProcessNeeded(Exception):
    """Raised between two trials when the process has grown by more than its memory allowance (TensorFlow keeps
    part of every model it trained): the command line then continues the study in a new process.

    Args:
        grown_mib: how much the process grew since its first trial, in MiB.
    """

    def __init__(self, grown_mib: float):
        super().__init__(f"memory grew by {grown_mib:.0f} MiB since this process's first trial")
        self.grown_mib = grown_mib
