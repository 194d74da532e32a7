"""Class-per-folder image trees: list the files in one pass, decode them in parallel into uint8 arrays.

A split folder holds one sub-folder per class (class names: the sorted sub-folder names); every
non-hidden file in a class folder is an image that Pillow can read. Names starting with "." are
ignored, as are loose files next to the class folders (a README, a labels.csv).
"""

from __future__ import annotations

import multiprocessing
import os
import stat
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hpstudy.data import guard
from hpstudy.data.core import Split
from hpstudy.data.paths import open_regular, quoted, what_is
from hpstudy.errors import DataError
from hpstudy.text import exception_line

# Below this many images a pool costs more to start than it saves.
_PARALLEL_MIN = 2000
_CHUNK = 1000   # images per task: big enough to amortise the pickling, small enough to balance
# Bilinear, as Pillow does it (antialiased when shrinking) and without ``reducing_gap`` (which
# trades accuracy for speed and would make the result depend on the original size): it does not
# overshoot like bicubic, and it is also Keras' default interpolation (keras.layers.Resizing).
_RESAMPLE = Image.Resampling.BILINEAR


@dataclass(frozen=True, eq=False)
class SplitFiles:
    """The image files of one split folder: ``files[i]`` (relative to ``folder``) has label ``labels[i]``."""

    folder: Path
    files: list[str]            # "class/name", class by class, each class sorted by name
    labels: np.ndarray          # int64
    stats: list[tuple[int, int]]  # (size in bytes, mtime in ns) of each file, for the cache fingerprint

    def paths(self) -> list[str]:
        """The full path of every file."""
        base = str(self.folder)
        return [os.path.join(base, f) for f in self.files]


def image_size_pair(image_size) -> tuple[int, int] | None:
    """``image_size`` (an int N for N×N, or (height, width), or None) as (height, width) or None."""
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                                 for v in pair):
        raise ValueError(f"image_size must be a positive integer or (height, width), got {image_size!r}")
    return int(pair[0]), int(pair[1])


def scan_splits(folders: dict[str, Path]) -> tuple[dict[str, SplitFiles], tuple[str, ...]]:
    """List the images of each split folder (``folders["train"]`` first); all must have train's classes."""
    train = Path(folders["train"])
    class_names = tuple(_class_folders(train))
    if len(class_names) < 2:
        raise DataError(f"{quoted(train)}: one class folder ({class_names[0]!r}); a classifier needs at least "
                        f"two classes: add a folder of images for each other class")
    for name, folder in folders.items():
        if name != "train":
            _check_same_classes(Path(folder), _class_folders(Path(folder)), class_names, train)
    return {name: _scan_split(Path(folder), class_names) for name, folder in folders.items()}, class_names


def _class_folders(folder: Path) -> list[str]:
    """The sorted names of the class folders in a split folder; none at all is an error."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if not e.name.startswith(".") and e.is_dir())
    except OSError as e:
        raise DataError(f"{quoted(folder)}: cannot read this folder ({exception_line(e)}); check the path "
                        f"in data.data_dir") from e
    if not names:
        raise DataError(f"{quoted(folder)}: no class folders here; put the images of each class in a "
                        f"sub-folder named after the class")
    return names


def _check_same_classes(folder: Path, names: list[str], class_names: tuple[str, ...], train: Path) -> None:
    """A validation or test split must have exactly the training classes."""
    missing = sorted(set(class_names) - set(names))
    if missing:
        raise DataError(f"{quoted(folder)}: no folder for class {missing[0]!r}, which {quoted(train)} has; every "
                        f"split needs the same class folders")
    extra = sorted(set(names) - set(class_names))
    if extra:
        raise DataError(f"{quoted(folder / extra[0])}: class {extra[0]!r} is not in {quoted(train)}; every split "
                        f"needs the same class folders")


def _scan_split(folder: Path, class_names: tuple[str, ...]) -> SplitFiles:
    """Every image in every class folder of ``folder``, with its size and modification time."""
    files, labels, stats = [], [], []
    for label, name in enumerate(class_names):
        entries = _class_files(folder / name)
        files += [f"{name}/{entry_name}" for entry_name, _ in entries]
        stats += [stat for _, stat in entries]
        labels.append(np.full(len(entries), label, np.int64))
    return SplitFiles(folder, files, np.concatenate(labels), stats)


def _class_files(folder: Path) -> list[tuple[str, tuple[int, int]]]:
    """(name, (size, mtime_ns)) of each image in one class folder, sorted by name."""
    found = []
    try:
        for entry in os.scandir(folder):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                raise DataError(f"{quoted(entry.path)}: a folder inside a class folder; the images must lie "
                                f"directly in the class folders (is data.data_dir one level too high?)")
            st = entry.stat()  # follows symbolic links, like the decoder will
            if not stat.S_ISREG(st.st_mode):   # a named pipe would block the decoder forever
                raise DataError(f"{quoted(entry.path)}: is {what_is(st.st_mode)}, not a regular file; the "
                                f"class folders must hold only image files: remove it")
            found.append((entry.name, (st.st_size, st.st_mtime_ns)))
    except OSError as e:
        raise DataError(f"{quoted(e.filename or folder)}: cannot read it ({exception_line(e)}); fix or remove "
                        "it") from e
    if not found:
        raise DataError(f"{quoted(folder)}: empty class folder; add its images or remove the folder")
    return sorted(found)


def read_splits(files: dict[str, SplitFiles], image_size=None, expect: tuple[int, int] | None = None,
                workers: int | None = None) -> dict[str, Split]:
    """Decode the images of each split (train first) into Splits (see ``decode_images``).

    Without ``image_size`` or ``expect``, every split must have the size of train's first image.
    """
    splits, reference = {}, None
    for name, listing in files.items():
        paths = listing.paths()
        x = decode_images(paths, image_size, expect=expect, reference=reference, workers=workers)
        splits[name] = Split(x, listing.labels)
        if image_size is None and expect is None:
            expect, reference = x.shape[1:3], paths[0]
    return splits


def decode_images(paths: list[str], image_size=None, *, expect: tuple[int, int] | None = None,
                  reference: str | None = None, workers: int | None = None) -> np.ndarray:
    """Decode image files into one uint8 array (N, H, W, 3), in parallel for many files.

    With ``image_size`` each image is resized to it; without, all must have the size of the first
    (or ``expect``, (height, width), when given: the size of the file ``reference``, or of the
    dataset's images when None). ``workers`` defaults to the usable CPU cores.
    """
    if not paths:
        raise ValueError("no image files to decode")
    size = image_size_pair(image_size) or (None if expect is None else (expect[0], expect[1]))
    first = None
    if size is None:
        first = _decode_one(paths[0], None)
        size, reference = (first.shape[0], first.shape[1]), paths[0]   # the file whose size the others must have
    guard.check_fits(quoted(os.path.dirname(os.path.dirname(paths[0])) or "."),
                     f"{len(paths)} images of {size[1]}×{size[0]} pixels decode to", len(paths) * size[0] * size[1] * 3)
    out = np.empty((len(paths), *size, 3), np.uint8)
    done = 0
    if first is not None:
        out[0], done = first, 1
    workers = workers or _usable_cpus()
    starts = range(done, len(paths), _CHUNK)
    tasks = [(paths[s:s + _CHUNK], image_size is not None, size, reference) for s in starts]
    if workers < 2 or len(tasks) < 2 or len(paths) < _PARALLEL_MIN or not _can_fork():
        for s, task in zip(starts, tasks):
            _decode_chunk(*task, out=out[s:s + _CHUNK])
        return out
    # Processes, not threads: decoding a small PNG is mostly Python code in Pillow (chunk parsing)
    # holding the GIL. On 2 cores, 32×32 PNGs: one core ~13k images/s, 2 threads ~12k, 2 processes
    # up to ~22k. Forked workers start in milliseconds (spawned ones would import hpstudy.data
    # again, ~1.5 s) and run only Pillow and numpy, never the parent's threads' code (TensorFlow),
    # so Python 3.12's warning about forking a multi-threaded process does not apply here.
    pool = ProcessPoolExecutor(min(workers, len(tasks)), mp_context=multiprocessing.get_context("fork"))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r".*multi-threaded.*fork\(\)", DeprecationWarning)
            for s, chunk in zip(starts, pool.map(_decode_chunk, *zip(*tasks))):
                out[s:s + len(chunk)] = chunk
    finally:
        pool.shutdown(cancel_futures=True)  # after an error, do not decode the rest
    return out


def _can_fork() -> bool:
    """Whether decoding may fork worker processes: only on Linux. On macOS a forked child of a process
    that has loaded TensorFlow or Accelerate can crash, and spawned workers would cost more to start
    than they save: images are decoded in-process there."""
    return sys.platform.startswith("linux")


def _usable_cpus() -> int:
    """The CPU cores this process may use (respects taskset and cgroup cpusets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _decode_chunk(paths: list[str], resize: bool, size: tuple[int, int], reference: str | None,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Decode ``paths`` into ``out`` (made when None), each resized to or checked against ``size``.

    Runs in a worker process: the result is sent back (~3 MB a chunk) and copied into place.
    """
    if out is None:
        out = np.empty((len(paths), *size, 3), np.uint8)
    for i, path in enumerate(paths):
        image = _decode_one(path, size if resize else None)
        if not resize:
            _check_size(path, image, size, reference)
        out[i] = image
    return out


def _check_size(path: str, image: np.ndarray, size: tuple[int, int], reference: str | None) -> None:
    """All images must have ``size``: that of the file ``reference``, or the dataset's own when None."""
    if image.shape[:2] != tuple(size):
        (h, w), (eh, ew) = image.shape[:2], size
        than = f"{quoted(reference)} is {ew}×{eh}" if reference else f"this dataset's images are {ew}×{eh}"
        raise DataError(f"{quoted(path)}: image is {w}×{h} pixels but {than}; set data.image_size to resize "
                        f"all images to one size, or replace this image")


def _decode_one(path: str, size: tuple[int, int] | None) -> np.ndarray:
    """One image file as uint8 (H, W, 3): greyscale, palette and RGBA images become RGB.

    A file that is not a regular one is refused unopened; Pillow's warnings and log lines are dropped.
    """
    file = open_regular(path, "fix its permissions")
    try:
        with file, guard.quiet_images(), Image.open(file) as image:
            # convert("RGB") also drops an alpha channel (no compositing: the stored colours are kept).
            image = image.convert("RGB")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), _RESAMPLE, reducing_gap=None)
            return np.asarray(image)
    except Exception as e:  # Pillow fails in many ways on bad files: OSError, SyntaxError, ValueError, ...
        reason = quoted(exception_line(e))
        raise DataError(f"{quoted(path)}: cannot decode this image ({type(e).__name__}: {reason}); replace or "
                        f"delete the file") from e
