"""One run per results folder: an advisory lock (fcntl.flock) on a file inside it, held as long as the run.

The kernel drops the lock of a process that ends in any way (a kill included), so no lock is ever left stuck.
The file names the process holding it, for the one-line refusal another run gets. Where fcntl is missing (not
Linux or macOS) runs are not locked.
"""
from __future__ import annotations

import datetime
import json
import os
import socket
import stat
import sys
import types

from hpstudy.errors import ResultsError
from hpstudy.results.layout import Layout
from hpstudy.text import exception_line

fcntl: types.ModuleType | None
try:
    import fcntl
except ImportError:       # Windows: no flock
    fcntl = None

_HELD_HERE: set = set()   # the folders whose lock this process holds


class FolderLock:
    """The lock of one results folder (a context manager); `acquire` refuses at once if another process has it."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.fd: int | None = None                 # the open lock file while it is held

    def acquire(self) -> "FolderLock":
        """Take the lock, or raise ResultsError naming the process that holds it."""
        if fcntl is None:
            return self
        fd = open_lock_file(self.layout, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            raise ResultsError(f"{self.layout.root}: in use by {holder}; wait for it to end (or stop it), or use "
                               "another --results-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv),
                                 "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}).encode())
        self.fd = fd
        _HELD_HERE.add(self.layout.root.resolve())
        return self

    def release(self) -> None:
        """Let the folder go (the lock file stays: it is the lock, not a flag)."""
        if self.fd is not None and fcntl is not None:       # held only where fcntl is
            _HELD_HERE.discard(self.layout.root.resolve())
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def in_use(layout: Layout) -> bool:
    """Whether another process's run holds the folder's lock now: its files may be changing while they are read."""
    if fcntl is None or not layout.lock.is_file() or layout.root.resolve() in _HELD_HERE:
        return False
    try:
        fd = open_lock_file(layout, os.O_RDONLY)
    except (OSError, ResultsError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def open_lock_file(layout: Layout, flags: int) -> int:
    """Open the folder's lock file: never through a symbolic link (a received folder's lock may point anywhere),
    never blocking (a named pipe in its place), and only when it is a plain file of its own (not a folder, a
    device, or a hard link to a file elsewhere, which writing the holder would overwrite)."""
    path = layout.lock
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), 0o644)
    except OSError as err:
        what = "is a symbolic link" if os.path.islink(path) else \
            "is a folder" if os.path.isdir(path) else f"cannot be opened ({exception_line(err)})"
        raise _not_a_lock(path, what) from None
    found = os.fstat(fd)
    wrong = None if stat.S_ISREG(found.st_mode) else "is not a plain file (a named pipe, socket or device)"
    if wrong is None and found.st_nlink > 1:
        wrong = "is a hard link to another file"
    if wrong:
        os.close(fd)
        raise _not_a_lock(path, wrong)
    return fd


def _not_a_lock(path, what: str) -> ResultsError:
    return ResultsError(f"{path}: {what}, not hpstudy's lock file; nothing was written; remove it (hpstudy makes "
                        "its lock anew) and run the same command again")


def _holder(fd: int) -> str:
    """Who holds the lock, as the lock file says."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8", errors="replace"))
        return f"process {int(info['pid'])} on {info['host']!r} since {info['since']} ({info['command'][:120]!r})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (an hpstudy run)"
