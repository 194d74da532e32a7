"""Paths a user gives: what is there, and OSErrors (no permission, a file in the way) as one-line DataErrors.

On Python 3.11 ``Path.is_dir()`` and friends raise PermissionError when a folder on the way cannot
be entered. Code below the entry points (``load``, ``download``, the listing) may let such an
OSError through; ``readable()`` turns it into a DataError naming the path there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from hpstudy.errors import DataError

_ABSENT = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG)


_FIX = "check its permissions and those of the folders above it"


def unreadable(e: OSError, fix: str = _FIX) -> DataError:
    """A one-line DataError for an OSError met while reading: the path, the reason, what to do."""
    where = e.filename if e.filename is not None else "a data file"
    return DataError(f"{os.fsdecode(where)}: cannot read it ({e.strerror or e}); {fix}")


@contextlib.contextmanager
def readable(fix: str = _FIX):
    """Inside this block an OSError becomes ``unreadable(e, fix)``."""
    try:
        yield
    except OSError as e:
        raise unreadable(e, fix) from e


def kind(path: Path | str) -> str | None:
    """"folder", "file" (a regular file), "other" (a device, a pipe) or None when nothing is there.

    Raises the OSError when the path cannot be looked at (a folder above it cannot be entered).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        if e.errno in _ABSENT:
            return None
        raise
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def existing_folder(path: Path, fix: str) -> Path:
    """``path`` if it is a folder this process can list, else a DataError ending in ``fix``."""
    try:
        found = kind(path)
        if found == "folder":
            with os.scandir(path):
                return path
    except OSError as e:
        raise unreadable(e) from e
    what = {None: "no such folder", "file": "is a file, not a folder"}.get(found, "is not a folder")
    raise DataError(f"{path}: {what}; {fix}")


def existing_file(path: Path, fix: str) -> Path:
    """``path`` if it is a file this process can read, else a DataError ending in ``fix``."""
    try:
        found = kind(path)
        if found == "file":
            with open(path, "rb"):
                return path
    except OSError as e:
        raise unreadable(e) from e
    what = {None: "no such file", "folder": "is a folder, not a file"}.get(found, "is not a regular file")
    raise DataError(f"{path}: {what}; {fix}")
