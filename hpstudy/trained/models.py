"""The models of a study's trials, compiled, with their kept weights (search.checkpoint_epoch: best or last):
the best trial's is best.keras (loaded in Keras's safe mode); another completed trial's is rebuilt from its
hyperparameters and loaded with keras-tuner's checkpoint. Imports Keras: the API imports this module lazily.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import keras

import hpstudy.models  # noqa: F401 - registers hpstudy's layers and loss, which a saved model may hold
from hpstudy import files
from hpstudy.engine.search.hypermodel import load_checkpoint, make_hypermodel, trial_hyperparameters
from hpstudy.errors import ResultsError
from hpstudy.results import folder, trials
from hpstudy.results.layout import Layout
from hpstudy.text import exception_line

# The way out of a best.keras that cannot be loaded: `hpstudy run` saves it again from the best trial's checkpoint.
# The most a .keras file's members inflate to: its config and metadata (JSON, a few kB, read whole), its weights.
MEMBER_CAPS = {"JSON member": 16 * files.MiB, "member": 4096 * files.MiB, "archive": 4096 * files.MiB}
DAMAGED_MODEL = "delete it and run the study again (hpstudy run STUDY) to save it again from the best trial's weights"


def _layout(path: str | Path | Layout) -> Layout:
    return path if isinstance(path, Layout) else folder.open_folder(path)


def load_best(path: str | Path | Layout, rank: int = 0) -> keras.Model:
    """The `rank`-th best model of a study (0: the best, best.keras), compiled, with its trial's kept weights (its
    best epoch's, or its last's with search.checkpoint_epoch: last)."""
    layout = _layout(path)
    if rank != 0:
        return trial_model(layout, trials.trial_at_rank(layout, rank))
    return load_model_file(layout.best_model)


def load_model_file(file: Path) -> keras.Model:
    """A .keras file of a results folder, loaded in Keras's safe mode; a ResultsError naming it when it is missing,
    corrupt, or names code safe mode refuses (a Lambda layer's Python code, a function such as os.system)."""
    if not os.path.lexists(file):
        raise ResultsError(f"{file}: no best model yet; it is saved when a trial completes")
    try:
        what = files.not_a_file(os.stat(files.resolve_inside(file)).st_mode)
    except files.Refused as err:
        what = err.reason.removeprefix("is ")
    if what or not zipfile.is_zipfile(file):
        raise ResultsError(f"{file}: corrupt or unreadable, not a .keras model file ({what or 'not a zip archive'}); "
                           f"{DAMAGED_MODEL}")
    check_archive(file)
    try:
        return keras.saving.load_model(file, safe_mode=True)
    except (ValueError, TypeError) as err:
        # Without Keras's advice to turn safe mode off: a results folder may come from anyone.
        reason = exception_line(str(err).split(" If you trust")[0].split(" Make sure custom")[0])
        if isinstance(err, TypeError) or any(w in reason for w in ("safe_mode", "unsafe", "Lambda", "arbitrary code")):
            raise ResultsError(f"{file}: refused as unsafe: it names code Keras's safe mode does not load, which may "
                               f"be anyone's ({reason}); {DAMAGED_MODEL}") from None
        raise ResultsError(f"{file}: corrupt or unreadable ({reason}); {DAMAGED_MODEL}") from None
    except (OSError, KeyError, AttributeError, IndexError, EOFError, zipfile.BadZipFile, RuntimeError) as err:
        raise ResultsError(f"{file}: corrupt or unreadable ({exception_line(err, with_class=True)}); "
                           f"{DAMAGED_MODEL}") from None


def check_archive(file: Path) -> None:
    """A ResultsError naming `file` when a member of the .keras archive would inflate past the cap of its kind
    (MEMBER_CAPS; Keras reads its JSON members whole), or all of them past the archive's: checked on the sizes the
    archive declares before anything is inflated; the JSON members are then inflated within the cap, which checks
    the declared size (zipfile never inflates past it, and a wrong one fails its checksum)."""
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
            for info in members:
                kind = "JSON member" if info.filename.endswith(".json") else "member"
                if info.file_size > MEMBER_CAPS[kind]:
                    raise _too_large(file, f"its {kind} {info.filename!r} inflates to {_mib(info.file_size)}",
                                     f"the cap for a {kind} of a .keras file is {_mib(MEMBER_CAPS[kind])}")
                if kind == "JSON member":
                    with archive.open(info) as member:
                        member.read(MEMBER_CAPS[kind])
            total = sum(info.file_size for info in members)
            if total > MEMBER_CAPS["archive"]:
                raise _too_large(file, f"its members inflate to {_mib(total)}",
                                 f"the cap for a .keras file is {_mib(MEMBER_CAPS['archive'])}")
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as err:
        raise ResultsError(f"{file}: corrupt or unreadable ({exception_line(err, with_class=True)}); "
                           f"{DAMAGED_MODEL}") from None


def _too_large(file: Path, what: str, cap: str) -> ResultsError:
    return ResultsError(f"{file}: refused: {what} ({cap}); {DAMAGED_MODEL}")


def _mib(count: int) -> str:
    return f"{count / files.MiB:.0f} MiB"


def trial_model(path: str | Path | Layout, trial_id, *, dataset=None) -> keras.Model:
    """Trial `trial_id`'s model with its kept weights (search.checkpoint_epoch), compiled: rebuilt from the
    trial's hyperparameters and loaded with keras-tuner's checkpoint. `dataset` (the study's, from
    `hypermodel.load_data`) saves loading the data again when the study standardizes pixels (the statistics are not
    in the checkpoint)."""
    layout = _layout(path)
    number = trials.completed_trial(layout, trial_id)
    checkpoint = layout.checkpoint(number)
    if checkpoint is None or not checkpoint.exists():
        keep = folder.study_of(layout).search.keep_checkpoints
        raise ResultsError(f"{layout.root}: trial {number}'s weights were not kept (search.keep_checkpoints: {keep} "
                           "keeps those of the best trials only); rerun the study with a larger keep_checkpoints "
                           "to keep more")
    hp = trial_hyperparameters(layout, number)
    return load_checkpoint(make_hypermodel(folder.study_of(layout), dataset).build(hp), checkpoint)


def model_at_rank(path: str | Path | Layout, rank: int = 0, *, dataset=None) -> tuple[str, keras.Model]:
    """(trial number, compiled model) of the `rank`-th best completed trial (0: best.keras)."""
    layout = _layout(path)
    number = trials.trial_at_rank(layout, rank)
    if rank == 0:
        return number, load_best(layout)
    return number, trial_model(layout, number, dataset=dataset)
