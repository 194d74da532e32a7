"""Input pipeline benchmark: how fast hpstudy feeds images versus how fast a small CNN consumes them.

    python benchmarks/pipeline.py [--images 4096] [--repeats 3] [--backends tensorflow jax] [--decode-images 270000]
                                  [--output benchmarks/pipeline.md]

For each Keras backend (each in its own process, as KERAS_BACKEND must be set before Keras is imported):
- feed: `model.fit` of a model that does almost nothing (rescale, global pooling, one dense layer) on
  CIFAR-shaped uint8 arrays, as hpstudy trains: what the input side delivers per second, step overhead
  included;
- the same with the study file's augmentation on (pad-crop 4, flip, translate 0.1, cutout 8), which runs
  inside the model;
- train: the default `plain_cnn` (what a small study trains), without and with that augmentation.
Each backend's measurement runs --repeats times, the backends alternating, each a fresh process: reported as
median (min–max). And: decoding a folder of generated 32x32 PNGs (CINIC-10's 270,000 by default) into the cache,
and loading it back from the cache, --repeats rounds (the cache removed before each first load; the PNGs stay
in the page cache, so the first load measures decoding, not the disk).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

AUGMENT = {"standardize": False, "flip": True, "crop_padding": 4, "translate": 0.1, "cutout": 8}
PLAIN = {"standardize": False, "flip": False, "crop_padding": 0, "translate": 0.0, "cutout": 0}
BATCH = 128


def _images_per_second(model, x, y, epochs: int = 2) -> float:
    """Images per second of `model.fit`, after one untimed epoch (compilation, warm caches)."""
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, shuffle=True)
    return epochs * len(x) / (time.perf_counter() - start)


def measure_backend(images: int) -> dict:
    """Run in a child process with KERAS_BACKEND set: feed and train rates on random CIFAR-shaped data."""
    import keras
    import numpy as np

    from hpstudy import models
    from hpstudy.models import preprocess

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, images).astype(np.int64)

    def feed_only():
        inputs = keras.Input((32, 32, 3))
        return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(
            keras.layers.GlobalAveragePooling2D()(inputs)))

    rates = {}
    for label, body, values in [("feed", feed_only, PLAIN), ("feed + augmentation", feed_only, AUGMENT),
                                ("train plain_cnn", lambda: models.build("plain_cnn", (32, 32, 3), 10), PLAIN),
                                ("train plain_cnn + augmentation",
                                 lambda: models.build("plain_cnn", (32, 32, 3), 10), AUGMENT)]:
        keras.backend.clear_session()
        rates[label] = _images_per_second(preprocess.wrap(body(), values), x, y)
    each = {}
    for key in ("crop_padding", "flip", "translate", "cutout"):   # one augmentation at a time, feed model
        keras.backend.clear_session()
        each[key] = _images_per_second(preprocess.wrap(feed_only(), {**PLAIN, key: AUGMENT[key]}), x, y)
    return {"each": each, "devices": keras.distribution.list_devices(), "backend": keras.backend.backend(),
            "keras": keras.__version__, "rates": rates, "tensorflow_imported": "tensorflow" in sys.modules}


def _write_pngs(job: tuple) -> None:
    """Write PNGs number `start` to `stop` into `root`/class<i % 10>/ (one worker's share)."""
    import numpy as np
    from PIL import Image
    root, start, stop = job
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / f"class{i % 10}" / f"{i}.png")


def measure_decode(images: int, repeats: int = 1) -> dict:
    """`repeats` rounds of: the cache removed, a first load (decode into the cache), then a load from the cache."""
    import shutil
    from multiprocessing import Pool

    from hpstudy import data

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        os.environ["HPSTUDY_DATA_DIR"] = str(cache)
        root = Path(tmp) / "images" / "train"
        for k in range(10):
            (root / f"class{k}").mkdir(parents=True)
        step = 5000
        with Pool(os.cpu_count() or 1) as pool:
            pool.map(_write_pngs, [(root, i, min(images, i + step)) for i in range(0, images, step)])
        first, cached = [], []
        for index in range(repeats):
            shutil.rmtree(cache, ignore_errors=True)
            for timings in (first, cached):
                start = time.perf_counter()
                data.load("folder", data_dir=str(root.parent))
                timings.append(time.perf_counter() - start)
            common.progress(f"pipeline: {images:,} PNGs, round {index + 1}: first load {first[-1]:.2f} s, "
                            f"from the cache {cached[-1]:.2f} s")
    return {"images": images, "first_load_s": first, "cached_load_s": cached}


def _cells(values: list[float]) -> str:
    """'median (min–max)' of images/s, or the one value."""
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def render_lines(backends: list[list[dict]], decode: dict | None, images: int) -> list[str]:
    """The tables: `backends` holds, per backend, its rounds' results (measure_backend)."""
    repeats = len(backends[0])
    lines = [f"Random CIFAR-shaped uint8 data, {images:,} images, batch {BATCH}, images/s over 2 epochs after a "
             f"warm-up epoch; {repeats} rounds, the backends alternating, each a fresh process; median (min–max) over "
             f"the rounds. Keras devices: {', '.join(backends[0][0]['devices'])}.", "",
             "| backend | " + " | ".join(backends[0][0]["rates"]) + " | feed / train, with augmentation | "
             "TensorFlow imported |", "|---|" + "---:|" * (len(backends[0][0]["rates"]) + 1) + "---|"]
    for rounds in backends:
        first = rounds[0]
        ratios = [r["rates"]["feed + augmentation"] / r["rates"]["train plain_cnn + augmentation"] for r in rounds]
        cells = [_cells([r["rates"][label] for r in rounds]) for label in first["rates"]]
        ratio = (f"{ratios[0]:.1f}x" if repeats == 1 else
                 f"{statistics.median(ratios):.1f}x ({min(ratios):.1f}–{max(ratios):.1f})")
        lines.append(f"| {first['backend']} (keras {first['keras']}) | " + " | ".join(cells) + f" | {ratio} | "
                     f"{'yes' if any(r['tensorflow_imported'] for r in rounds) else 'no'} |")
    each = list(backends[0][0]["each"])
    lines += ["", "Feeding with one augmentation at a time (images/s, the feed model):", "",
              "| backend | " + " | ".join(f"{k}: {AUGMENT[k]}" for k in each) + " |", "|---|" + "---:|" * len(each)]
    for rounds in backends:
        lines.append(f"| {rounds[0]['backend']} | " + " | ".join(_cells([r["each"][k] for r in rounds]) for k in each)
                     + " |")
    if decode:
        first, cached = decode["first_load_s"], decode["cached_load_s"]
        rate = decode["images"] / statistics.median(first)
        lines += ["", f"Folder of {decode['images']:,} generated 32x32 PNGs in class folders (in the page cache), "
                      f"{len(first)} rounds: first load (decode into the cache) {_seconds(first)} s "
                      f"({rate:,.0f} images/s at the median); from the cache {_seconds(cached)} s."]
    return lines


def _seconds(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def render(backends: list[list[dict]], decode: dict | None, images: int, info: dict | None = None) -> str:
    """benchmarks/pipeline.md."""
    return "\n".join(["# Input pipeline: feeding vs consuming", "", *common.machine_lines(info or common.machine()),
                      "", *render_lines(backends, decode, images)]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--decode-images", type=int, default=270_000)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--output", default=str(Path(__file__).with_name("pipeline.md")))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_backend(args.images)))
        return
    results = [[] for _ in args.backends]
    for _ in range(args.repeats):
        for rounds, backend in zip(results, args.backends):
            env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
            out = subprocess.run([sys.executable, __file__, "--child", "--images", str(args.images)], env=env,
                                 capture_output=True, text=True, check=True).stdout
            rounds.append(json.loads(out.strip().splitlines()[-1]))
            print(backend, rounds[-1]["rates"], flush=True)
    decode = measure_decode(args.decode_images, args.repeats) if args.decode_images else None
    text = render(results, decode, args.images)
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
