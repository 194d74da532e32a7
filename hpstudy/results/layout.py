"""The layout of a results folder: every path inside one is spelled here, and every other module asks `Layout`.

Every file hpstudy writes here is written to a temporary name and renamed into place (`files`). The folders listed
here are listed by `Layout`, which never follows a link out of the results folder and names a broken link or a link
loop (`files.resolve_inside`) instead of passing over it.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePath

from hpstudy import files
from hpstudy.text import exception_line

# Bumped when what a folder holds changes meaning: 2, normalization and augmentation moved in front of the
# builder's model; 3, best.json's best_epoch counts from 1 (format-2 folders are still read).
FORMAT = 3
TUNER_TRIAL_FILE = "trial.json"           # keras-tuner's record of a trial, in tuner/trial_<id>/
CHECKPOINT = "checkpoint.weights.h5"      # keras-tuner's weights of a trial's kept epoch, in tuner/trial_<id>/
CHIEF = "chief"                           # the chief's name among the workers' files


# Below the top, what hpstudy (and keras-tuner for it) writes, as patterns of paths relative to the folder.
_OWNED_FILES = re.compile("|".join((
    r"trials/\d+/(history_\d+\.csv|execution_\d+\.json|summary\.txt|failure\.txt|pruned\.json|starts\.json)",
    r"repeats/\d+/seed_\d+\.json",
    r"workers/[^/]+\.json",                                  # heartbeats and chief.json
    r"tuner/[^/]+\.json",                                    # the oracle's and each tuner's state
    r"tuner/trial_\d+/(trial\.json|build_config\.json|checkpoint[^/]*)",
    r"tensorboard/\d+/execution\d+/((train|validation)/)?events\.out\.tfevents\.[^/]+",
)))
_OWNED_FOLDERS = re.compile(r"trials/\d+|repeats/\d+|tuner/trial_\d+"
                            r"|tensorboard/\d+(/execution\d+(/(train|validation))?)?")


_TOP_FOLDERS = ("tuner", "trials", "tensorboard", "workers", "repeats")
_TOP_FILES = ("spec", "env", "table", "best_model", "best", "importance", "repeats_table", "marker", "lock")
_TOP_LEVEL = _TOP_FOLDERS + _TOP_FILES


def trial_number(trial_id) -> str:
    """A trial's plain number: keras-tuner pads its ids to the width of max_trials ("0007"), which changes
    when a study is extended, so tables, folders and the API use the number alone ("7")."""
    return str(int(trial_id))


# What a results folder holds:
# results/<name>/
#   spec.yaml            the resolved study (every default filled in)
#   env.json             versions, backend, devices, machine
#   tuner/               keras-tuner's project: oracle.json, trial_<id>/trial.json, checkpoints (best k kept)
#   trials/<n>/          per execution: history_<k>.csv (per epoch), execution_<k>.json (time, size, worker);
#                        summary.txt (the model), failure.txt (why it failed), starts.json (starts not finished),
#                        pruned.json (search.pruning stopped it: the epoch, the rule, the reason, the trials compared)
#   trials.csv           the trials table, rewritten after every trial
#   best.keras           the best trial's model (kept epoch), loadable with plain Keras
#   best.json            which trial that is, its hyperparameters and test-set metrics
#   importance.json      the report's importance ranking of these trials (a cache)
#   repeats/<n>/         seed_<seed>.json: one seed repeat of trial n's configuration (search.confirm)
#   repeats.csv          every repeat, one row each, rewritten as repeats end
#   tensorboard/         TensorBoard logs, when callbacks.tensorboard is on
#   workers/             distributed studies: <worker>.json heartbeats and chief.json, the chief's state
#   .hpstudy             the marker that proves hpstudy made this folder (the only kind --overwrite deletes)
#   .hpstudy.lock        held (fcntl.flock) by the run that uses the folder, so no second run can
@dataclass(frozen=True)
class Layout:
    """Paths inside one study's results folder."""

    root: Path

    spec = property(lambda self: self.root / "spec.yaml")
    env = property(lambda self: self.root / "env.json")
    tuner = property(lambda self: self.root / "tuner")
    trials = property(lambda self: self.root / "trials")
    table = property(lambda self: self.root / "trials.csv")
    best_model = property(lambda self: self.root / "best.keras")
    best = property(lambda self: self.root / "best.json")
    tensorboard = property(lambda self: self.root / "tensorboard")
    importance = property(lambda self: self.root / "importance.json")
    workers = property(lambda self: self.root / "workers")
    repeats = property(lambda self: self.root / "repeats")
    repeats_table = property(lambda self: self.root / "repeats.csv")
    marker = property(lambda self: self.root / ".hpstudy")
    lock = property(lambda self: self.root / ".hpstudy.lock")

    def owned_names(self) -> set[str]:
        """The names of everything hpstudy writes at the top of a results folder (temporary files aside)."""
        return {getattr(self, name).name for name in _TOP_LEVEL}

    @staticmethod
    def is_temporary(name: str) -> bool:
        """Whether `name` is one of the temporary files hpstudy writes before renaming them into place."""
        return name.startswith(".") and (name.endswith(".tmp") or name.endswith(".tmp.keras"))

    chief_state = property(lambda self: self.workers / f"{CHIEF}.json")

    def is_owned(self, relative: PurePath, *, folder: bool) -> bool:
        """Whether `relative` (a path inside the results folder) is a name hpstudy, or keras-tuner for it, writes
        there, as a folder (`folder`) or as a file: what `--overwrite` and a trial's restart may delete."""
        parts = PurePath(relative).parts
        if len(parts) == 1:
            top = {getattr(self, name).name for name in (_TOP_FOLDERS if folder else _TOP_FILES)}
            return parts[0] in top or (not folder and self.is_temporary(parts[0]))
        path = "/".join(parts)
        if folder:
            return _OWNED_FOLDERS.fullmatch(path) is not None
        inside = "/".join(parts[:-1])
        in_owned_folder = inside in _TOP_FOLDERS or _OWNED_FOLDERS.fullmatch(inside) is not None
        return _OWNED_FILES.fullmatch(path) is not None or (in_owned_folder and self.is_temporary(parts[-1]))

    def first_foreign(self, folder: Path | None = None) -> PurePath | None:
        """The first path below `folder` (default: the whole results folder; in sorted order, links never
        followed) that is not a name hpstudy writes there, or None when every entry is hpstudy's. A folder that
        cannot be listed is returned too: nothing in it can be proven."""
        folder = Path(folder or self.root)
        here = folder.relative_to(self.root)
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            return here
        for entry in entries:
            path = here / entry.name
            if entry.is_symlink():          # judged by its name, never followed: deleting it deletes the link only
                owned = self.is_owned(path, folder=False) or self.is_owned(path, folder=True)
            else:
                owned = self.is_owned(path, folder=entry.is_dir())
            found = None if not owned else \
                self.first_foreign(Path(entry.path)) if entry.is_dir(follow_symlinks=False) else None
            if not owned or found is not None:
                return path if not owned else found
        return None


    # ------------------------------------------------------------ hpstudy's files of one trial
    def trial(self, trial_id) -> Path:
        """trials/<n>/: hpstudy's files of one trial."""
        return self.trials / trial_number(trial_id)

    def history(self, trial_id, execution: int = 0) -> Path:
        """One execution's per-epoch metrics (CSV)."""
        return self.trial(trial_id) / f"history_{execution}.csv"

    def execution(self, trial_id, execution: int = 0) -> Path:
        """One execution's record: epochs run, seconds, parameters, FLOPs, worker (JSON)."""
        return self.trial(trial_id) / f"execution_{execution}.json"

    def executions(self, trial_id) -> list[Path]:
        """The execution records a trial has, in order."""
        return self.entries(self.trial(trial_id), "execution_*.json")

    def summary(self, trial_id) -> Path:
        """The trial's model summary (text)."""
        return self.trial(trial_id) / "summary.txt"

    def failure(self, trial_id) -> Path:
        """Why the trial failed (keras-tuner's traceback), kept since gRPC messages drop it."""
        return self.trial(trial_id) / "failure.txt"

    def pruned(self, trial_id) -> Path:
        """Why search.pruning stopped the trial, and at which epoch (JSON; absent when it was not stopped)."""
        return self.trial(trial_id) / "pruned.json"

    def starts(self, trial_id) -> Path:
        """How many starts of the trial have not finished (a count, JSON)."""
        return self.trial(trial_id) / "starts.json"

    def repeat(self, trial_id, seed: int) -> Path:
        """One seed repeat of a trial's configuration (JSON)."""
        return self.repeats / trial_number(trial_id) / f"seed_{int(seed)}.json"

    def repeat_files(self) -> list[Path]:
        """Every repeat's record, in order of trial and seed."""
        def order(path):
            seed = path.stem[len("seed_"):]
            return (int(path.parent.name) if path.parent.name.isdigit() else -1, int(seed) if seed.isdigit() else -1)
        return sorted((file for folder in self.entries(self.repeats, "*")
                       if folder.is_dir()                        # notes beside: not ours
                       for file in self.entries(folder, "seed_*.json")), key=order)

    def heartbeat(self, worker: str) -> Path:
        """A worker's heartbeat file (JSON)."""
        return self.workers / f"{worker}.json"

    def entries(self, folder: Path, pattern: str) -> list[Path]:
        """The entries of `folder` (a folder of this results folder) whose names match `pattern`, sorted; a
        ResultsError naming the folder, or an entry, that is a broken symbolic link, a link loop or a link out of
        the results folder, rather than passing over it (or listing what lies outside)."""
        try:
            if not os.path.lexists(folder):
                return []
            what = files.not_a_file(os.stat(files.resolve_inside(folder, self.root)).st_mode)
            if what != "a folder":
                raise files.Refused(f"is {what or 'a file'}, not a folder")
            names = sorted(name for name in os.listdir(folder)
                           if fnmatch.fnmatchcase(name, pattern) and not name.startswith("."))   # as glob: no hidden
        except files.Refused as err:
            raise files.damaged(folder, err.reason) from None
        except OSError as err:
            raise files.damaged(folder, f"cannot be listed ({exception_line(err)})") from None
        for name in names:
            if os.path.islink(folder / name):
                try:
                    files.resolve_inside(folder / name, self.root)
                except files.Refused as err:
                    raise files.damaged(folder / name, err.reason) from None
        return [folder / name for name in names]

    # ------------------------------------------------------------ keras-tuner's files of one trial
    def tuner_trials(self) -> list[Path]:
        """keras-tuner's trial records (trial_<id>/trial.json), in the order of their folders' names."""
        found = []
        for folder in self.entries(self.tuner, "trial_*"):
            if not folder.is_dir():         # a trial that would vanish from every table: named instead
                raise files.damaged(folder, f"is {files.not_a_file(os.stat(folder).st_mode) or 'a file'}, not a folder")
            if os.path.lexists(folder / TUNER_TRIAL_FILE):
                found.append(folder / TUNER_TRIAL_FILE)
        return found

    def tuner_trial(self, trial_id) -> Path | None:
        """keras-tuner's folder of one trial (its id padded to any width: trial_0007), or None."""
        number = trial_number(trial_id)
        for folder in self.entries(self.tuner, "trial_*"):
            suffix = folder.name[len("trial_"):]
            if suffix.isdigit() and trial_number(suffix) == number:
                return folder
        return None

    def checkpoint(self, trial_id) -> Path | None:
        """keras-tuner's best-epoch weights of one trial, or None when it has no folder."""
        folder = self.tuner_trial(trial_id)
        return folder / CHECKPOINT if folder else None

    # A run knows its trials by keras-tuner's own ids (the oracle's, "0007"), which name their folders exactly: it
    # finds their files without listing tuner/, so that a trial's end costs the same at any number of trials.
    def record_of(self, tuner_id: str) -> Path:
        """keras-tuner's record (trial.json) of the trial whose keras-tuner id is `tuner_id` (tuner/trial_<id>/)."""
        return self.tuner / f"trial_{_plain_id(tuner_id)}" / TUNER_TRIAL_FILE

    def checkpoint_of(self, tuner_id: str) -> Path:
        """keras-tuner's weights file of the trial whose keras-tuner id is `tuner_id` (tuner/trial_<id>/)."""
        return self.tuner / f"trial_{_plain_id(tuner_id)}" / CHECKPOINT


def _plain_id(tuner_id) -> str:
    """A keras-tuner trial id as it names a folder: digits only (never a path)."""
    text = str(tuner_id)
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(f"not a keras-tuner trial id: {text!r}")
    return text
