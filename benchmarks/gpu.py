"""GPU benchmark: training images/s of hpstudy's models, trials per hour, and a hand-written PyTorch reference.

    bash benchmarks/gpu.sh run [--quick] [--sections throughput torch trials] [--images 50000] [--batch 512]
    KERAS_BACKEND=jax python benchmarks/gpu.py --quick          # a CPU smoke test

Each part runs in its own process (JAX and PyTorch must not share one: JAX reserves most of the GPU's memory):
- throughput: images/s of `model.fit` for plain_cnn, resnet (depth 20) and resnet9, each float32 and
  mixed_bfloat16 (train.precision), on random CIFAR-shaped uint8 images fed as hpstudy feeds them (numpy
  arrays through Keras), after a compiling epoch; plus resnet9 with steps_per_execution and with augmentation;
- torch: the same ResNet-9 in a small hand-written PyTorch loop (data on the GPU, cudnn.benchmark, eager,
  bf16 autocast), as what the GPU can do (target: hpstudy >= 0.7x its images/s);
- trials: trials per hour of a small study run one trial at a time, and with `hpstudy run STUDY --workers N`
  (N worker processes sharing the GPU, one chief), when this hpstudy has that flag.
Writes benchmarks/gpu.md.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402

from hpstudy.text import read_csv  # noqa: E402  (hpstudy's CSVs: each text cell as it was written)

PARTS = ("throughput", "torch", "trials")
MODELS = {"plain_cnn": {}, "resnet": {"depth": 20}, "resnet9": {}}
SIZES = {
    "full": {"images": 50_000, "batch": 512, "seconds": 20.0, "trial_images": 10_000, "trial_epochs": 2,
             "trials": 8, "workers": [2, 4]},
    "quick": {"images": 256, "batch": 32, "seconds": 0.5, "trial_images": 256, "trial_epochs": 1, "trials": 2,
              "workers": [2]},
}


# ---------------------------------------------------------------- throughput (hpstudy, JAX)
def throughput_configs() -> list[dict]:
    configs = [{"builder": b, "precision": p} for b in MODELS for p in ("float32", "mixed_bfloat16")]
    configs += [{"builder": "resnet9", "precision": "mixed_bfloat16", "steps_per_execution": 8},
                {"builder": "resnet9", "precision": "mixed_bfloat16", "augment": True}]
    return configs


def child_throughput(size: dict, work: Path) -> dict:
    import keras
    import keras_tuner as kt

    from hpstudy.engine.search import hypermodel
    from hpstudy.study import spec

    x, y = common.random_images(size["images"])
    rows = []
    for config in throughput_configs():
        keras.backend.clear_session()
        train = {"batch_size": size["batch"], "precision": config["precision"],
                 "steps_per_execution": config.get("steps_per_execution", 1)}
        preprocess = {"flip": True, "crop_padding": 4} if config.get("augment") else {}
        study = spec.from_dict({"name": "gpu", "model": {"builder": config["builder"], **MODELS[config["builder"]]},
                                "preprocess": preprocess, "train": train})
        model = hypermodel.SpecHyperModel(study, (32, 32, 3), 10).build(kt.HyperParameters())
        rate = steady_rate(model, x, y, size["batch"], size["seconds"], train["steps_per_execution"])
        # Inference is compiled separately from training: check that it gives numbers too (with jax 0.12 and
        # keras 3.15, bf16 resnet/resnet9 evaluated to NaN on a CPU while training was fine).
        loss = model.evaluate(x[:2 * size["batch"]], y[:2 * size["batch"]], verbose=0, return_dict=True)["loss"]
        rows.append({**config, "batch": size["batch"], "images_per_s": rate, "params": model.count_params(),
                     "evaluate_finite": bool(math.isfinite(loss))})
        common.progress(f"throughput: {config} {rate:,.0f} images/s")
    keras.config.set_dtype_policy("float32")
    return {"rows": rows, "devices": keras.distribution.list_devices(), "backend": keras.backend.backend()}


def steady_rate(model, x, y, batch: int, seconds: float, steps: int = 1) -> float:
    """Images/s of `model.fit` over whole epochs of `x` (at least one, about `seconds`), after a compiling fit."""
    warm = batch * max(8, steps)
    model.fit(x[:warm], y[:warm], batch_size=batch, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
    first = time.perf_counter() - start
    epochs = max(0, int(seconds / first) - 1)
    if not epochs:
        return len(x) / first
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    return epochs * len(x) / (time.perf_counter() - start)


# ---------------------------------------------------------------- the PyTorch reference
def torch_resnet9(num_classes: int = 10):
    """Myrtle's ResNet-9 in PyTorch, the layout of hpstudy's resnet9."""
    import torch
    from torch import nn

    def conv_bn(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))

    class Residual(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

        def forward(self, x):
            return x + self.body(x)

    class Scale(nn.Module):
        def forward(self, x):
            return x * 0.125

    return nn.Sequential(conv_bn(3, 64), conv_bn(64, 128), nn.MaxPool2d(2), Residual(128), conv_bn(128, 256),
                         nn.MaxPool2d(2), conv_bn(256, 512), nn.MaxPool2d(2), Residual(512),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), Scale(), nn.Linear(512, num_classes),
                         ).to(memory_format=torch.channels_last)


def child_torch(size: dict, work: Path) -> dict:
    import torch
    import torch.nn.functional as F

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    x, y = common.random_images(size["images"])
    images = torch.from_numpy(x).to(device)         # uint8 NHWC, on the device once
    labels = torch.from_numpy(y).to(device)
    batch, rows = size["batch"], []

    def epoch(model, optimizer, bf16: bool, limit: int | None = None):
        order = torch.randperm(len(images), device=device)
        steps = (len(images) + batch - 1) // batch if limit is None else limit
        for step in range(steps):
            index = order[step * batch:(step + 1) * batch]
            xb = images[index].permute(0, 3, 1, 2).float().div_(255).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(xb), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    for bf16 in (False, True):
        model = torch_resnet9().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)      # hpstudy's default optimizer
        epoch(model, optimizer, bf16, limit=8)                          # cudnn autotuning, allocator warm-up
        start = time.perf_counter()
        epoch(model, optimizer, bf16)
        first = time.perf_counter() - start
        epochs = max(1, int(size["seconds"] / first))
        start = time.perf_counter()
        for _ in range(epochs):
            epoch(model, optimizer, bf16)
        rate = epochs * len(images) / (time.perf_counter() - start)
        rows.append({"precision": "bf16 autocast" if bf16 else "float32", "images_per_s": rate, "batch": batch})
        common.progress(f"torch: resnet9 {'bf16' if bf16 else 'float32'} {rate:,.0f} images/s")
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    return {"rows": rows, "device": name, "torch": torch.__version__}


# ---------------------------------------------------------------- trials per hour
def trial_study(size: dict, work: Path) -> Path:
    npz = common.write_npz(work / "trials.npz", size["trial_images"], max(256, size["trial_images"] // 10), 256)
    return common.write_study(work, {
        "name": "gpu_trials",
        "data": {"dataset": "npz", "data_dir": str(npz)},
        "model": {"builder": "resnet9", "width": {"tune": "choice", "values": [0.25, 0.5]}},
        # float32: a trial is scored by evaluation, which bf16 broke for batch-norm nets in one JAX (see throughput).
        "train": {"epochs": size["trial_epochs"], "batch_size": size["batch"],
                  "learning_rate": {"tune": "float", "min_value": 1e-4, "max_value": 1e-2, "sampling": "log"}},
        "search": {"tuner": "random", "max_trials": size["trials"], "seed": 0},
    })


def has_workers() -> bool:
    """Whether this hpstudy's `run` has --workers (it is being built)."""
    help_text = subprocess.run([sys.executable, "-m", "hpstudy.cli", "run", "--help"], capture_output=True,
                               text=True).stdout
    return "--workers" in help_text


def measure_trials(size: dict, work: Path) -> dict:
    """Wall time of the study run one trial at a time, then with --workers N; in fresh processes (the CLI)."""
    study = trial_study(size, work)
    # Several JAX processes on one GPU: none may reserve most of its memory up front.
    env = {**os.environ, **common.QUIET, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    runs = []
    workers = [1] + (size["workers"] if has_workers() else [])
    for count in workers:
        command = [sys.executable, "-m", "hpstudy.cli", "run", str(study), "--results-dir", str(work / f"w{count}"),
                   "--overwrite"] + (["--workers", str(count)] if count > 1 else [])
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        completed = _completed(work / f"w{count}" / "gpu_trials" / "trials.csv")
        runs.append({"workers": count, "wall_s": wall, "completed": completed, "exit": done.returncode,
                     "trials_per_hour": completed / wall * 3600,
                     "error": done.stderr[-500:] if done.returncode else ""})
        common.progress(f"trials: {count} worker(s): {completed} trials in {wall:.0f} s")
    return {"runs": runs, "workers_flag": len(workers) > 1, "trials": size["trials"]}


def _completed(table: Path) -> int:
    try:
        return int((read_csv(table).status == "COMPLETED").sum())
    except (OSError, ValueError, AttributeError):
        return 0


# ---------------------------------------------------------------- the report
def render(results: dict, info: dict, mode: str) -> str:
    lines = ["# hpstudy on a GPU", ""]
    if mode == "quick":
        lines += ["**Quick smoke run (`--quick`): tiny sizes, not measurements.**", ""]
    quick = " --quick" if mode == "quick" else ""
    lines += [*common.machine_lines(info), f"- Command: `bash benchmarks/gpu.sh run{quick}` "
              f"(KERAS_BACKEND={os.environ.get('KERAS_BACKEND', 'tensorflow')})", ""]
    if "throughput" in results:
        lines += _render_throughput(results["throughput"])
    if "torch" in results:
        lines += _render_torch(results["torch"], results.get("throughput"))
    if "trials" in results:
        lines += _render_trials(results["trials"])
    return "\n".join(lines) + "\n"


def _failed(part: dict) -> list[str]:
    return ["Failed:", "", "```", part["error"][-1500:], "```", ""]


def _render_throughput(part: dict) -> list[str]:
    lines = ["## Training images/s (hpstudy, random CIFAR-shaped uint8 images)", ""]
    if "error" in part:
        return lines + _failed(part)
    lines += [f"Devices: {', '.join(part['devices'])}; backend {part['backend']}.", "",
              "| model | precision | other | batch | parameters | images/s | vs float32 | evaluate finite |",
              "|---|---|---|---:|---:|---:|---:|---|"]
    base = {r["builder"]: r["images_per_s"] for r in part["rows"] if r["precision"] == "float32"}
    for r in part["rows"]:
        other = ", ".join(f"{k}: {v}" for k, v in r.items() if k in ("steps_per_execution", "augment"))
        lines.append(f"| {r['builder']} | {r['precision']} | {other} | {r['batch']} | {r['params']:,} | "
                     f"{r['images_per_s']:,.0f} | {r['images_per_s'] / base[r['builder']]:.2f}x | "
                     f"{'yes' if r.get('evaluate_finite', True) else 'NO: NaN loss'} |")
    return lines + [""]


def _render_torch(part: dict, throughput: dict | None) -> list[str]:
    lines = ["## Reference: ResNet-9 in a hand-written PyTorch loop", ""]
    if "error" in part:
        return lines + _failed(part)
    ours = {r["precision"]: r["images_per_s"] for r in (throughput or {}).get("rows", [])
            if r["builder"] == "resnet9" and not r.get("steps_per_execution") and not r.get("augment")}
    lines += [f"PyTorch {part['torch']} on {part['device']}: data on the device, channels-last, cudnn.benchmark, "
              f"Adam, eager (no torch.compile).", "",
              "| precision | batch | PyTorch images/s | hpstudy resnet9 images/s | hpstudy / PyTorch | target |",
              "|---|---:|---:|---:|---:|---|"]
    for r in part["rows"]:
        mine = ours.get("float32" if r["precision"] == "float32" else "mixed_bfloat16")
        ratio = f"{mine / r['images_per_s']:.2f}" if mine else "-"
        lines.append(f"| {r['precision']} | {r['batch']} | {r['images_per_s']:,.0f} | "
                     f"{f'{mine:,.0f}' if mine else '-'} | {ratio} | >= 0.7 |")
    return lines + [""]


def _render_trials(part: dict) -> list[str]:
    lines = ["## Trials per hour (resnet9, widths 0.25/0.5, float32, random search)", ""]
    if "error" in part:
        return lines + _failed(part)
    if not part["workers_flag"]:
        lines += ["`hpstudy run --workers` is not in this hpstudy yet: only one trial at a time was measured.", ""]
    lines += ["| workers | trials completed | wall s | trials/hour | vs 1 |", "|---:|---:|---:|---:|---:|"]
    one = part["runs"][0]["trials_per_hour"]
    for r in part["runs"]:
        last = [line for line in r["error"].splitlines() if line.strip()][-1:] or [""]
        note = f" (exit {r['exit']}: {last[0]})" if r["exit"] else ""
        ratio = f"{r['trials_per_hour'] / one:.2f}x" if one else "-"
        lines.append(f"| {r['workers']} | {r['completed']}/{part['trials']}{note} | {r['wall_s']:.0f} | "
                     f"{r['trials_per_hour']:,.0f} | {ratio} |")
    return lines + [""]


CHILDREN = {"throughput": child_throughput, "torch": child_torch, "trials": measure_trials}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        name, mode, folder, overrides = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
        size = {**SIZES[mode], **{k: int(v) for k, v in zip(overrides[::2], overrides[1::2])}}
        common.emit(CHILDREN[name](size, Path(folder)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test (runs on a CPU)")
    parser.add_argument("--sections", nargs="+", choices=PARTS, default=list(PARTS), metavar="PART")
    parser.add_argument("--images", type=int, help="training images for the throughput parts (default 50000)")
    parser.add_argument("--batch", type=int, help="batch size (default 512)")
    parser.add_argument("--output", default=str(HERE / "gpu.md"))
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    overrides = [str(v) for k in ("images", "batch") if getattr(args, k) for v in (k, getattr(args, k))]
    info, results = common.machine(), {}
    with tempfile.TemporaryDirectory(prefix="hpstudy-gpu-") as tmp:
        for part in args.sections:
            if part == "torch" and not common.version("torch"):
                results[part] = {"error": "PyTorch is not installed"}
                continue
            print(f"[{part}] ...", flush=True)
            start = time.perf_counter()
            folder = Path(tmp) / part
            folder.mkdir()
            backend = os.environ.get("KERAS_BACKEND", "jax")
            try:
                results[part] = common.run_child(Path(__file__), [part, mode, str(folder), *overrides], backend,
                                                 Path(tmp) / "stderr.log")
            except RuntimeError as err:
                results[part] = {"error": str(err)}
            print(f"[{part}] {'FAILED' if 'error' in results[part] else 'done'} in {time.perf_counter() - start:.0f} s",
                  flush=True)
            Path(args.output).write_text(render(results, info, mode))
    text = render(results, info, mode)
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
