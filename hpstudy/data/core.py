"""Splits, datasets, the dataset registry and ``load``: splitting and per-class caps.

Images are uint8 arrays of shape (N, H, W, C), C 3 (RGB) or 1 (greyscale: MNIST, Fashion-MNIST), and
labels int64 arrays of shape (N,). A raw loader (registered with ``@register``) returns train and,
where the dataset has them, its own validation and test splits; ``load`` splits off what is missing
(stratified, seeded) and applies per-class caps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.model_selection import train_test_split

from hpstudy.data.paths import kind, os_errors_as_data_errors, quoted
from hpstudy.errors import DataError
from hpstudy.study.schema import close_match


# eq=False: the generated __eq__ would compare arrays and raise "truth value is ambiguous".
@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset: images ``x`` (uint8, N×H×W×C, C 3 or 1) and labels ``y`` (int64, N)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        # Catch a buggy loader here rather than deep inside Keras.
        x, y = self.x, self.y
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(f"Split.x must be uint8 (N, H, W, 3) or (N, H, W, 1), got {x.dtype} {x.shape}")
        if y.dtype != np.int64 or y.shape != x.shape[:1]:
            raise ValueError(f"Split.y must be int64 ({len(x)},), got {y.dtype} {y.shape}")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A named dataset with train, validation and test splits."""

    name: str
    train: Split
    validation: Split
    test: Split
    class_names: tuple[str, ...]
    split_off: tuple[str, ...] = ()     # the splits ``load`` took from train ("test", "validation")

    @property
    def val(self) -> Split:
        """The validation split (its name before it was spelled as in the study file's `validation_split`)."""
        return self.validation

    @property
    def input_shape(self) -> tuple:
        """Shape of one image, (H, W, C)."""
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


@dataclass(frozen=True)
class Source:
    """A registered dataset: its raw loader and what is known about it without loading it.

    ``loader(*, data_dir, download, seed, image_size)`` returns ``(train, val, test, class_names)``
    with ``val`` / ``test`` None when the dataset has no such split of its own; a dataset with
    ``label_modes`` (mode -> number of classes, the first the default) also gets ``label_mode``.
    ``locate(data_dir)`` returns where the data is (or would be) and whether it is there.
    """

    name: str
    loader: Callable
    locate: Callable[[str | None], tuple[str, bool]]
    description: str
    input_shape: tuple | None       # None: set by the data (folder, npz) or by data.image_size
    num_classes: int | None
    download: Callable[..., Path] | None = None  # download(dest, **options) (dest None: the cache); None: not needed
    resizes: bool = False           # whether the loader honours image_size (image files do; arrays do not)
    label_modes: dict[str, int] | None = None   # e.g. cifar100's {"fine": 100, "coarse": 20}; None: one labelling

    def label_mode_of(self, label_mode: str | None) -> str | None:
        """``label_mode``, or the default one (the first of ``label_modes``; None for a dataset with one labelling)."""
        return label_mode or next(iter(self.label_modes or {}), None)

    def class_count(self, label_mode: str | None = None) -> int | None:
        """The number of classes with ``label_mode`` (None: the default mode); None when set by the data."""
        mode = self.label_mode_of(label_mode)
        if self.label_modes is None or mode is None:
            return self.num_classes
        return self.label_modes[mode]


DATASETS: dict[str, Source] = {}


def at_data_dir(data_dir: str | None, want: str = "folder") -> tuple[str, bool]:
    """Where a dataset that lives only at ``data.data_dir`` is; there if it is a ``want`` ("folder", "file")."""
    if not data_dir:
        return "wherever data.data_dir points", False
    return str(data_dir), kind(Path(data_dir).expanduser()) == want


def register(name: str, *, locate: Callable = at_data_dir, input_shape: tuple | None = (32, 32, 3),
             num_classes: int | None = 10, download: Callable | None = None, resizes: bool = False,
             label_modes: dict[str, int] | None = None):
    """Decorator adding a raw loader to DATASETS under ``name``; a name is registered once.

    The loader is called as ``loader(*, data_dir, download, seed, image_size)`` (and ``label_mode``, with
    ``label_modes``) and returns ``(train, val, test, class_names)``: Splits, ``val`` / ``test`` None when the
    dataset has no such split of its own (``load`` splits them off). Its docstring's first line describes it.

    Args:
        name: the dataset's name, as a study file's ``data.dataset`` gives it.
        locate: ``locate(data_dir)`` returns where the data is (or would be) and whether it is there; default:
            at ``data.data_dir``, a folder.
        input_shape: one image's shape (H, W, C) before loading; None: set by the data or by ``data.image_size``.
        num_classes: the number of classes; None: set by the data.
        download: ``download(dest, **options)`` fetches the data into ``dest`` (None: the cache) and returns its
            folder; None: nothing to download.
        resizes: whether the loader honours ``image_size`` (image files do; arrays do not).
        label_modes: labelling -> number of classes, the first the default (cifar100's fine and coarse); None:
            one labelling.

    Returns:
        The decorator, which registers the loader and returns it unchanged; registering it raises ValueError
        when ``name`` is already registered.
    """

    def decorate(loader: Callable) -> Callable:
        """Register the decorated loader."""
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        doc = (loader.__doc__ or "").strip().splitlines()
        DATASETS[name] = Source(name, loader, locate, doc[0].rstrip(".") if doc else "",
                                None if input_shape is None else tuple(input_shape), num_classes, download,
                                resizes, label_modes)
        return loader

    return decorate


def source(name: str) -> Source:
    """The registered dataset ``name``; an unknown name is a DataError listing the known ones."""
    if name not in DATASETS:
        known = sorted(DATASETS)
        raise DataError(f"unknown dataset {name!r}{close_match(name, known)}; known: {', '.join(known)}")
    return DATASETS[name]


def downloadable() -> list[str]:
    """Names of the datasets ``hpstudy data download`` can fetch."""
    return sorted(name for name, src in DATASETS.items() if src.download is not None)


CACHE_FIX = "set HPSTUDY_DATA_DIR to a folder you can write to"   # what to do when the cache folder cannot be made


def cache_dir() -> Path:
    """Where datasets are kept: $HPSTUDY_DATA_DIR if set, else ~/.cache/hpstudy."""
    env = os.environ.get("HPSTUDY_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hpstudy"


def download(name: str, dest: str | Path | None = None, **options) -> Path:
    """Fetch dataset ``name`` into ``dest`` unless it is there.

    Args:
        name: a registered dataset that downloads (``downloadable()``).
        dest: the folder to fetch it into; None: the cache (``cache_dir()``).
        **options: for the dataset's download function (cinic10 takes ``slug``, the Kaggle dataset).

    Returns:
        The folder the dataset is in.

    Raises:
        DataError: an unknown dataset, one with nothing to download, or a download or folder that fails.
    """
    src = source(name)
    if src.download is None:
        raise DataError(f"{name}: nothing to download ({src.description}); datasets that download: "
                        f"{', '.join(downloadable())}")
    with os_errors_as_data_errors():
        return src.download(Path(dest).expanduser() if dest else None, **options)


def check_image_size(name: str, image_size: int | None) -> None:
    """Refuse ``image_size`` for a dataset that cannot resize (a DataError naming data.image_size)."""
    if image_size is not None and not source(name).resizes:
        resizing = sorted(n for n, s in DATASETS.items() if s.resizes)
        raise DataError(f"data.image_size: the {name} dataset has one image size; image_size applies to "
                        f"{', '.join(resizing)}: remove it")


def check_label_mode(name: str, label_mode: str | None) -> None:
    """Refuse ``label_mode`` for a dataset with one labelling, or one it does not have (a DataError naming
    data.label_mode)."""
    modes = source(name).label_modes
    if label_mode is None or (modes and label_mode in modes):
        return
    if modes:
        raise DataError(f"data.label_mode: {label_mode!r} is not a labelling of {name}; use "
                        f"{' or '.join(modes)}")
    having = sorted(n for n, s in DATASETS.items() if s.label_modes)
    raise DataError(f"data.label_mode: the {name} dataset has one set of labels; label_mode applies to "
                    f"{', '.join(having)}: remove it")


def load(name: str, *, data_dir: str | None = None, validation_split: float = 0.1, test_split: float = 0.2,
         subset: dict | None = None, seed: int = 0, download: bool = True,
         image_size: int | None = None, label_mode: str | None = None) -> Dataset:
    """Load dataset ``name``; split off validation and test when it has none; apply per-class caps.

    Args:
        name: a registered dataset's name.
        data_dir: where the dataset's data is (its ``data.data_dir``); None: the dataset's own place.
        validation_split: the fraction of the training images split off as validation (stratified, seeded),
            used only when the dataset has no validation split of its own.
        test_split: the same for the test split.
        subset: per-class caps, ``{"train"|"validation"|"test": images per class or None}``; None: no caps.
        seed: the seed of the splits, the caps and the loader.
        download: whether a dataset that downloads may fetch its data when it is not there.
        image_size: a square's side to resize image-file datasets to; None: their own size.
        label_mode: the labels of a dataset that has several (cifar100: fine or coarse); None: its default.

    Returns:
        The Dataset: uint8 train, validation and test splits and the class names.

    Raises:
        DataError: the data is missing, unreadable or malformed, or a split cannot be made (the message names
            the file or folder).
        ValueError: a split fraction outside (0, 1), or a ``subset`` of other keys or values.
    """
    src = source(name)
    for key, fraction in (("validation_split", validation_split), ("test_split", test_split)):
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"{key} must be in (0, 1), got {fraction!r}")
    caps = _check_subset(subset)
    check_image_size(name, image_size)
    check_label_mode(name, label_mode)
    labels = {"label_mode": src.label_mode_of(label_mode)} if src.label_modes else {}
    with os_errors_as_data_errors():  # a folder or file that cannot be read, wherever the loader meets it
        train, val, test, class_names = src.loader(data_dir=data_dir, download=download, seed=seed,
                                                   image_size=image_size, **labels)
    _check_classes(quoted(data_dir) if data_dir else name, train, class_names)
    split_off = tuple(what for what, split in (("test", test), ("validation", val)) if split is None)
    if test is None:
        train, test = _split_off(name, train, test_split, seed, "test")
    if val is None:
        train, val = _split_off(name, train, validation_split, seed, "validation")
    train = _cap(train, caps.get("train"), seed)
    val = _cap(val, caps.get("validation"), seed)
    test = _cap(test, caps.get("test"), seed)
    return Dataset(name, train, val, test, tuple(class_names), split_off)


def _check_classes(where: str, train: Split, class_names) -> None:
    """A classifier needs training images of at least two classes: refuse fewer, naming ``where``."""
    if len(train.y) == 0:
        raise DataError(f"{where}: no training images; a classifier needs images of at least two classes")
    present = np.unique(train.y)
    if len(present) < 2 or len(class_names) < 2:
        label = int(present[0])
        named = repr(class_names[label]) if label < len(class_names) else str(label)
        raise DataError(f"{where}: every training image is of class {named}; a classifier needs at least two "
                        f"classes: add images of another class")


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


def _split_off(name: str, train: Split, fraction: float, seed: int, what: str) -> tuple[Split, Split]:
    """Split ``fraction`` of ``train`` off (as ``what``), stratified by class and seeded."""
    try:
        keep, held = train_test_split(np.arange(len(train.y)), test_size=fraction,
                                      stratify=train.y, random_state=seed)
    except ValueError as e:  # too few images for a stratified split
        raise DataError(f"{name}: cannot split {fraction} of {len(train.y)} training images "
                        f"into a stratified {what} set ({e}); use more data or another "
                        f"{what}_split") from e
    return take(train, np.sort(keep)), take(train, np.sort(held))


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
    return take(split, order)


def take(split: Split, idx: np.ndarray) -> Split:
    """The images of ``split`` at ``idx``."""
    return Split(split.x[idx], split.y[idx])
