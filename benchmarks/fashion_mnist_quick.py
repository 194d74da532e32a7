"""How long studies/fashion_mnist_quick.yaml takes, on Fashion-MNIST-sized data: 60,000 + 10,000 random 28x28
images written as the four gzipped IDX files Zalando distributes (this machine cannot download the real ones;
the study trains for fixed epochs, so its time does not depend on the pixels).

    python benchmarks/fashion_mnist_quick.py [--repeats 2] [--output benchmarks/fashion_mnist_quick.md]

Reported: the wall time of each whole `hpstudy run` of the shipped study (pointed at the files by data.data_dir,
everything else as shipped: the grid, its confirm step, the best model's test evaluation), its trials' and seed
repeats' own seconds, and the time `hpstudy.data.load` takes to read the four files (median of 3).
"""
from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "studies" / "fashion_mnist_quick.yaml"
SPLITS = {"train": (60_000, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": (10_000, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def write_idx(path: Path, array: np.ndarray) -> None:
    """``array`` (uint8) as a gzipped IDX file: 00 00 08 ndim, each dimension as big-endian uint32, the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def write_files(folder: Path) -> Path:
    """Random images and labels of Fashion-MNIST's sizes, in its four file names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for count, images, labels in SPLITS.values():
        write_idx(folder / f"{images}.gz", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{labels}.gz", rng.integers(0, 10, count, dtype=np.uint8))
    return folder


def load_seconds(folder: Path, runs: int = 3) -> list[float]:
    """Seconds of `hpstudy.data.load("fashion_mnist", data_dir=folder)`, each run."""
    from hpstudy import data
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        data.load("fashion_mnist", data_dir=str(folder), validation_split=0.1)
        out.append(time.perf_counter() - started)
    return out


def run_study(study: Path, results: Path) -> float:
    """Seconds of one whole `hpstudy run` process."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hpstudy.cli", "run", str(study), "--results-dir", str(results)],
                   env={**os.environ, **common.QUIET}, check=True)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "fashion_mnist_quick.md"))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hpstudy-fashion-"))
    files = write_files(work / "fashion_mnist")
    loads = load_seconds(files)
    study = yaml.safe_load(STUDY.read_text())
    study["data"].update(data_dir=str(files), download=False)
    path = common.write_study(work, study)

    import hpstudy
    rows = []
    for k in range(args.repeats):
        shutil.rmtree(work / "results", ignore_errors=True)
        load = os.getloadavg()[0]       # other work sharing the CPU slows a run: say how much there was
        wall = run_study(path, work / "results")
        done = hpstudy.load_study(work / "results" / study["name"])
        rows.append((k + 1, wall, len(done.trials), float(done.trials.seconds.sum()), len(done.repeats),
                     float(done.repeats.seconds.sum()), load, os.getloadavg()[0]))
    walls = [r[1] for r in rows]
    lines = ["# studies/fashion_mnist_quick.yaml: how long it takes", "",
             *common.machine_lines(common.machine()), "",
             f"Command: `python benchmarks/fashion_mnist_quick.py --repeats {args.repeats}`. Data: 60,000 + 10,000 "
             f"random 28x28 images in Fashion-MNIST's four gzipped IDX files (the download's sizes; the study's "
             f"fixed epochs make its time independent of the pixels).", "",
             f"- reading the four files (`hpstudy.data.load`, {len(loads)} runs): median "
             f"{statistics.median(loads):.2f} s (min {min(loads):.2f}, max {max(loads):.2f})",
             f"- the whole `hpstudy run`, {len(walls)} runs: median {statistics.median(walls):.0f} s "
             f"(min {min(walls):.0f}, max {max(walls):.0f})",
             f"- the CPU's load average (1 minute) before and after each run is in the table: above the "
             f"{os.cpu_count()} cores, other work was sharing them", "",
             "| run | wall s | trials | trials' seconds | seed repeats | repeats' seconds | load before | load after |",
             "|---|---|---|---|---|---|---|---|",
             *[f"| {r[0]} | {r[1]:.0f} | {r[2]} | {r[3]:.0f} | {r[4]} | {r[5]:.0f} | {r[6]:.1f} | {r[7]:.1f} |"
               for r in rows], ""]
    Path(args.output).write_text("\n".join(lines))
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
