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
import sys

from hpstudy.errors import ResultsError
from hpstudy.results.layout import Layout

try:
    import fcntl
except ImportError:       # Windows: no flock
    fcntl = None

_HELD_HERE: set = set()   # the folders whose lock this process holds


class FolderLock:
    """The lock of one results folder (a context manager); `acquire` refuses at once if another process has it."""

    def __init__(self, layout: Layout):
        self.layout, self.fd = layout, None

    def acquire(self) -> "FolderLock":
        """Take the lock, or raise ResultsError naming the process that holds it."""
        if fcntl is None:
            return self
        fd = os.open(self.layout.lock, os.O_RDWR | os.O_CREAT, 0o644)
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
        if self.fd is not None:
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
        fd = os.open(layout.lock, os.O_RDONLY)
    except OSError:
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


def _holder(fd: int) -> str:
    """Who holds the lock, as the lock file says."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8", errors="replace"))
        return f"process {int(info['pid'])} on {info['host']!r} since {info['since']} ({info['command'][:120]!r})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (an hpstudy run)"
