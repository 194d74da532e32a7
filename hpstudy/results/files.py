"""Reading and writing the files of a results folder: every write is atomic. `read_json` is lenient (a missing
or half-readable file is None: heartbeats, a study still running); `read_record` is strict: a file hpstudy wrote
that is damaged (not UTF-8, not JSON, a folder, or JSON of the wrong shape) is a ResultsError naming it."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from pathlib import Path

from hpstudy.errors import DiskFull, ResultsError
from hpstudy.text import json_ready

NUMBER = (int, float)        # a JSON number (bool is refused apart: it is an int to Python)
# What a write that found no room fails with: the disk full, a quota, or the process's file-size limit; h5py
# (Keras's weights files) reports it only in its message text.
NO_ROOM = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exceeded",
           errno.EFBIG: "the file is too large for this file system or process"}
_NO_ROOM_TEXT = re.compile(r"errno = (\d+)|No space left on device|Disk quota exceeded|File too large")
DAMAGED = "the results folder is damaged: restore the file from a copy, or start the study over (hpstudy run --overwrite)"


def write_text(path: Path, text: str) -> None:
    """Write atomically: a reader (or a crash) sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with no_room_is_one_line(path):
        # A name of its own: the workers of a distributed study write the same files at the same time.
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def replace(tmp: Path, path: Path) -> None:
    """Put the written file `tmp` in the place of `path` (os.replace): a folder where the file goes is a
    ResultsError naming it, and the folder is left as it is."""
    try:
        os.replace(tmp, path)
    except OSError as err:
        if no_room(err) is None and os.path.isdir(path):
            raise damaged(path, "is a folder, not a file, so it cannot be written",
                          "move it away and run the same command again: hpstudy writes the file anew") from None
        raise


def no_room(err: BaseException) -> str | None:
    """What a write failed with, when it (or an error it caused) found no room on the disk; else None."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, DiskFull) or (isinstance(err, OSError) and err.errno in NO_ROOM):
            return NO_ROOM.get(getattr(err, "errno", None), str(err))
        for found in _NO_ROOM_TEXT.finditer(str(err)):
            code = int(found.group(1)) if found.group(1) else None
            if code is None or code in NO_ROOM:
                return NO_ROOM.get(code, found.group(0))
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


def read_text(path: Path) -> str | None:
    """A text file's content, or None when it is missing or unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def read_json(path: Path):
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def damaged(path, what: str, hint: str = "") -> ResultsError:
    """The one-line error of a damaged file of a results folder: the file, what is wrong, the way out."""
    return ResultsError(f"{path}: {what}; {hint or DAMAGED}")


def read_record(path: Path, expected: type = dict, fields: dict | None = None, *, hint: str = ""):
    """A JSON file hpstudy (or keras-tuner) wrote, checked: None when it does not exist; a ResultsError naming it
    when it cannot be read, is not JSON, is not `expected` (dict or list), or one of `fields` (dotted key ->
    allowed types; None among them allows null; a key may be absent) has another type. `hint` is the way out."""
    path = Path(path)
    if not os.path.lexists(path):
        return None
    try:
        text = path.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise damaged(path, "is a folder, not a file", hint) from None
    except FileNotFoundError:
        raise damaged(path, f"is a broken symbolic link (to {os.readlink(path)})", hint) from None
    except OSError as err:
        raise damaged(path, f"cannot be read ({err.strerror or err})", hint) from None
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
        check_field(path, data, key, allowed, hint)
    return data


def check_field(path, data, key: str, allowed, hint: str = ""):
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
    if (value is None and nullable) or (isinstance(value, types) and not (isinstance(value, bool) and bool not in types)):
        return value
    wanted = " or ".join(dict.fromkeys(_kind(t) for t in types)) + (" or null" if nullable else "")
    raise damaged(path, f"is corrupt ({key!r} is {_kind(type(value))}{_shown(value)}, expected {wanted})", hint)


def _kind(kind: type) -> str:
    return {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false",
            type(None): "null"}.get(kind, kind.__name__)


def _shown(value) -> str:
    text = json.dumps(value)
    return f" ({text[:40]}{'...' if len(text) > 40 else ''})" if value is not None else ""
