"""Paths a user gives: what is there, and OSErrors (no permission, a file in the way) as one-line DataErrors.

On Python 3.11 ``Path.is_dir()`` and friends raise PermissionError when a folder on the way cannot
be entered. Code below the entry points (``load``, ``download``, the listing) may let such an
OSError through; ``os_errors_as_data_errors()`` turns it into a DataError naming the path
there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from hpstudy.errors import DataError
from hpstudy.text import exception_line

_ABSENT = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG)


_FIX = "check its permissions and those of the folders above it"


def quoted(path) -> str:
    """A path or name as it may stand in a one-line message: as it is when every character is printable, else
    as Python's repr (a newline, a control character or an undecodable byte shown as an escape), so that no
    name can split an error line or forge one."""
    text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
    return text if text.isprintable() else repr(text)


def what_is(mode: int) -> str:
    """What a file of ``mode`` (os.stat's st_mode) that is not a regular file is, in words: "a named pipe (FIFO)"."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path, fix: str = _FIX):
    """``path`` opened for reading in binary if it is a regular file; else a one-line DataError ending in ``fix``.

    A named pipe, a socket or a device is refused before it is opened (reading one could block forever or
    never end); the opened file is checked again (it might have been swapped in the meantime) and is opened
    without blocking, so even a pipe put there at the last moment cannot hang.
    """
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise DataError(f"{quoted(path)}: is {what_is(mode)}, not a regular file; {fix}")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise DataError(f"{quoted(path)}: is {what_is(mode)}, not a regular file; {fix}")
            if hasattr(os, "set_blocking"):
                os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
    except OSError as e:
        raise unreadable(e, fix) from e


def unreadable(e: OSError, fix: str = _FIX) -> DataError:
    """A one-line DataError for an OSError met while reading: the path, the reason, what to do."""
    where = e.filename if e.filename is not None else "a data file"
    return DataError(f"{quoted(where)}: cannot read it ({exception_line(e)}); {fix}")


@contextlib.contextmanager
def os_errors_as_data_errors(fix: str = _FIX):
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


def _not_regular(path) -> str:
    """"is a named pipe (FIFO), not a regular file" (or whatever else ``path`` is)."""
    try:
        return f"is {what_is(os.stat(path).st_mode)}, not a regular file"
    except OSError:
        return "is not a regular file"


def existing_folder(path: Path, fix: str) -> Path:
    """``path`` if it is a folder this process can list, else a DataError ending in ``fix``."""
    try:
        found = kind(path)
        if found == "folder":
            with os.scandir(path):
                return path
    except OSError as e:
        raise unreadable(e) from e
    what = {None: "no such folder", "file": "is a file, not a folder"}.get(found) or \
        _not_regular(path).replace("a regular file", "a folder")
    raise DataError(f"{quoted(path)}: {what}; {fix}")


def existing_file(path: Path, fix: str) -> Path:
    """``path`` if it is a file this process can read, else a DataError ending in ``fix``."""
    try:
        found = kind(path)
        if found == "file":
            with open(path, "rb"):
                return path
    except OSError as e:
        raise unreadable(e) from e
    what = {None: "no such file", "folder": "is a folder, not a file"}.get(found) or _not_regular(path)
    raise DataError(f"{quoted(path)}: {what}; {fix}")
