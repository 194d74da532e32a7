"""Datasets: image classification data as uint8 arrays, split and subset reproducibly.

``load(name, ...)`` returns a ``Dataset`` of uint8 train / validation / test splits; ``DATASETS``
holds every registered ``Source`` (digits, cifar10, cinic10, folder, npz).
"""

from hpstudy.data.core import DATASETS, Dataset, Source, Split, cache_dir, load, register, source, take
from hpstudy.data.fetch import fetch
from hpstudy.data import cifar10, digits  # noqa: F401 - importing registers the datasets

__all__ = ["DATASETS", "Dataset", "Source", "Split", "cache_dir", "fetch", "load", "register", "source", "take"]
