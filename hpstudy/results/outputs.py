"""Files hpstudy writes for a user, outside its own records: a report, its figures, an exported model. Never
through a symbolic link, never onto what a results folder records (its spec, best model, trials, ...), and whole
or not at all (written to a temporary name, then renamed into place)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePath

from hpstudy import files
from hpstudy.errors import HpstudyError
from hpstudy.results.layout import Layout
from hpstudy.text import exception_line


def check(path: str | Path, what: str, *, folder: bool = False) -> Path:
    """`path` as a Path once it is a place hpstudy may write `what` ("the report", "the model"; a folder of them
    with `folder`), else an HpstudyError naming it: a symbolic link, a folder where a file goes, or a place among
    a results folder's own records."""
    path = Path(path)
    if path.is_symlink():
        raise HpstudyError(f"{path}: is a symbolic link (to {os.readlink(path)}); hpstudy never writes through one; "
                           f"give the real path for {what}")
    if path.is_dir() != folder and path.exists():
        raise HpstudyError(f"{path}: is {'not ' if folder else ''}a folder; give another path for {what}")
    recorded = _recorded(path)
    if recorded is not None:
        root, relative = recorded
        raise HpstudyError(f"{path}: is {relative}, among the records of the results folder {root}; nothing was "
                           f"written; give a path outside them for {what}")
    return path


def check_writable(folder: str | Path, what: str) -> None:
    """An HpstudyError naming `folder` and the reason unless a file can be made there now (one is made, then
    removed at once): before any work, rather than after minutes of it. The operating system's own answer (a
    read-only folder or file system, an immutable folder, a quota), which permission bits alone do not give."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".hpstudy.", suffix=".tmp")
    except OSError as err:
        raise HpstudyError(f"{folder}: cannot write {what} there ({exception_line(err)}); give a path in a folder "
                           "you can write") from None
    os.close(handle)
    os.unlink(probe)


def write_text(path: str | Path, text: str, what: str) -> Path:
    """Write `text` to `path` (checked by `check`), atomically."""
    return write_bytes(path, text.encode("utf-8"), what)


def write_bytes(path: str | Path, data: bytes, what: str) -> Path:
    """Write `data` to `path` (checked by `check`), atomically: a file already there is replaced, never truncated
    in place, so a failed write leaves it as it was."""
    path = check(path, what)
    try:
        files.write_bytes(path, data)
    except OSError as err:
        raise HpstudyError(f"{path}: cannot write {what} ({exception_line(err)})") from None
    return path


def _recorded(path: Path) -> tuple[Path, PurePath] | None:
    """(results folder, path inside it) when `path` is, or lies inside, something a results folder records."""
    try:
        target = path.parent.resolve() / path.name
    except (OSError, RuntimeError):          # a link loop among its parents: the write fails on its own
        return None
    for root in target.parents:
        layout = Layout(root)
        if layout.marker.is_file() or (layout.spec.is_file() and layout.trials.is_dir()):
            relative = target.relative_to(root)
            inside = [relative.parents[k] for k in range(len(relative.parts) - 1)]   # its folders, deepest first
            if layout.is_owned(relative, folder=False) or layout.is_owned(relative, folder=True) or \
                    any(layout.is_owned(folder, folder=True) for folder in inside):
                return root, relative
            return None
    return None
