"""Reading and writing hpstudy's files (a results folder's, and the study file): every write is atomic. `read_json`
is lenient (a missing or half-readable file is None: heartbeats, a study still running); `read_record` is strict: a
file hpstudy wrote that is damaged (not UTF-8, not JSON, a folder, or JSON of the wrong shape) is a ResultsError
naming it. Every read goes through `read_bytes`."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path

from hpstudy.errors import DiskFull, ResultsError
from hpstudy.text import exception_line, json_ready

NUMBER = (int, float)        # a JSON number (bool is refused apart: it is an int to Python)
# What a write that found no room fails with: the disk full, a quota, or the process's file-size limit; h5py
# (Keras's weights files) reports it only in its message text.
NO_ROOM = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exceeded",
           errno.EFBIG: "the file is too large for this file system or process"}
_NO_ROOM_TEXT = re.compile(r"errno = (\d+)|No space left on device|Disk quota exceeded|File too large")
MiB = 1 << 20
# The most hpstudy reads of each kind of file: far above what it writes (a trial's JSON is a few kB, a history a
# few kB per hundred epochs), far below what would take minutes or the machine's memory to read.
CAPS = {"study file": 1 * MiB, "JSON record": 32 * MiB, "history": 16 * MiB, "text file": 4 * MiB}
DAMAGED = ("the results folder is damaged: restore the file from a copy, or start the study over "
           "(hpstudy run --overwrite)")


def write_text(path: Path, text: str) -> None:
    """Write atomically: a reader (or a crash) sees the old file or the new one, never half."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` atomically (see `write_text`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with no_room_is_one_line(path):
        # A name of its own: the workers of a distributed study write the same files at the same time.
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def temporary_beside(path: Path, suffix: str = ".tmp") -> Path:
    """A new empty file of hpstudy's own beside `path`, for a writer that needs a file name (Keras's model.save):
    made anew, so a link planted at a fixed temporary name is never written through. Rename it onto `path`."""
    handle, tmp = tempfile.mkstemp(dir=Path(path).parent, prefix=f".{Path(path).stem}.", suffix=suffix)
    os.close(handle)
    return Path(tmp)


def replace(tmp: str | Path, path: Path) -> None:
    """Put the written file `tmp` in the place of `path` (os.replace): a folder where the file goes is a
    ResultsError naming it, and the folder is left as it is."""
    try:
        os.replace(tmp, path)
    except OSError as err:
        if no_room(err) is None and os.path.isdir(path):
            raise damaged(path, "is a folder, not a file, so it cannot be written",
                          "move it away and run the same command again: hpstudy writes the file anew") from None
        raise


def no_room(err: BaseException | None) -> str | None:
    """What a write failed with, when it (or an error it caused) found no room on the disk; else None."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, DiskFull) or (isinstance(err, OSError) and err.errno in NO_ROOM):
            code = getattr(err, "errno", None)
            return NO_ROOM[code] if code in NO_ROOM else str(err)
        for found in _NO_ROOM_TEXT.finditer(str(err)):
            code = int(found.group(1)) if found.group(1) else None
            if code is None or code in NO_ROOM:
                return found.group(0) if code is None else NO_ROOM[code]
        err = err.__cause__ or err.__context__
    return None


@contextlib.contextmanager
def no_room_is_one_line(where: Path):
    """Turn a write that found no room on the disk, anywhere inside, into DiskFull naming `where`."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as err:
        reason = no_room(err)
        if reason is None:
            raise
        raise DiskFull(f"{where}: cannot write ({reason}); what was written before is kept: make room and run "
                       "the same command again to resume") from None


def write_json(path: Path, data) -> None:
    """Write `data` as indented standard JSON, atomically: NaN and infinities are written as null (JSON has no
    NaN; Python's `NaN` token is refused by most readers)."""
    write_text(path, json.dumps(json_ready(data), indent=2, default=str, allow_nan=False) + "\n")


class Refused(OSError):
    """A file `read_bytes` will not read; `reason` says why, to follow the file's name in a one-line message."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_SPECIAL = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"))


def not_a_file(mode: int) -> str | None:
    """What a file of `mode` is when it is not a regular file ("a named pipe (FIFO)", "a folder"...), else None."""
    return None if stat.S_ISREG(mode) else next((what for test, what in _SPECIAL if test(mode)), "not a regular file")


def results_root(path: Path) -> Path:
    """The results folder `path` lies in: its nearest parent (as written) holding the folder's marker or spec.yaml,
    else its own folder. Callers that know the folder pass it to `read_bytes` instead."""
    path = Path(os.path.abspath(path))
    for parent in path.parents:
        if os.path.lexists(parent / ".hpstudy") or os.path.lexists(parent / "spec.yaml"):
            return parent
    return path.parent


def resolve_inside(path: Path, root: Path | None = None, *, inside: bool = True) -> str:
    """`path` with every symbolic link resolved, checked (with `inside`) to stay inside the results folder `root`
    (default: the one it lies in); a Refused saying why not (a broken link, a link loop, a link out of the folder)."""
    path = Path(path)
    try:
        real = os.path.realpath(path, strict=True)
    except FileNotFoundError:
        target = os.readlink(path) if os.path.islink(path) else None
        raise Refused(f"is a broken symbolic link (to {target})" if target else "is missing") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise Refused("is a symbolic link loop") from None
        raise Refused(f"cannot be read ({exception_line(err)})") from None
    if not inside:
        return real
    top = os.path.realpath(root if root is not None else results_root(path))
    if os.path.commonpath([real, top]) != top:
        raise Refused(f"is a symbolic link out of the results folder (to {real}); hpstudy reads nothing outside it")
    return real


# One rule for everything hpstudy reads from a results folder: never through a symbolic link that leaves the folder,
# a regular file only (a named pipe, socket or device is refused before it is opened, and opened non-blocking so one
# swapped in cannot hang the reader), and no more than the cap of its kind.
def read_bytes(path: Path, kind: str = "JSON record", *, root: Path | None = None, inside: bool = True) -> bytes | None:
    """The bytes of `path`, None when it does not exist; a Refused when it is not a regular file (checked before it
    is opened), is larger than the cap of its `kind` (CAPS), or (with `inside`) is reached through a symbolic link
    that leaves the results folder `root` (default: the one it lies in)."""
    path = Path(path)
    if not os.path.lexists(path):
        return None
    cap = CAPS[kind]
    real = resolve_inside(path, root, inside=inside)
    try:
        what = not_a_file(os.stat(real).st_mode)
        if what:
            raise Refused(f"is {what}, not a file"
                          + ("" if what == "a folder" else "; hpstudy reads regular files only"))
        # Non-blocking: a named pipe swapped in since the check opens at once (and is refused below), never hangs.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except Refused:
        raise
    except OSError as err:
        raise Refused(f"cannot be read ({exception_line(err)})") from None
    with os.fdopen(fd, "rb") as handle:
        facts = os.fstat(fd)
        what = not_a_file(facts.st_mode)
        if what:
            raise Refused(f"is {what}, not a file; hpstudy reads regular files only")
        if facts.st_size > cap:
            raise Refused(f"is too large ({_size(facts.st_size)}; the cap for a {kind} is {_size(cap)})")
        data = handle.read(cap + 1)
    if len(data) > cap:         # grew since it was measured
        raise Refused(f"is too large (over {_size(cap)}, the cap for a {kind})")
    return data


def _size(count: int) -> str:
    return f"{count / MiB:.0f} MiB" if count >= MiB else f"{count} bytes"


def read_text(path: Path, kind: str = "text file", *, root: Path | None = None) -> str | None:
    """A text file's content, or None when it is missing or unreadable (by the rule of `read_bytes`)."""
    try:
        data = read_bytes(path, kind, root=root)
        return data.decode("utf-8") if data is not None else None
    except (OSError, UnicodeDecodeError):
        return None


def read_json(path: Path, *, root: Path | None = None):
    """A JSON file's content, or None when it is missing or unreadable (by the rule of `read_bytes`)."""
    try:
        data = read_bytes(path, root=root)
        return json.loads(data.decode("utf-8")) if data is not None else None
    except (OSError, ValueError, RecursionError):
        return None


def damaged(path, what: str, hint: str = "") -> ResultsError:
    """The one-line error of a damaged file of a results folder: the file, what is wrong, the way out."""
    return ResultsError(f"{path}: {what}; {hint or DAMAGED}")


def read_record(path: Path, expected: type = dict, fields: dict | None = None, *, hint: str = "",
                root: Path | None = None):
    """A JSON file hpstudy (or keras-tuner) wrote, checked: None when it does not exist; a ResultsError naming it
    when it cannot be read (by the rule of `read_bytes`, inside results folder `root`), is not JSON, is not
    `expected` (dict or list), or one of `fields` (dotted key -> allowed types; None among them allows null; a key
    may be absent) has another type. `hint` is the way out."""
    path = Path(path)
    try:
        data = read_bytes(path, root=root)
        if data is None:
            return None
        text = data.decode("utf-8")
    except Refused as err:
        raise damaged(path, err.reason, hint) from None
    except OSError as err:
        raise damaged(path, f"cannot be read ({exception_line(err)})", hint) from None
    except UnicodeDecodeError:
        raise damaged(path, "is corrupt (not UTF-8 text)", hint) from None
    try:
        data = json.loads(text)
    except ValueError as err:
        what = "is empty" if not text.strip() else f"is corrupt (not valid JSON: {err})"
        raise damaged(path, what, hint) from None
    except RecursionError:
        raise damaged(path, "is corrupt (JSON nested too deeply)", hint) from None
    if not isinstance(data, expected):
        raise damaged(path, f"is corrupt (expected {_kind(expected)}, found {_kind(type(data))})", hint)
    for key, allowed in (fields or {}).items():
        check_record_field(path, data, key, allowed, hint)
    return data


def check_record_field(path, data, key: str, allowed, hint: str = ""):
    """The value of dotted `key` in `data` (None when absent), or a ResultsError naming `path` when it is not one
    of the `allowed` types."""
    allowed = allowed if isinstance(allowed, tuple) else (allowed,)
    value = data
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    nullable = None in allowed
    types = tuple(t for t in allowed if t is not None)
    bool_as_number = isinstance(value, bool) and bool not in types
    if (value is None and nullable) or (isinstance(value, types) and not bool_as_number):
        return value
    wanted = " or ".join(dict.fromkeys(_kind(t) for t in types)) + (" or null" if nullable else "")
    raise damaged(path, f"is corrupt ({key!r} is {_kind(type(value))}{_shown(value)}, expected {wanted})", hint)


def _kind(kind: type) -> str:
    return {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false",
            type(None): "null"}.get(kind, kind.__name__)


def _shown(value) -> str:
    text = json.dumps(value)
    return f" ({text[:40]}{'...' if len(text) > 40 else ''})" if value is not None else ""
