"""MNIST and Fashion-MNIST from their four IDX files, gzipped as distributed or not, as 28×28×1 greyscale.

The files are looked for in data.data_dir, else in the cache (``$HPSTUDY_DATA_DIR/mnist``,
``.../fashion_mnist``), else downloaded there, each checked against the MD5 its distributors publish.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpstudy.data import idx
from hpstudy.data.core import CACHE_FIX, Split, cache_dir, register
from hpstudy.data.fetch import fetch, make_folder
from hpstudy.data.paths import existing_folder, kind, quoted
from hpstudy.errors import DataError

# The split -> (images file, labels file), named as distributed (each also as NAME.gz).
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
SIDE = 28

# The mirror torchvision and PyTorch's tutorials download from (yann.lecun.com, the original, now often
# refuses downloads); the MD5s are those torchvision.datasets.MNIST checks these files against.
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_MD5 = {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}
# Zalando's own download site and the MD5s its README (github.com/zalandoresearch/fashion-mnist) publishes.
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_MD5 = {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                     "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                     "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                     "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


@dataclass(frozen=True)
class Distribution:
    """One dataset in MNIST's four files: how messages name it, its dataset name, the URL of the folder the
    .gz files are in, their MD5s and the class names."""

    title: str
    dataset: str
    url: str
    md5: dict
    class_names: tuple[str, ...]

    def fix(self) -> str:
        """What to do about a file that is missing or bad."""
        return (f"set data.data_dir to a folder holding {self.title}'s four IDX files ({', '.join(self.names())}, "
                f"gzipped or not) from {self.url}")

    @staticmethod
    def names() -> list[str]:
        """The four files' names, without .gz."""
        return [name for pair in FILES.values() for name in pair]


def _mnist() -> Distribution:
    """MNIST's distribution, read at each call (tests point the URL and checksums at local files)."""
    return Distribution("MNIST", "mnist", MNIST_URL, MNIST_MD5, tuple(str(d) for d in range(10)))


def _fashion_mnist() -> Distribution:
    """Fashion-MNIST's distribution, read at each call."""
    return Distribution("Fashion-MNIST", "fashion_mnist", FASHION_MNIST_URL, FASHION_MNIST_MD5, FASHION_CLASSES)


def files_in(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """(the four files found in ``folder``, by name without .gz; the names not found). The uncompressed copy
    is read where both are there (torchvision keeps both). Whatever has the name counts: a folder or a pipe in
    its place is refused when read, naming it."""
    found, missing = {}, []
    for name in Distribution.names():
        path = next((p for p in (folder / name, folder / f"{name}.gz") if kind(p) is not None), None)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    return found, missing


def _locate(dist: Distribution, data_dir: str | None) -> tuple[str, bool]:
    folder = Path(data_dir).expanduser() if data_dir else cache_dir() / dist.dataset
    return str(folder), kind(folder) == "folder" and not files_in(folder)[1]


def fetch_files(dist: Distribution, dest: Path | None = None) -> Path:
    """Download into ``dest`` (default: the cache) each of the four .gz files not there already; returns the
    folder. A file of that name already there (gzipped or not) is kept as it is."""
    root = Path(dest).expanduser() if dest else cache_dir() / dist.dataset
    make_folder(root, "choose another folder" if dest else CACHE_FIX)
    for name in files_in(root)[1]:
        fetch(dist.url + f"{name}.gz", root / f"{name}.gz", dist.md5[f"{name}.gz"])
    return root


def _find(dist: Distribution, data_dir, download: bool) -> dict[str, Path]:
    """The four files: in data_dir, else in the cache, else downloaded into the cache."""
    if data_dir:
        folder = existing_folder(Path(data_dir).expanduser(), dist.fix())
        found, missing = files_in(folder)
        if missing:
            raise DataError(f"{quoted(folder)}: no {missing[0]} (or {missing[0]}.gz) here; {dist.fix()}")
        return found
    root = cache_dir() / dist.dataset
    found, missing = files_in(root) if kind(root) == "folder" else ({}, Distribution.names())
    if not missing:
        return found
    if not download:
        raise DataError(f"{dist.title} not found: no {missing[0]}(.gz) in {quoted(root)}; run `hpstudy data download "
                        f"{dist.dataset}`, or put its four IDX files there from {dist.url}, or point data.data_dir "
                        f"in the study at the folder holding them")
    return files_in(fetch_files(dist))[0]


def _replace(dist: Distribution, name: str) -> str:
    """What to do about a bad file ``name``."""
    return f"replace it with {name}.gz from {dist.url}"


def _read(dist: Distribution, data_dir, download: bool) -> tuple:
    """The loader result: train and test from the four files, no validation split of their own."""
    found = _find(dist, data_dir, download)
    train, test = (_read_split(dist, found[images], found[labels]) for images, labels in FILES.values())
    return train, None, test, dist.class_names


def _read_split(dist: Distribution, images_file: Path, labels_file: Path) -> Split:
    """One split from its images and labels files, which must agree: N images of 28×28, N labels in range."""
    images_fix, labels_fix = (f"replace it with {f.name.removesuffix('.gz')}.gz from {dist.url}"
                              for f in (images_file, labels_file))
    images = idx.read(images_file, images_fix, ndim=3, what="images (N × rows × columns)")
    labels = idx.read(labels_file, labels_fix, ndim=1, what="labels")
    if images.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{quoted(images_file)}: images of {images.shape[2]}×{images.shape[1]} pixels; "
                        f"{dist.title}'s are {SIDE}×{SIDE}: {images_fix}")
    if len(labels) != len(images):
        raise DataError(f"{quoted(labels_file)}: {len(labels)} labels but {images_file.name} holds {len(images)} "
                        f"images; the two files of a split must match: {labels_fix}")
    if labels.size and labels.max() >= len(dist.class_names):
        raise DataError(f"{quoted(labels_file)}: label {labels.max()}; {dist.title}'s labels are 0 to "
                        f"{len(dist.class_names) - 1}: {labels_fix}")
    return Split(images[..., None], labels.astype(np.int64))


def _locate_mnist(data_dir: str | None) -> tuple[str, bool]:
    return _locate(_mnist(), data_dir)


def fetch_mnist(dest: Path | None = None) -> Path:
    """Download MNIST's four .gz files into ``dest`` (default: the cache); returns the folder."""
    return fetch_files(_mnist(), dest)


@register("mnist", locate=_locate_mnist, input_shape=(SIDE, SIDE, 1), download=fetch_mnist)
def _mnist_dataset(*, data_dir=None, download=True, seed=0, image_size=None):
    """MNIST: 70,000 28×28 greyscale handwritten digits, own test split of 10,000 (PyTorch's mirror)."""
    return _read(_mnist(), data_dir, download)


def _locate_fashion(data_dir: str | None) -> tuple[str, bool]:
    return _locate(_fashion_mnist(), data_dir)


def fetch_fashion_mnist(dest: Path | None = None) -> Path:
    """Download Fashion-MNIST's four .gz files into ``dest`` (default: the cache); returns the folder."""
    return fetch_files(_fashion_mnist(), dest)


@register("fashion_mnist", locate=_locate_fashion, input_shape=(SIDE, SIDE, 1), download=fetch_fashion_mnist)
def _fashion_mnist_dataset(*, data_dir=None, download=True, seed=0, image_size=None):
    """Fashion-MNIST: 70,000 28×28 greyscale images of 10 kinds of clothing, own test split of 10,000 (Zalando)."""
    return _read(_fashion_mnist(), data_dir, download)
