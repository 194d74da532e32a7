"""Datasets: image classification data as uint8 arrays, split and subset reproducibly.

Images are uint8 arrays of shape (N, H, W, 3) and labels int64 arrays of shape (N,).
A raw loader (registered with ``@register``) returns train/val/test splits; ``load``
adds a stratified validation split when the loader has none and applies per-class caps.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.model_selection import train_test_split

from hpstudy.errors import DataError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"

try:  # numpy >= 2 moved numpy.core to numpy._core
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray


# eq=False: the generated __eq__ would compare arrays and raise "truth value is ambiguous".
@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset: images ``x`` (uint8, N×H×W×3) and labels ``y`` (int64, N)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        # Catch a buggy loader here rather than deep inside Keras.
        x, y = self.x, self.y
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"Split.x must be uint8 (N, H, W, 3), got {x.dtype} {x.shape}")
        if y.dtype != np.int64 or y.shape != x.shape[:1]:
            raise ValueError(f"Split.y must be int64 ({len(x)},), got {y.dtype} {y.shape}")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A named dataset with train, validation and test splits."""

    name: str
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]

    @property
    def input_shape(self) -> tuple:
        """Shape of one image, (H, W, 3)."""
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


DATASETS: dict[str, Callable] = {}
SHAPES: dict[str, tuple[tuple, int]] = {}  # name -> (image shape, number of classes), known without loading


def register(name: str, *, input_shape: tuple = (32, 32, 3), num_classes: int = 10):
    """Decorator adding a raw loader to DATASETS under ``name``; a name is registered once."""

    def decorate(loader: Callable) -> Callable:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        DATASETS[name] = loader
        SHAPES[name] = (tuple(input_shape), num_classes)
        return loader

    return decorate


def load(name: str, *, data_dir: str | None = None, validation_split: float = 0.1,
         subset: dict | None = None, seed: int = 0, download: bool = True) -> Dataset:
    """Load dataset ``name``, add a validation split if it has none, apply per-class caps."""
    if name not in DATASETS:
        known = sorted(DATASETS)
        # Match case-insensitively so "CIFAR10" still suggests "cifar10".
        lowered = {k.lower(): k for k in known}
        close = difflib.get_close_matches(str(name).lower(), list(lowered), n=1)
        hint = f" (did you mean {lowered[close[0]]!r}?)" if close else ""
        raise DataError(f"unknown dataset {name!r}{hint}; known datasets: {', '.join(known)}")
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
    caps = _check_subset(subset)
    train, val, test, class_names = DATASETS[name](data_dir=data_dir, download=download, seed=seed)
    if val is None:
        train, val = _split_off(name, train, validation_split, seed)
    train = _cap(train, caps.get("train"), seed)
    val = _cap(val, caps.get("validation"), seed)
    test = _cap(test, caps.get("test"), seed)
    return Dataset(name, train, val, test, tuple(class_names))


def _check_subset(subset: dict | None) -> dict:
    """Validate the subset dict: keys train/validation/test, values a positive int or None."""
    subset = dict(subset or {})
    unknown = set(subset) - {"train", "validation", "test"}
    if unknown:
        raise ValueError(f"subset keys must be train, validation or test, got {sorted(unknown)}")
    for key, cap in subset.items():
        is_int = isinstance(cap, (int, np.integer)) and not isinstance(cap, bool)
        if cap is not None and (not is_int or cap < 1):
            raise ValueError(f"subset.{key} must be a positive integer or None, got {cap!r}")
    return subset


def _split_off(name: str, train: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split ``fraction`` of ``train`` off as validation, stratified by class and seeded."""
    try:
        keep, held = train_test_split(np.arange(len(train.y)), test_size=fraction,
                                      stratify=train.y, random_state=seed)
    except ValueError as e:  # too few images for a stratified split
        raise DataError(f"{name}: cannot split {fraction} of {len(train.y)} training images "
                        f"into a stratified validation set ({e}); use more data or another "
                        f"validation_split") from e
    return _take(train, np.sort(keep)), _take(train, np.sort(held))


def _cap(split: Split, cap: int | None, seed: int) -> Split:
    """Keep at most ``cap`` images of each class, chosen at random (seeded), in original order."""
    if cap is None:
        return split
    # A fresh generator per split, so one split's cap never changes another's selection.
    rng = np.random.default_rng(seed)
    kept = []
    for label in np.unique(split.y):
        idx = np.flatnonzero(split.y == label)
        kept.append(rng.choice(idx, size=cap, replace=False) if len(idx) > cap else idx)
    order = np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64)
    return _take(split, order)


def _take(split: Split, idx: np.ndarray) -> Split:
    return Split(split.x[idx], split.y[idx])


def cache_dir() -> Path:
    """Where datasets are kept: $HPSTUDY_DATA_DIR if set, else ~/.cache/hpstudy."""
    env = os.environ.get("HPSTUDY_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hpstudy"


def fetch(url: str, dest: Path, md5: str) -> Path:
    """Download ``url`` to ``dest`` (checked against ``md5``) unless a good copy is there."""
    dest = Path(dest)
    if dest.is_file() and _md5_of(dest) == md5:
        return dest
    # Write to .part and rename only once verified, so ``dest`` is never a partial file.
    part = dest.with_suffix(dest.suffix + ".part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise DataError(f"cannot download {url} ({reason}); download it by hand and save it "
                        f"as {dest}") from e
    if digest.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise DataError(f"{url}: checksum mismatch: expected MD5 {md5}, got {digest.hexdigest()}; "
                        f"try again, or download it by hand and save it as {dest}")
    os.replace(part, dest)
    return dest


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@register("digits")
def _digits(*, data_dir=None, download=True, seed=0):
    """scikit-learn's 8×8 digits as 32×32 RGB uint8, with a stratified 20% test split."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    digits = load_digits()
    x = np.rint(digits.images * (255 / 16)).astype(np.uint8)   # 0..16 -> 0..255
    x = x.repeat(4, axis=1).repeat(4, axis=2)                   # nearest upsampling to 32×32
    x = np.repeat(x[..., None], 3, axis=-1)                     # grey -> 3 equal channels
    y = digits.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
    whole = Split(x, y)
    names = tuple(str(i) for i in range(10))
    return _take(whole, np.sort(train)), None, _take(whole, np.sort(test)), names


@register("cifar10")
def _cifar10(*, data_dir=None, download=True, seed=0):
    """CIFAR-10 from the official Python pickles (downloaded into cache_dir() if needed)."""
    folder = _find_cifar10(data_dir, download)
    class_names = _read_meta(folder / "batches.meta")
    parts = [_read_batch(folder / f"data_batch_{i}", len(class_names)) for i in range(1, 6)]
    train = Split(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))
    return train, None, _read_batch(folder / "test_batch", len(class_names)), class_names


def _find_cifar10(data_dir, download: bool) -> Path:
    """The cifar-10-batches-py folder: in data_dir, else in cache_dir(), else downloaded."""
    if data_dir is not None:
        given = Path(data_dir).expanduser()
        if (given / _CIFAR_FOLDER).is_dir():
            return given / _CIFAR_FOLDER
        if given.is_dir() and (given.name == _CIFAR_FOLDER or (given / "batches.meta").exists()):
            return given
        raise DataError(f"{given}: no {_CIFAR_FOLDER} folder here; set data.data_dir to that "
                        f"folder or to the folder holding it (extracted from {CIFAR10_URL})")
    root = cache_dir()
    if (root / _CIFAR_FOLDER).is_dir():
        return root / _CIFAR_FOLDER
    if not download:
        raise DataError(f"CIFAR-10 not found: no {_CIFAR_FOLDER} folder in {root}; extract it "
                        f"there from {CIFAR10_URL}, or point data.data_dir in the study or the "
                        f"HPSTUDY_DATA_DIR environment variable at the folder holding it")
    archive = fetch(CIFAR10_URL, root / _CIFAR_ARCHIVE, CIFAR10_MD5)
    _extract(archive, root)
    return root / _CIFAR_FOLDER


def _extract(archive: Path, root: Path) -> None:
    """Extract the CIFAR archive into ``root`` so that only a complete folder ever appears."""
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(tmp, filter="data")  # refuses absolute paths, "..", devices
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"{archive}: cannot extract ({e}); delete it and try again") from e
        if not (tmp / _CIFAR_FOLDER).is_dir():
            raise DataError(f"{archive}: holds no {_CIFAR_FOLDER} folder; delete it and "
                            f"download {CIFAR10_URL} again")
        try:
            os.replace(tmp / _CIFAR_FOLDER, root / _CIFAR_FOLDER)
        except OSError:
            if not (root / _CIFAR_FOLDER).is_dir():  # else another process finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` limited to what Python 3 protocol-2 pickles use for bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


# The only globals a CIFAR batch (a dict of lists, bytes and numpy arrays) needs; returning
# these objects directly means no module is ever imported on the pickle's say-so.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Python 3 writes bytes in protocol 2 as _codecs.encode(str, "latin1").
    ("_codecs", "encode"): _latin1_encode,
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that can only build numpy arrays and plain containers, never run code."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(f"{self.path}: refused to load: the pickle asks for {module}.{name}, "
                            f"which a CIFAR-10 batch never contains; use the official files "
                            f"from {CIFAR10_URL}") from None


def _read_pickle(path: Path):
    """Unpickle ``path`` safely; any failure becomes a DataError naming the file."""
    if not path.is_file():
        raise DataError(f"{path}: missing; the {_CIFAR_FOLDER} folder must hold data_batch_1 to "
                        f"data_batch_5, test_batch and batches.meta: extract it again from "
                        f"{CIFAR10_URL}")
    try:
        with open(path, "rb") as f:
            return _SafeUnpickler(f, path).load()
    except DataError:
        raise
    except Exception as e:  # corrupt pickles fail in many ways (EOFError, ValueError, ...)
        raise DataError(f"{path}: corrupt or truncated ({type(e).__name__}: {e}); extract the "
                        f"{_CIFAR_FOLDER} folder again from {CIFAR10_URL}") from e


def _bad(path: Path, what: str) -> DataError:
    return DataError(f"{path}: not a CIFAR-10 batch: {what}; extract the {_CIFAR_FOLDER} folder "
                     f"again from {CIFAR10_URL}")


def _read_meta(path: Path) -> tuple[str, ...]:
    """Class names from ``batches.meta``."""
    meta = _read_pickle(path)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, bytes) for n in names):
        raise _bad(path, "expected a dict whose b'label_names' is a list of names")
    try:
        return tuple(n.decode("utf-8") for n in names)
    except UnicodeDecodeError as e:
        raise _bad(path, f"a label name is not UTF-8 ({e})") from e


def _read_batch(path: Path, num_classes: int) -> Split:
    """One batch: rows of 1024 red, 1024 green, 1024 blue values -> (N, 32, 32, 3)."""
    batch = _read_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise _bad(path, "expected a dict with b'data' and b'labels'")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        shape = getattr(data, "shape", type(data).__name__)
        raise _bad(path, f"b'data' must be a uint8 array with 3072 columns, got {shape}")
    labels = np.asarray(batch[b"labels"])
    if labels.dtype.kind not in "iu" or labels.shape != (len(data),):
        raise _bad(path, f"b'labels' must be {len(data)} integers")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise _bad(path, f"labels must lie in 0..{num_classes - 1}")
    x = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return Split(x, labels.astype(np.int64))
