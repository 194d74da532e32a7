"""Decoded-image cache: image-file datasets are decoded once, later studies load .npy files in seconds.

A cache lives in ``cache_dir() / "decoded" / "<dataset>-<fingerprint[:16]>"``: ``<split>_x.npy`` and
``<split>_y.npy`` per split and ``meta.json``. A cache is written into a hidden temporary folder and renamed
into place in one step: a crash never leaves half a cache.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from hpstudy.data.core import CACHE_FIX, Split, cache_dir
from hpstudy.data.fetch import staged
from hpstudy.data.images import SplitFiles, image_size_pair
from hpstudy.errors import DataError
from hpstudy.text import exception_line

FORMAT_VERSION = 1    # bump when the layout or the decoding changes: old caches are then never read
_STALE_TMP_S = 24 * 3600   # a temporary folder this old was left by a process that died mid-write


class _Corrupt(Exception):
    """A cache folder that cannot be trusted (the message says why)."""


# The fingerprint hashes the dataset name, the resolved source folders, the relative path, size and modification
# time of every image, ``image_size`` and FORMAT_VERSION, so a touched, added or removed image makes a new cache.
def fingerprint(name: str, root: Path, files: dict[str, SplitFiles], image_size=None) -> str:
    """The sha256 hex digest that identifies the decoded images of ``files``."""
    digest = hashlib.sha256()
    head = [f"hpstudy-decoded {FORMAT_VERSION}", name, str(Path(root).resolve()), repr(image_size_pair(image_size))]
    digest.update("\0".join(head).encode())
    for split, listing in files.items():
        digest.update(f"\0split\0{split}\0{Path(listing.folder).resolve()}\0".encode())
        # "\0" cannot occur in a file name, so this encoding is unambiguous.
        digest.update("".join(f"{f}\0{size}\0{mtime}\0" for f, (size, mtime) in zip(listing.files, listing.stats))
                      .encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def warn(message: str) -> None:
    """Print ``hpstudy: warning: message`` as one line on standard error."""
    print(f"hpstudy: warning: {message}", file=sys.stderr, flush=True)


def decoded_copies(name: str) -> tuple[int, int]:
    """How many decoded copies of dataset ``name`` the cache holds, and their total size in bytes."""
    folders = [p for p in (cache_dir() / "decoded").glob(f"{name}-*")
               if re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{16}}", p.name) and p.is_dir()]
    return len(folders), sum(f.stat().st_size for p in folders for f in p.iterdir() if f.is_file())


def cached_splits(name: str, root: Path, files: dict[str, SplitFiles], class_names: tuple[str, ...],
                  image_size, decode: Callable[[dict[str, SplitFiles]], dict[str, Split]]) -> dict[str, Split]:
    """The decoded splits of ``files``: from the cache when it is there and intact, else decoded and cached.

    ``decode`` turns the files of all splits into Splits. A corrupt cache is deleted and rebuilt with a
    warning; a cache that cannot be written (disk full, read-only) is a warning, not an error.
    """
    key = fingerprint(name, root, files, image_size)
    decoded = cache_dir() / "decoded"
    folder = decoded / f"{name}-{key[:16]}"
    if folder.is_dir():
        try:
            return _read(folder, key, list(files))
        except _Corrupt as e:
            warn(f"{folder}: decoded-image cache is corrupt ({e}); deleting it and decoding the images again")
            shutil.rmtree(folder, ignore_errors=True)
    splits = decode(files)
    size = image_size_pair(image_size)
    meta = {"format": FORMAT_VERSION, "fingerprint": key, "dataset": name, "source": str(Path(root).resolve()),
            "image_size": list(size) if size else None, "class_names": list(class_names)}
    try:
        _write(folder, splits, meta)
    except (OSError, DataError) as e:
        warn(f"{folder}: cannot write the decoded-image cache ({e}); the images will be decoded again next time")
    else:
        _remove_stale(decoded, folder, meta)
    return splits


def _read(folder: Path, key: str, splits: list[str]) -> dict[str, Split]:
    """The splits stored in ``folder``, each .npy checked against its sha256; _Corrupt if anything is off."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("fingerprint") != key or meta.get("splits") != splits:
            raise _Corrupt("meta.json does not match these images")
        arrays = {f: _load_npy(folder / f, meta["sha256"][f], meta["shapes"][f]) for f in meta["sha256"]}
        return {s: Split(arrays[f"{s}_x.npy"], arrays[f"{s}_y.npy"]) for s in splits}
    except (OSError, ValueError, KeyError, TypeError) as e:  # a missing or garbled file or meta.json
        raise _Corrupt(exception_line(e, with_class=True)) from e


def _load_npy(path: Path, sha256: str, shape: list) -> np.ndarray:
    """One .npy file, after checking its checksum (a truncated file fails here, not in np.load)."""
    if _sha256(path) != sha256:
        raise _Corrupt(f"{path.name} does not match its checksum")
    array = np.load(path, allow_pickle=False)
    if list(array.shape) != shape:
        raise _Corrupt(f"{path.name} has shape {array.shape}, meta.json says {shape}")
    return array


def _write(folder: Path, splits: dict[str, Split], meta: dict) -> None:
    """Write the cache into a temporary folder next to ``folder``, then rename it into place."""
    with staged(folder, fix=CACHE_FIX) as tmp:  # no error if another process wrote the same cache first
        sha, shapes = {}, {}
        for split, data in splits.items():
            for part, array in ((f"{split}_x.npy", data.x), (f"{split}_y.npy", data.y)):
                np.save(tmp / part, array, allow_pickle=False)
                sha[part], shapes[part] = _sha256(tmp / part), list(array.shape)
        meta = {**meta, "splits": list(splits), "shapes": shapes, "sha256": sha,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))


def _remove_stale(decoded: Path, keep: Path, meta: dict) -> None:
    """Delete older caches of the same dataset, source folder and image_size, whose images have changed.

    Caches of the same folder at another image_size are kept: a user may switch between them. Also
    deletes temporary folders left for a day by a process that died while writing.
    """
    for other in decoded.glob(f"{meta['dataset']}-*"):
        if other == keep or not other.is_dir():
            continue
        try:
            old = json.loads((other / "meta.json").read_text())
        except (OSError, ValueError):
            continue  # not ours to judge
        if old.get("source") == meta["source"] and old.get("image_size") == meta["image_size"]:
            shutil.rmtree(other, ignore_errors=True)
    for tmp in decoded.glob(f".{meta['dataset']}-*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def _sha256(path: Path) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
