"""CIFAR-10 from the authors' Python release (see hpstudy.data.cifar for the finding, fetching and safe reading)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hpstudy.data import cifar
from hpstudy.data.core import Split, register

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"   # published on https://www.cs.toronto.edu/~kriz/cifar.html
_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def _release() -> cifar.Release:
    """CIFAR-10's release, read at each call (tests point the URL and checksum at a local archive)."""
    return cifar.Release("CIFAR-10", "cifar10", "cifar-10-batches-py", CIFAR10_URL, "cifar-10-python.tar.gz",
                         CIFAR10_MD5, (*_BATCHES, "test_batch", "batches.meta"))


def _locate(data_dir: str | None) -> tuple[str, bool]:
    return cifar.locate(_release(), data_dir)


def fetch_cifar10(dest: Path | None = None) -> Path:
    """Download and extract CIFAR-10 into ``dest`` (default: the cache); returns the batches folder."""
    return cifar.fetch_release(_release(), dest)


@register("cifar10", locate=_locate, download=fetch_cifar10)
def _cifar10(*, data_dir=None, download=True, seed=0, image_size=None):
    """CIFAR-10: 60,000 32×32 images of 10 classes (downloaded from the authors' site)."""
    release = _release()
    folder = cifar.find(release, data_dir, download)
    class_names = cifar.read_names(release, folder / "batches.meta", b"label_names")
    parts = [cifar.read_batch(release, folder / name, b"labels", len(class_names)) for name in _BATCHES]
    train = Split(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))
    return train, None, cifar.read_batch(release, folder / "test_batch", b"labels", len(class_names)), class_names
