"""Datasets: image classification data as uint8 arrays, split and subset reproducibly.

``load(name, ...)`` returns a ``Dataset`` of uint8 train / validation / test splits; ``download(name)``
fetches a dataset that downloads; ``DATASETS`` holds every registered ``Source`` (digits, mnist,
fashion_mnist, cifar10, cifar100, cinic10, folder, npz).
"""

# importing a loader module registers its datasets
from hpstudy.data import cifar10, cifar100, digits, folders, mnist
from hpstudy.data.core import (
                               DATASETS,
                               Dataset,
                               Source,
                               Split,
                               cache_dir,
                               download,
                               downloadable,
                               load,
                               register,
                               source,
                               take,
)
from hpstudy.data.fetch import fetch

__all__ = ["DATASETS", "Dataset", "Source", "Split", "cache_dir", "download", "downloadable", "fetch", "load",
           "register", "source", "take", "cifar10", "cifar100", "digits", "folders", "mnist"]
