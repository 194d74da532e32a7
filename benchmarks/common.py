"""Helpers shared by the benchmark scripts: the machine, versions, memory, data files, study files, children.

Imports no Keras: the scripts' parent processes stay light, and each child picks its KERAS_BACKEND.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

PACKAGES = ("keras", "keras-tuner", "tensorflow", "jax", "jaxlib", "torch", "numpy", "hpstudy")
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def gpu() -> str | None:
    """The GPUs nvidia-smi lists (name, memory), or None."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return "; ".join(line.strip() for line in out.splitlines() if line.strip()) or None


def machine() -> dict:
    """CPU model, cores, memory, GPU, Python and package versions, date: what a result was measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory, 1), "gpu": gpu(),
            "python": platform.python_version(), "platform": platform.platform(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "versions": {p: version(p) for p in PACKAGES}}


def machine_lines(info: dict) -> list[str]:
    """Markdown lines describing `machine()`."""
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    return [f"- Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']:g} GiB memory; "
            f"GPU: {info['gpu'] or 'none'}",
            f"- Python {info['python']} ({info['platform']}); {versions}",
            f"- Date: {info['date']}", *([f"- While it ran: {info['shared']}"] if info.get("shared") else [])]


def cpu_counters() -> dict:
    """The machine's busy CPU seconds so far (/proc/stat), this process's and its finished children's, and now."""
    ours = sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for field in ("ru_utime", "ru_stime"))
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:8]]
        # user, nice, system, irq, softirq: busy; idle and iowait are not (nor is steal, time the host took)
        busy = (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        busy = None
    return {"busy_s": busy, "ours_s": ours, "time": time.monotonic()}


def cpu_used(before: dict) -> dict | None:
    """Cores used on average since `before` (cpu_counters) by this benchmark and by every other process."""
    after = cpu_counters()
    wall = after["time"] - before["time"]
    if before["busy_s"] is None or after["busy_s"] is None or wall <= 0:
        return None
    ours = (after["ours_s"] - before["ours_s"]) / wall
    return {"ours": ours, "others": max(0.0, (after["busy_s"] - before["busy_s"]) / wall - ours),
            "cores": os.cpu_count()}


def shared_text(used: dict | None) -> str:
    """What `cpu_used` says, in words: whether other work shared the CPU while a measurement ran."""
    if not used:
        return "CPU use of other processes not known"
    shared = "the CPU was shared" if used["others"] >= 0.25 else "the CPU was otherwise about idle"
    return (f"other processes used {used['others']:.1f} of the {used['cores']} cores on average meanwhile, this "
            f"benchmark {used['ours']:.1f} ({shared})")


def rss_mib() -> float:
    """Resident memory of this process (VmRSS), MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def random_images(count: int, seed: int = 0, side: int = 32, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-shaped random uint8 images and labels: the speed of training does not depend on the pixels."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, side, side, 3), dtype=np.uint8), rng.integers(0, classes, count)


def write_npz(path: Path, train: int, val: int, test: int) -> Path:
    """An `npz` dataset of random CIFAR-shaped images with its own validation and test splits."""
    arrays = {}
    for seed, (split, count) in enumerate([("train", train), ("val", val), ("test", test)]):
        arrays[f"x_{split}"], arrays[f"y_{split}"] = random_images(count, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def write_study(folder: Path, study: dict) -> Path:
    """Write `study` (a mapping with `name`) as YAML into `folder`; returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{study['name']}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def run_child(script: Path, args: list[str], backend: str | None, log: Path, timeout: float | None = None) -> dict:
    """Run `script --child ARGS` under KERAS_BACKEND=`backend`; its last stdout line is JSON, returned.

    Its other stdout lines (progress) are shown as they come; its stderr (TensorFlow's logs) goes to `log`,
    whose tail is raised on failure.
    """
    env = {**os.environ, **QUIET, "PYTHONUNBUFFERED": "1"}
    if backend:
        env["KERAS_BACKEND"] = backend
    lines = []
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as errors:
        child = subprocess.Popen([sys.executable, str(script), "--child", *args], env=env, stdout=subprocess.PIPE,
                                 stderr=errors, text=True)
        start = time.monotonic()
        for line in child.stdout:
            if line.startswith("{"):
                lines.append(line)
            else:
                print("   ", line.rstrip(), flush=True)
            if timeout and time.monotonic() - start > timeout:
                child.kill()
        code = child.wait()
    if code != 0 or not lines:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{script.name} {' '.join(args)} (KERAS_BACKEND={backend}) exited {code}:\n{tail}")
    return json.loads(lines[-1])


def emit(result) -> None:
    """What a child hands back to its parent: one JSON line on stdout."""
    print(json.dumps(result, default=float), flush=True)


def progress(message: str) -> None:
    print(message, flush=True)
