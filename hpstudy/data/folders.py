"""Datasets read from files: ``folder`` (your own class folders), ``cinic10`` (CINIC-10's PNGs) and ``npz``.

Image folders are decoded once and cached (see hpstudy.data.cache); a .npz file is read directly.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from hpstudy.data import cache, guard, images
from hpstudy.data.core import CACHE_FIX, Split, at_data_dir, cache_dir, register
from hpstudy.data.paths import existing_file, existing_folder, kind, open_regular, quoted
from hpstudy.errors import DataError
from hpstudy.text import exception_line

_VAL_NAMES = ("val", "valid", "validation")
_CINIC_VAL_NAMES = ("valid", "validation")
_CINIC_LAYOUT = "train/, valid/ and test/ folders of class folders"


def _read_tree(name: str, root: Path, folders: dict[str, Path], image_size,
               expect: tuple[int, int] | None = None) -> tuple:
    """The loader result for split folders ``folders`` (keys train, val, test), through the cache."""
    files, class_names = images.scan_splits(folders)
    splits = cache.cached_splits(name, root, files, class_names, image_size,
                                 lambda files: images.read_splits(files, image_size, expect))
    return splits["train"], splits.get("val"), splits.get("test"), class_names


def _is_folder(path: Path) -> bool:
    return kind(path) == "folder"


def _val_folder(root: Path, names: tuple[str, ...]) -> Path | None:
    """The validation folder of ``root`` (one of ``names``), None if there is none; two is an error."""
    found = [root / n for n in names if _is_folder(root / n)]
    if len(found) > 1:
        raise DataError(f"{root}: both {found[0].name}/ and {found[1].name}/ are here; keep one "
                        f"validation folder")
    return found[0] if found else None


# ---------------------------------------------------------------- folder

@register("folder", input_shape=None, num_classes=None, resizes=True)
def _folder(*, data_dir=None, download=True, seed=0, image_size=None):
    """Your own images: a folder per class, optionally inside train/, val/ and test/ folders."""
    if not data_dir:
        raise DataError("dataset 'folder' needs data.data_dir: set it to the folder holding one "
                        "sub-folder of images per class (or holding train/, val/ and test/ folders)")
    root = existing_folder(Path(data_dir).expanduser(), "set data.data_dir to the folder holding one "
                           "sub-folder of images per class")
    folders = {"train": root}
    if _is_folder(root / "train"):
        found = {"train": root / "train", "val": _val_folder(root, _VAL_NAMES), "test": root / "test"}
        folders = {k: v for k, v in found.items() if v is not None and _is_folder(v)}
    return _read_tree("folder", root, folders, image_size)


# ---------------------------------------------------------------- CINIC-10

def _cinic_at(folder: Path) -> Path | None:
    """``folder`` if it holds CINIC-10's train/, valid/ and test/, or the one sub-folder that does."""
    def is_cinic(path: Path) -> bool:
        """Whether `folder` is laid out as CINIC-10 (train/valid/test class folders)."""
        return _is_folder(path / "train") and _is_folder(path / "test") \
            and any(_is_folder(path / n) for n in _CINIC_VAL_NAMES)

    if is_cinic(folder):
        return folder
    if not _is_folder(folder):
        return None
    inside = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".") and is_cinic(p)]
    if len(inside) > 1:
        raise DataError(f"{folder}: holds more than one CINIC-10 copy ({inside[0].name}, {inside[1].name}); "
                        f"set data.data_dir to the one to use")
    return inside[0] if inside else None


def _cinic_locate(data_dir: str | None) -> tuple[str, bool]:
    where = Path(data_dir).expanduser() if data_dir else cache_dir() / "cinic10"
    try:
        found = _cinic_at(where)
    except DataError:  # two copies: loading it will say so (an unreadable folder is an error here too)
        found = None
    return str(found or where), found is not None


def _find_cinic10(data_dir, download: bool) -> Path:
    """CINIC-10's folder: in data_dir, else in cache_dir() / "cinic10", else downloaded from Kaggle."""
    fix = "set data.data_dir to the folder holding them, or unset it to download CINIC-10"
    if data_dir:
        given = existing_folder(Path(data_dir).expanduser(), fix)
        if found := _cinic_at(given):
            return found
        raise DataError(f"{given}: no CINIC-10 here ({_CINIC_LAYOUT}); {fix}")
    if not download:
        root = cache_dir() / "cinic10"
        if found := _cinic_at(root):
            return found
        raise DataError(f"CINIC-10 not found in {root}; run `hpstudy data download cinic10`, or set "
                        f"data.data_dir to the folder holding its train/, valid/ and test/ folders")
    return fetch_cinic10()


def fetch_cinic10(dest: Path | None = None, slug: str | None = None) -> Path:
    """Download CINIC-10 from Kaggle dataset ``slug`` (default: ``kaggle.cinic10_slug()``) into ``dest``
    (default: the cache) unless it is there; returns its folder.

    A ``dest`` that holds something else is refused: the download goes into an empty or new folder.
    """
    from hpstudy.data import kaggle  # lazy: only a download needs it (and Kaggle credentials)

    ours = not dest   # only the cache folder is ours to suggest deleting
    root = Path(dest).expanduser() if dest else cache_dir() / "cinic10"
    there = kind(root)
    if there == "folder" and (found := _cinic_at(root)):
        return found
    slug = kaggle.cinic10_slug() if slug is None else slug
    if there not in (None, "folder"):
        raise DataError(f"{root}: is a file, not a folder; " + (CACHE_FIX if ours else "choose an empty or new folder"))
    if there == "folder" and any(root.iterdir()):
        fix = f"delete {root} and run again" if ours else "choose an empty or new folder to download CINIC-10 into"
        raise DataError(f"{root}: holds no CINIC-10 ({_CINIC_LAYOUT}) but is not empty; {fix}")
    got = Path(kaggle.download_dataset(slug, root, fix=CACHE_FIX if ours else "choose another folder"))
    if found := _cinic_at(got):
        return found
    then = f"; delete {root} and run again" if ours else ""
    raise DataError(f"{root}: the Kaggle dataset {slug} holds no CINIC-10 ({_CINIC_LAYOUT}); check the dataset "
                    f"name (--slug or HPSTUDY_CINIC10_SLUG){then}")


@register("cinic10", locate=_cinic_locate, download=fetch_cinic10, resizes=True)
def _cinic10(*, data_dir=None, download=True, seed=0, image_size=None):
    """CINIC-10: 270,000 32×32 images of CIFAR-10's classes, with its own validation split (Kaggle)."""
    root = _find_cinic10(data_dir, download)
    val = _val_folder(root, _CINIC_VAL_NAMES)
    if val is None:         # not found by _find_cinic10, which wants one
        raise DataError(f"{root}: no validation folder ({_CINIC_LAYOUT})")
    folders = {"train": root / "train", "val": val, "test": root / "test"}
    return _read_tree("cinic10", root, folders, image_size, expect=(32, 32))


# ---------------------------------------------------------------- npz

@register("npz", locate=lambda data_dir: at_data_dir(data_dir, "file"), input_shape=None, num_classes=None)
def _npz(*, data_dir=None, download=True, seed=0, image_size=None):
    """Arrays in a .npz file: x_train, y_train, optionally x_val, y_val, x_test, y_test and class_names."""
    if not data_dir:
        raise DataError("dataset 'npz' needs data.data_dir: set it to the path of a .npz file holding "
                        "x_train and y_train (and optionally x_val, y_val, x_test, y_test, class_names)")
    path = existing_file(Path(data_dir).expanduser(), "set data.data_dir to the path of a .npz file")
    arrays = _read_npz(path)
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise DataError(f"{quoted(path)}: no array {key!r} (it has {', '.join(sorted(arrays)) or 'none'}); "
                            f"save it with np.savez({path.name!r}, x_train=..., y_train=...)")
    splits = {s: _npz_split(path, arrays, s) for s in ("train", "val", "test")}
    shapes = {s: split.x.shape[1:] for s, split in splits.items() if split is not None}
    for s, shape in shapes.items():
        if shape != shapes["train"]:
            raise DataError(f"{quoted(path)}: array 'x_{s}' holds images of shape {shape} but 'x_train' of shape "
                            f"{shapes['train']}; all splits need one image size")
    labels = max(int(split.y.max(initial=-1)) for split in splits.values() if split is not None) + 1
    names = _class_names(path, arrays.get("class_names"), labels)
    return splits["train"], splits["val"], splits["test"], names


_NPZ_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "class_names")
_NPZ_FIX = "save the arrays with np.savez"


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a .npz file that hpstudy uses (``_NPZ_KEYS``; other members are never read).

    Every member's .npy header is read first: pickled objects are refused, and so is a file whose arrays
    declare more than the memory available (see ``guard.check_fits``) or more bytes than the member holds,
    before a byte of array data is inflated.
    """
    where = quoted(path)
    with open_regular(path, "set data.data_dir to the path of a .npz file") as f:
        try:
            z = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            f.seek(0)
            if f.read(6) == b"\x93NUMPY":
                raise DataError(f"{where}: a single .npy array, not a .npz file; {_NPZ_FIX}") from None
            raise _invalid_npz(where, e) from e
        with z:
            members = {i.filename[:-4]: i for i in z.infolist() if i.filename[:-4] in _NPZ_KEYS
                       and i.filename.endswith(".npy")}
            headers = {key: _npz_header(where, z, key, info) for key, info in members.items()}
            total = sum(nbytes for _, _, nbytes in headers.values())
            if len(headers) > 1:
                guard.check_fits(where, f"its arrays ({', '.join(map(repr, headers))}) declare", total)
            return {key: _npz_member(where, z, key, info) for key, info in members.items()}


def _invalid_npz(where: str, e: Exception, key: str | None = None) -> DataError:
    """A DataError naming the npz file (and the array) and what is wrong in it."""
    member = f"array {key!r} cannot be read" if key else "not a valid .npz file"
    reason = quoted(exception_line(e))
    return DataError(f"{where}: {member} ({type(e).__name__}: {reason}); {_NPZ_FIX}")


# What reading a zip member or a .npy header raises on a bad file: an encrypted member (RuntimeError), an
# unknown compression method (NotImplementedError), a garbled header (ValueError, SyntaxError), a cut stream.
_MEMBER_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError,
                  NotImplementedError, SyntaxError, TypeError, KeyError, OverflowError)


def _npz_header(where: str, z: zipfile.ZipFile, key: str, info: zipfile.ZipInfo) -> tuple:
    """(shape, dtype, bytes) that member ``key`` declares, checked against the memory and the member's size."""
    fmt = np.lib.format
    try:
        with z.open(info) as member:
            version = fmt.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(member)
            elif version == (3, 0) and hasattr(fmt, "_read_array_header"):   # utf-8 field names
                shape, _, dtype = fmt._read_array_header(member, version)
            else:
                raise ValueError(f"unknown .npy format version {version[0]}.{version[1]}")
            offset = member.tell()
    except _MEMBER_ERRORS as e:
        raise _invalid_npz(where, e, key) from e
    if dtype.hasobject:
        raise DataError(f"{where}: array {key!r} holds pickled Python objects, which are refused for safety; "
                        f"save plain numbers (class_names as strings) with np.savez")
    nbytes = math.prod(shape) * dtype.itemsize
    guard.check_fits(where, f"array {key!r} declares shape {tuple(shape)} of {dtype},", nbytes)
    if info.file_size < offset + nbytes:
        raise DataError(f"{where}: array {key!r} declares {guard.size(nbytes)} (shape {tuple(shape)} of "
                        f"{dtype}) but its member holds {guard.size(max(0, info.file_size - offset))}; the "
                        f"file is cut short or forged: {_NPZ_FIX} again")
    return shape, dtype, nbytes


def _npz_member(where: str, z: zipfile.ZipFile, key: str, info: zipfile.ZipInfo) -> np.ndarray:
    """The array of member ``key`` (its header checked already)."""
    try:
        with z.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    except _MEMBER_ERRORS as e:
        raise _invalid_npz(where, e, key) from e


def _npz_split(path: Path, arrays: dict[str, np.ndarray], split: str) -> Split | None:
    """The x/y pair of one split as a Split, or None when the file has neither."""
    xk, yk = f"x_{split}", f"y_{split}"
    if xk not in arrays and yk not in arrays:
        return None
    if xk not in arrays or yk not in arrays:
        have, lack = (xk, yk) if xk in arrays else (yk, xk)
        raise DataError(f"{quoted(path)}: has array {have!r} but no {lack!r}; save both or neither")
    x, y = arrays[xk], arrays[yk]
    if x.dtype != np.uint8:
        how = "(x * 255).round().astype('uint8')" if x.dtype.kind == "f" else "x.astype('uint8')"
        raise DataError(f"{quoted(path)}: array {xk!r} is {x.dtype}, images must be uint8 (0..255); convert "
                        f"{'floats in [0, 1]' if x.dtype.kind == 'f' else 'values in 0..255'} with {how}")
    if x.ndim == 3 or (x.ndim == 4 and x.shape[-1] == 1):   # greyscale: three equal channels
        x = np.repeat(x.reshape(x.shape[:3])[..., None], 3, axis=-1)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise DataError(f"{quoted(path)}: array {xk!r} has shape {x.shape}; images must be (N, H, W, 3), "
                        f"(N, H, W, 1) or greyscale (N, H, W)")
    if 0 in x.shape[1:3]:
        raise DataError(f"{quoted(path)}: array {xk!r} holds images of {x.shape[2]}×{x.shape[1]} pixels; "
                        f"images need at least one pixel")
    if y.dtype.kind not in "iu" or not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        raise DataError(f"{quoted(path)}: array {yk!r} is {y.dtype} of shape {y.shape}; labels must be integers "
                        f"of shape (N,) or (N, 1)")
    y = y.reshape(-1)
    if len(x) == 0:
        raise DataError(f"{quoted(path)}: array {xk!r} holds no images; save at least one per class")
    if len(y) != len(x):
        raise DataError(f"{quoted(path)}: array {yk!r} has {len(y)} labels but {xk!r} {len(x)} images; they must match")
    if y.size and y.min() < 0:
        raise DataError(f"{quoted(path)}: array {yk!r} has negative labels ({y.min()}); labels must be 0, 1, 2, ...")
    if y.size and y.max() >= guard.MAX_CLASSES:
        raise DataError(f"{quoted(path)}: array {yk!r} has label {y.max()}; labels must be 0, 1, 2, ... below "
                        f"{guard.MAX_CLASSES} (hpstudy's limit on the number of classes)")
    return Split(np.ascontiguousarray(x), y.astype(np.int64))


def _class_names(path: Path, names: np.ndarray | None, labels: int) -> tuple[str, ...]:
    """``class_names`` from the file (checked), else "0" .. str(labels - 1)."""
    if names is None:
        return tuple(str(i) for i in range(labels))
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise DataError(f"{quoted(path)}: array 'class_names' is {names.dtype} of shape {names.shape}; save "
                        f"a 1-D array of strings, e.g. np.array(['cat', 'dog'])")
    if len(names) > guard.MAX_CLASSES:
        raise DataError(f"{quoted(path)}: array 'class_names' has {len(names)} names, more than hpstudy's "
                        f"limit of {guard.MAX_CLASSES} classes; give one name per class")
    if len(names) < labels:
        raise DataError(f"{quoted(path)}: array 'class_names' has {len(names)} names but the labels go up to "
                        f"{labels - 1}; give one name per class")
    out = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names.tolist())
    if len(set(out)) < len(out):
        twice = next(n for k, n in enumerate(out) if n in out[:k])
        raise DataError(f"{quoted(path)}: array 'class_names' names class {twice!r} twice; give each class "
                        f"its own name")
    return out
