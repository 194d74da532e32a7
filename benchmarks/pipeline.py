"""Input pipeline benchmark: how fast hpstudy feeds images versus how fast a small CNN consumes them.

    python benchmarks/pipeline.py [--images 8192] [--backends tensorflow jax] [--output benchmarks/pipeline.md]

For each Keras backend (each in its own process, as KERAS_BACKEND must be set before Keras is imported):
- feed: `model.fit` of a model that does almost nothing (rescale, global pooling, one dense layer) on
  CIFAR-shaped uint8 arrays, as hpstudy trains: what the input side delivers per second, step overhead
  included;
- the same with the study file's augmentation on (pad-crop 4, flip, translate 0.1, cutout 8), which runs
  inside the model;
- train: the default `plain_cnn` (what a small study trains), without and with that augmentation.
And, once: decoding a folder of PNG images into the cache, and loading it back from the cache.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
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
    from hpstudy.engine import preprocess

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
    return {"each": each, "devices": keras.distribution.list_devices(), "backend": keras.backend.backend(), "keras": keras.__version__, "rates": rates,
            "tensorflow_imported": "tensorflow" in sys.modules}


def measure_decode(images: int) -> dict | None:
    """Decode a folder of PNGs into the cache (first load), then load it from the cache (second load)."""
    import numpy as np
    from PIL import Image

    from hpstudy import data

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HPSTUDY_DATA_DIR"] = str(Path(tmp) / "cache")
        root = Path(tmp) / "images" / "train"
        rng = np.random.default_rng(0)
        for i in range(images):
            folder = root / f"class{i % 10}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            data.load("folder", data_dir=str(root.parent))
            timings.append(time.perf_counter() - start)
    return {"images": images, "first_load_s": timings[0], "cached_load_s": timings[1]}


def machine() -> str:
    info = common.machine()
    return f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']:.0f} GiB, Python {info['python']}"


def render(results: list[dict], decode: dict | None, images: int) -> str:
    lines = [f"# Input pipeline: feeding vs consuming ({datetime.date.today().isoformat()})", "",
             f"Machine: {machine()}; Keras devices: {', '.join(results[0]['devices'])}. Random CIFAR-shaped uint8 data, {images:,} images, batch {BATCH}, "
             f"images/s over 2 epochs after a warm-up epoch (`python benchmarks/pipeline.py`).", "",
             "| backend | feed | feed + augmentation | train plain_cnn | train plain_cnn + augmentation "
             "| feed / train | TensorFlow imported |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        rates = r["rates"]
        ratio = rates["feed + augmentation"] / rates["train plain_cnn + augmentation"]
        lines.append(f"| {r['backend']} (keras {r['keras']}) | " + " | ".join(f"{v:,.0f}" for v in rates.values())
                     + f" | {ratio:.1f}x | {'yes' if r['tensorflow_imported'] else 'no'} |")
    lines += ["", "Feeding with one augmentation at a time (images/s, the feed model):", "",
              "| backend | " + " | ".join(f"{k}: {AUGMENT[k]}" for k in results[0]["each"]) + " |",
              "|---|" + "---:|" * len(results[0]["each"])]
    for r in results:
        lines.append(f"| {r['backend']} | " + " | ".join(f"{v:,.0f}" for v in r["each"].values()) + " |")
    if decode:
        lines += ["", f"Folder of {decode['images']:,} 32x32 PNGs: first load (decode into the cache) "
                      f"{decode['first_load_s']:.2f} s ({decode['images'] / decode['first_load_s']:,.0f} images/s); "
                      f"second load (from the cache) {decode['cached_load_s']:.2f} s."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--decode-images", type=int, default=20000)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--output", default=str(Path(__file__).with_name("pipeline.md")))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_backend(args.images)))
        return
    results = []
    for backend in args.backends:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = subprocess.run([sys.executable, __file__, "--child", "--images", str(args.images)], env=env,
                             capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(backend, results[-1]["rates"], flush=True)
    decode = measure_decode(args.decode_images) if args.decode_images else None
    text = render(results, decode, args.images)
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
