"""CIFAR-100 from the authors' Python release, with its fine (100 classes) or coarse (20 superclasses) labels
(see hpstudy.data.cifar for the finding, fetching and safe reading)."""

from __future__ import annotations

from pathlib import Path

from hpstudy.data import cifar
from hpstudy.data.core import register

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
# The SHA-256 keras.datasets.cifar100 checks the same archive against (the authors' page publishes its MD5,
# eb9058c3a382ffc7106e4002c42a8d85).
CIFAR100_SHA256 = "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"
LABEL_MODES = {"fine": 100, "coarse": 20}   # the first is the default


def _release() -> cifar.Release:
    """CIFAR-100's release, read at each call (tests point the URL and checksum at a local archive)."""
    return cifar.Release("CIFAR-100", "cifar100", "cifar-100-python", CIFAR100_URL, "cifar-100-python.tar.gz",
                         CIFAR100_SHA256, ("train", "test", "meta"))


def _locate(data_dir: str | None) -> tuple[str, bool]:
    return cifar.locate(_release(), data_dir)


def fetch_cifar100(dest: Path | None = None) -> Path:
    """Download and extract CIFAR-100 into ``dest`` (default: the cache); returns the cifar-100-python folder."""
    return cifar.fetch_release(_release(), dest)


@register("cifar100", locate=_locate, download=fetch_cifar100, num_classes=100, label_modes=LABEL_MODES)
def _cifar100(*, data_dir=None, download=True, seed=0, image_size=None, label_mode="fine"):
    """CIFAR-100: 60,000 32×32 images of 100 classes in 20 superclasses (downloaded from the authors' site)."""
    release = _release()
    folder = cifar.find(release, data_dir, download)
    names = cifar.read_names(release, folder / "meta", f"{label_mode}_label_names".encode(), LABEL_MODES[label_mode])
    key = f"{label_mode}_labels".encode()
    train, test = (cifar.read_batch(release, folder / split, key, len(names)) for split in ("train", "test"))
    return train, None, test, names
