"""CIFAR-10 from the official Python pickles, read with an unpickler that cannot run code."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from hpstudy.data.core import CACHE_FIX, Split, cache_dir, register
from hpstudy.data.fetch import extract, fetch, make_folder
from hpstudy.data.paths import existing_folder, kind, unreadable
from hpstudy.errors import DataError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"

try:  # numpy >= 2 moved numpy.core to numpy._core
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray


def _locate(data_dir: str | None) -> tuple[str, bool]:
    folder = _given_folder(Path(data_dir).expanduser()) if data_dir else cache_dir() / _CIFAR_FOLDER
    return str(folder or data_dir), bool(folder) and folder.is_dir()


def fetch_cifar10(dest: Path | None = None) -> Path:
    """Download and extract CIFAR-10 into ``dest`` (default: the cache); returns the batches folder."""
    root = Path(dest).expanduser() if dest else cache_dir()
    if kind(root) == "folder" and kind(root / _CIFAR_FOLDER) == "folder":
        return root / _CIFAR_FOLDER
    make_folder(root, "choose another folder" if dest else CACHE_FIX)  # before downloading
    return extract(fetch(CIFAR10_URL, root / _CIFAR_ARCHIVE, CIFAR10_MD5), root, _CIFAR_FOLDER)


@register("cifar10", locate=_locate, download=fetch_cifar10)
def _cifar10(*, data_dir=None, download=True, seed=0, image_size=None):
    """CIFAR-10: 60,000 32×32 images of 10 classes (downloaded from the authors' site)."""
    folder = _find_cifar10(data_dir, download)
    class_names = _read_meta(folder / "batches.meta")
    parts = [_read_batch(folder / f"data_batch_{i}", len(class_names)) for i in range(1, 6)]
    train = Split(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))
    return train, None, _read_batch(folder / "test_batch", len(class_names)), class_names


def _find_cifar10(data_dir, download: bool) -> Path:
    """The cifar-10-batches-py folder: in data_dir, else in cache_dir(), else downloaded."""
    if data_dir is not None:
        given = existing_folder(Path(data_dir).expanduser(), f"set data.data_dir to the {_CIFAR_FOLDER} "
                                f"folder or to the folder holding it (extracted from {CIFAR10_URL})")
        if folder := _given_folder(given):
            return folder
        raise DataError(f"{given}: no {_CIFAR_FOLDER} folder here; set data.data_dir to that "
                        f"folder or to the folder holding it (extracted from {CIFAR10_URL})")
    root = cache_dir()
    if kind(root / _CIFAR_FOLDER) == "folder":
        return root / _CIFAR_FOLDER
    if not download:
        raise DataError(f"CIFAR-10 not found: no {_CIFAR_FOLDER} folder in {root}; run `hpstudy data download "
                        f"cifar10`, or extract it there from {CIFAR10_URL}, or point data.data_dir in the study or the "
                        f"HPSTUDY_DATA_DIR environment variable at the folder holding it")
    return fetch_cifar10(root)


def _given_folder(given: Path) -> Path | None:
    """The batches folder at or inside ``given``, or None."""
    if kind(given) != "folder":
        return None
    if kind(given / _CIFAR_FOLDER) == "folder":
        return given / _CIFAR_FOLDER
    return given if given.name == _CIFAR_FOLDER or kind(given / "batches.meta") else None


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
        """Only numpy's array reconstruction is allowed: anything else in the pickle is refused."""
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
        f = open(path, "rb")
    except OSError as e:
        raise unreadable(e, "fix its permissions") from e
    try:
        with f:
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
