"""What CIFAR-10 and CIFAR-100 share: the authors' Python release (a tar.gz of pickled batches), found in
data.data_dir or the cache or else downloaded and extracted, and read with an unpickler that cannot run code."""

from __future__ import annotations

import importlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpstudy.data.core import CACHE_FIX, Split, cache_dir
from hpstudy.data.fetch import extract, fetch, make_folder
from hpstudy.data.paths import existing_folder, kind, unreadable
from hpstudy.errors import DataError
from hpstudy.text import exception_line

try:  # numpy >= 2 moved numpy.core to numpy._core
    _multiarray = importlib.import_module("numpy._core.multiarray")
except ImportError:  # pragma: no cover - numpy 1.x
    _multiarray = importlib.import_module("numpy.core.multiarray")


@dataclass(frozen=True)
class Release:
    """One official CIFAR release: how messages name it, its dataset name, the folder its archive holds,
    the archive's URL, file name and checksum (MD5 or SHA-256), and the files of the folder (the last one,
    the meta file, marks a folder as this release's)."""

    title: str          # "CIFAR-10"
    dataset: str        # "cifar10"
    folder: str         # "cifar-10-batches-py"
    url: str
    archive: str        # "cifar-10-python.tar.gz"
    checksum: str
    files: tuple[str, ...]

    def extract_fix(self) -> str:
        """What to do about a bad or missing file of the folder."""
        return f"extract the {self.folder} folder again from {self.url}"


def locate(release: Release, data_dir: str | None) -> tuple[str, bool]:
    """Where the release's folder is (``data_dir`` or the cache) and whether it is there."""
    folder = given_folder(release, Path(data_dir).expanduser()) if data_dir else cache_dir() / release.folder
    return str(folder or data_dir), folder is not None and folder.is_dir()


def fetch_release(release: Release, dest: Path | None = None) -> Path:
    """Download and extract the release into ``dest`` (default: the cache); returns its folder."""
    root = Path(dest).expanduser() if dest else cache_dir()
    if kind(root) == "folder" and kind(root / release.folder) == "folder":
        return root / release.folder
    make_folder(root, "choose another folder" if dest else CACHE_FIX)  # before downloading
    return extract(fetch(release.url, root / release.archive, release.checksum), root, release.folder)


def find(release: Release, data_dir, download: bool) -> Path:
    """The release's folder: in data_dir, else in cache_dir(), else downloaded."""
    if data_dir is not None:
        fix = f"set data.data_dir to the {release.folder} folder or to the folder holding it (extracted from " \
              f"{release.url})"
        given = existing_folder(Path(data_dir).expanduser(), fix)
        if folder := given_folder(release, given):
            return folder
        raise DataError(f"{given}: no {release.folder} folder here; {fix}")
    root = cache_dir()
    if kind(root / release.folder) == "folder":
        return root / release.folder
    if not download:
        raise DataError(f"{release.title} not found: no {release.folder} folder in {root}; run `hpstudy data "
                        f"download {release.dataset}`, or extract it there from {release.url}, or point "
                        f"data.data_dir in the study or the HPSTUDY_DATA_DIR environment variable at the folder "
                        f"holding it")
    return fetch_release(release, root)


def given_folder(release: Release, given: Path) -> Path | None:
    """The release's folder at or inside ``given``, or None."""
    if kind(given) != "folder":
        return None
    if kind(given / release.folder) == "folder":
        return given / release.folder
    return given if given.name == release.folder or kind(given / release.files[-1]) else None


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

    def __init__(self, file, path: Path, release: Release):
        super().__init__(file, encoding="bytes")
        self.path, self.release = path, release

    def find_class(self, module, name):
        """Only numpy's array reconstruction is allowed: anything else in the pickle is refused."""
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(f"{self.path}: refused to load: the pickle asks for {module}.{name}, "
                            f"which a {self.release.title} batch never contains; use the official files "
                            f"from {self.release.url}") from None


def read_pickle(release: Release, path: Path):
    """Unpickle ``path`` safely; any failure becomes a DataError naming the file."""
    if not path.is_file():
        raise DataError(f"{path}: missing; the {release.folder} folder must hold {', '.join(release.files)}: "
                        f"{release.extract_fix()}")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise unreadable(e, "fix its permissions") from e
    try:
        with f:
            return _SafeUnpickler(f, path, release).load()
    except DataError:
        raise
    except Exception as e:  # corrupt pickles fail in many ways (EOFError, ValueError, ...)
        raise DataError(f"{path}: corrupt or truncated ({exception_line(e, with_class=True)}); "
                        f"{release.extract_fix()}") from e


def bad(release: Release, path: Path, what: str) -> DataError:
    """A DataError: ``path`` is not a file of ``release`` because of ``what``."""
    return DataError(f"{path}: not a {release.title} batch: {what}; {release.extract_fix()}")


def read_names(release: Release, path: Path, key: bytes, count: int | None = None) -> tuple[str, ...]:
    """Class names from the meta file's list ``key`` (``count`` of them, when given)."""
    meta = read_pickle(release, path)
    names = meta.get(key) if isinstance(meta, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, bytes) for n in names):
        raise bad(release, path, f"expected a dict whose {key!r} is a list of names")
    if count is not None and len(names) != count:
        raise bad(release, path, f"{key!r} holds {len(names)} names, not {count}")
    try:
        return tuple(n.decode("utf-8") for n in names)
    except UnicodeDecodeError as e:
        raise bad(release, path, f"a label name is not UTF-8 ({e})") from e


def read_batch(release: Release, path: Path, label_key: bytes, num_classes: int) -> Split:
    """One batch: rows of 1024 red, 1024 green, 1024 blue values -> (N, 32, 32, 3); labels from ``label_key``."""
    batch = read_pickle(release, path)
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise bad(release, path, f"expected a dict with b'data' and {label_key!r}")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        shape = getattr(data, "shape", type(data).__name__)
        raise bad(release, path, f"b'data' must be a uint8 array with 3072 columns, got {shape}")
    labels = np.asarray(batch[label_key])
    if labels.dtype.kind not in "iu" or labels.shape != (len(data),):
        raise bad(release, path, f"{label_key!r} must be {len(data)} integers")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise bad(release, path, f"{label_key!r} must lie in 0..{num_classes - 1}")
    x = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return Split(x, labels.astype(np.int64))
