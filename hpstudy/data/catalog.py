"""What `hpstudy data list` and `hpstudy data info` show: the registered datasets and their splits."""

from __future__ import annotations

import pandas as pd

from hpstudy.data.cache import decoded_copies
from hpstudy.data.core import DATASETS, Dataset, cache_dir
from hpstudy.data.paths import os_errors_as_data_errors


def listing(data_dir: str | None = None) -> pd.DataFrame:
    """One row per registered dataset: name, where its data is (or goes), whether it is there, its decoded
    copies in the cache (image-file datasets: one per source folder and image_size) and a description."""
    rows = []
    for name, src in sorted(DATASETS.items()):
        with os_errors_as_data_errors():
            where, present = src.locate(data_dir)
            copies, size = decoded_copies(name)
        shape = "x".join(map(str, src.input_shape)) if src.input_shape else "from the data"
        decoded = f"{copies} ({_size(size)})" if copies else "-"
        rows.append({"dataset": name, "present": "yes" if present else "no", "location": where,
                     "images": shape, "decoded copies": decoded, "description": src.description})
    return pd.DataFrame(rows)


def _size(size: int) -> str:
    """A size in bytes as "12.3 MB"."""
    if size < 1000:
        return f"{size} bytes"
    scaled = size / 1000
    for unit in ("kB", "MB"):
        if scaled < 1000:
            return f"{scaled:.1f} {unit}"
        scaled /= 1000
    return f"{scaled:.1f} GB"


def class_counts(dataset: Dataset) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with a total row."""
    counts = {}
    for split_name, split in (("train", dataset.train), ("validation", dataset.validation), ("test", dataset.test)):
        per_class = pd.Series(split.y).value_counts().reindex(range(dataset.num_classes), fill_value=0)
        counts[split_name] = per_class.to_numpy()
    table = pd.DataFrame(counts, index=pd.Index(dataset.class_names, name="class"))
    table.loc["total"] = table.sum()
    return table


def summary(dataset: Dataset) -> str:
    """A few lines: image shape, classes, split sizes and which splits were taken from train."""
    sizes = ", ".join(f"{name} {len(split.y):,}" for name, split in
                      (("train", dataset.train), ("validation", dataset.validation), ("test", dataset.test)))
    lines = [f"{dataset.name}: {dataset.num_classes} classes, images {'x'.join(map(str, dataset.input_shape))} uint8",
             f"splits: {sizes}"]
    if dataset.split_off:
        lines.append(f"split off train (stratified, seeded): {' and '.join(dataset.split_off)}")
    return "\n".join(lines)


def cache_root() -> str:
    """The folder downloads go to; decoded copies go to its ``decoded`` folder."""
    return str(cache_dir())
