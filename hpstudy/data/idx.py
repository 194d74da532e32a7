"""IDX files, the format of MNIST and Fashion-MNIST, gzipped or not, read with numpy. The header is checked
before memory is spent (a header may declare terabytes); a file that is cut short, longer than its header says,
of the wrong type or shape, or a corrupt gzip is a one-line DataError naming the file.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from hpstudy.data import guard
from hpstudy.data.paths import open_regular, quoted
from hpstudy.errors import DataError
from hpstudy.text import exception_line

# An IDX file (http://yann.lecun.com/exdb/mnist/, "the IDX file format") is two zero bytes, a type code, the
# number of dimensions, each dimension as a big-endian 32-bit unsigned integer, then the values, big-endian,
# in row-major order.
# type code -> (dtype as stored, name in messages)
TYPES: dict[int, tuple[np.dtype, str]] = {
    0x08: (np.dtype("u1"), "unsigned byte"), 0x09: (np.dtype("i1"), "signed byte"),
    0x0B: (np.dtype(">i2"), "short"), 0x0C: (np.dtype(">i4"), "int"),
    0x0D: (np.dtype(">f4"), "float"), 0x0E: (np.dtype(">f8"), "double")}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 22
# What reading a damaged gzip stream raises: a bad header or CRC (BadGzipFile, an OSError), a cut stream
# (EOFError), garbled deflate data (zlib.error).
_GZIP_ERRORS = (OSError, EOFError, zlib.error)


class _Bad(Exception):
    """What is wrong with the file (the message), raised inside the reader and named with the file outside."""


def read(path, fix: str, *, ndim: int, what: str, code: int = 0x08) -> np.ndarray:
    """The array of ``ndim`` dimensions and type ``code`` (default unsigned bytes) that the IDX file ``path``
    holds, in native byte order (gunzipped as read when it is a gzip); ``what`` names it in messages
    ("images"), ``fix`` ends every message."""
    where = quoted(path)
    with open_regular(path, fix) as raw:
        zipped = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if zipped else raw
        try:
            with stream:
                shape, dtype = _header(stream, ndim, what, code)
                nbytes = math.prod(shape) * dtype.itemsize
                guard.check_fits(where, f"its header declares {'×'.join(map(str, shape))} {TYPES[code][1]}s,", nbytes)
                if not zipped:
                    _check_length(os.fstat(raw.fileno()).st_size - raw.tell(), nbytes)
                values = _values(stream, nbytes)
        except _Bad as e:
            raise DataError(f"{where}: {e}; {fix}") from None
        except _GZIP_ERRORS as e:
            if not zipped:
                raise
            reason = quoted(exception_line(e))
            raise DataError(f"{where}: corrupt gzip ({type(e).__name__}: {reason}); {fix}") from None
    return values.view(dtype).astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def _exactly(stream, n: int, part: str) -> bytes:
    """``n`` bytes of ``stream``; fewer is a file cut short in ``part``."""
    data = stream.read(n)
    if len(data) < n:
        raise _Bad(f"cut short in its {part} ({len(data)} of {n} bytes): not a complete IDX file")
    return data


def _header(stream, ndim: int, what: str, want: int) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the header, which must declare type ``want`` in ``ndim`` dimensions."""
    magic = _exactly(stream, 4, "header")
    if magic[:2] != b"\0\0":
        raise _Bad(f"not an IDX file (it starts with bytes {magic[:2].hex(' ')}, an IDX file with 00 00)")
    code, dims = magic[2], magic[3]
    if code not in TYPES:
        raise _Bad(f"unknown IDX type code 0x{code:02x} (known: {', '.join(f'0x{c:02x}' for c in TYPES)})")
    if code != want:
        raise _Bad(f"holds {TYPES[code][1]}s (type 0x{code:02x}); {what} are {TYPES[want][1]}s (type 0x{want:02x})")
    if dims != ndim:
        raise _Bad(f"holds an array of {dims} dimension{'' if dims == 1 else 's'}; {what} have {ndim}")
    shape = tuple(int(v) for v in np.frombuffer(_exactly(stream, 4 * dims, "dimensions"), ">u4"))
    return shape, TYPES[code][0]


def _check_length(stored: int, declared: int) -> None:
    """An uncompressed file holds exactly the values its header declares."""
    if stored < declared:
        raise _Bad(f"its header declares {declared} bytes of values but it holds {stored}: the file is cut short")
    if stored > declared:
        raise _Bad(f"holds more bytes than its header declares ({declared} bytes of values, {stored} stored)")


def _values(stream, nbytes: int) -> np.ndarray:
    """The ``nbytes`` bytes of values, read in chunks into one array; fewer or more is an error."""
    out = np.empty(nbytes, np.uint8)
    view, done = out.data, 0                   # a memoryview of `out`'s bytes
    while done < nbytes:
        got = stream.readinto(view[done:done + _CHUNK])
        if not got:
            raise _Bad(f"its header declares {nbytes} bytes of values but it holds {done}: the file is cut short")
        done += got
    if stream.read(1):    # one byte more, not the rest: a gzip bomb is never inflated
        raise _Bad(f"holds more bytes than its header declares ({nbytes} bytes of values)")
    return out
