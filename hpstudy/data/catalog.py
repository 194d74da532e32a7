"""What `hpstudy data list` and `hpstudy data info` show: the registered datasets and their splits."""

from __future__ import annotations

import pandas as pd

from hpstudy.data.core import DATASETS, Dataset, cache_dir


def listing(data_dir: str | None = None) -> pd.DataFrame:
    """One row per registered dataset: name, description, where its data is (or goes), whether it is there."""
    rows = []
    for name, src in sorted(DATASETS.items()):
        where, present = src.locate(data_dir)
        shape = "x".join(map(str, src.input_shape)) if src.input_shape else "from the data"
        rows.append({"dataset": name, "present": "yes" if present else "no", "location": where,
                     "images": shape, "description": src.description})
    return pd.DataFrame(rows)


def class_counts(dataset: Dataset) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with a total row."""
    counts = {}
    for split_name, split in (("train", dataset.train), ("validation", dataset.val), ("test", dataset.test)):
        per_class = pd.Series(split.y).value_counts().reindex(range(dataset.num_classes), fill_value=0)
        counts[split_name] = per_class.to_numpy()
    table = pd.DataFrame(counts, index=pd.Index(dataset.class_names, name="class"))
    table.loc["total"] = table.sum()
    return table


def summary(dataset: Dataset) -> str:
    """A few lines: image shape, classes, split sizes and which splits were taken from train."""
    sizes = ", ".join(f"{name} {len(split.y):,}" for name, split in
                      (("train", dataset.train), ("validation", dataset.val), ("test", dataset.test)))
    lines = [f"{dataset.name}: {dataset.num_classes} classes, images {'x'.join(map(str, dataset.input_shape))} uint8",
             f"splits: {sizes}"]
    if dataset.split_off:
        lines.append(f"split off train (stratified, seeded): {' and '.join(dataset.split_off)}")
    return "\n".join(lines)


def cache_root() -> str:
    """The folder downloads and decoded caches go to."""
    return str(cache_dir())
