"""What a dataset or an image file may make hpstudy spend, and quiet image decoding.

A file can declare more than it holds: a .npy header a terabyte of array, a zip member that inflates a
thousandfold, a PNG of 100000×100000 pixels, labels up to 2**62. Each is checked against a limit before
memory is spent, and refused with one line saying how much was declared.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

from hpstudy.errors import DataError

# The limits are far above real datasets (CIFAR-10's arrays are 180 MB, CINIC-10's 830 MB, ImageNet's 1000 classes).
MAX_CLASSES = 100_000           # labels 0 .. MAX_CLASSES - 1 (ImageNet-21k has 21,841 classes)
FALLBACK_MEMORY = 64 << 30      # where the available memory cannot be read (not Linux, no sysconf)
# Loading holds the arrays and one more copy (greyscale to RGB, the stratified splits): twice their size.
COPIES = 2


def size(n: int) -> str:
    """``n`` bytes as a short text: 812 bytes, 3.4 MB, 28.0 GB, 1.1 TB."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def available_memory() -> int:
    """Bytes of memory this process can still use: Linux's MemAvailable (bounded by a cgroup's limit),
    else the machine's physical memory, else FALLBACK_MEMORY."""
    found = []
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    with contextlib.suppress(OSError, ValueError):
        with open("/sys/fs/cgroup/memory.max", "rb") as f, open("/sys/fs/cgroup/memory.current", "rb") as g:
            limit = f.read().strip()
            if limit.isdigit():
                found.append(max(0, int(limit) - int(g.read().strip())))
    if not found:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            found.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return min(found) if found else FALLBACK_MEMORY


def check_fits(where: str, what: str, needed: int) -> None:
    """Refuse (a DataError naming ``where``) when ``COPIES`` times ``needed`` bytes exceed the available memory.

    ``what`` says what needs them, e.g. "array 'x_train' declares shape (…) of uint8,".
    """
    free = available_memory()
    if needed * COPIES > free:
        raise DataError(f"{where}: {what} {size(needed)}; loading it needs about {size(needed * COPIES)} "
                        f"but {size(free)} of memory is available: use a machine with more memory, or "
                        f"fewer or smaller images")


@contextlib.contextmanager
def quiet_images():
    """Inside this block Pillow's warnings (a decompression bomb's, a malformed APNG's, palette
    transparency, EXIF) and its log records are dropped: a bad image is an error, not stray lines."""
    logger = logging.getLogger("PIL")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
