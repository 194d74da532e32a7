"""What one trial's end costs a long study: the trials table brought up to date and checkpoint retention, as the
tuner does them after every trial, at 100, 1,000 and 10,000 trials, before and after the table was kept in memory.

    python benchmarks/trial_end.py [--sizes 100 1000 10000] [--repeats 5] [--before-repeats-large 1]
                                   [--output benchmarks/trial_end.md]

The results folder is synthetic but in the real formats, written by hpstudy's own writers: `folder.prepare` writes
spec.yaml (a random search of 3 hyperparameters, max_trials the folder's size), keras-tuner's `Trial.get_state`
each trial's record (renamed into place, as `StudyOracle._save_trial` does), the execution record and history as
`TrialRecorder` writes them, failure.txt for the 5% that failed and pruned.json for the 5% search.pruning stopped;
best.json as `_save_best` writes it; the best 3 trials keep a checkpoint (a placeholder of 64 KiB at keras-tuner's
path: retention only looks for it and deletes it), as retention leaves a study with `keep_checkpoints: 3`.

Each side runs in a process of its own on a copy of the folder, with keras-tuner's oracle (hpstudy's
`StudyOracle` on keras-tuner's random search oracle) holding the folder's trials. A timed trial end is that of a
new trial (its files written and the oracle told, untimed), which ranks outside the best 3, so its checkpoint is
deleted. Before: the code of the commit this change started from (`BASE`, extracted with `git archive`), whose
tuner called `retention.prune_checkpoints(oracle, layout, keep)` then `trials.write_table(layout)`. After:
`Retention.prune(oracle)` then `TrialsTable.write([trial], known=oracle.trials)` on the objects the run keeps; the
first call of a process (every trial file read once) is timed apart. Both sides end with the same trials.csv,
byte for byte, and the same checkpoints kept: checked.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__" and "--child" not in sys.argv:
    sys.path.insert(0, str(ROOT))        # the parent writes the folders with this tree's hpstudy
BASE = "cb3a08f"            # the commit whose tuner rebuilt the table from every file after each trial
KEEP = 3                    # search.keep_checkpoints' default
CHECKPOINT_BYTES = 64 * 1024
STUDY = """\
name: trial_end
data: {{dataset: digits}}
model:
  builder: plain_cnn
  conv_layers: {{tune: int, min_value: 1, max_value: 3}}
  dropout: {{tune: choice, values: [0.0, 0.2, 0.4, 0.6]}}
train:
  epochs: 3
  learning_rate: {{tune: float, min_value: 1.0e-4, max_value: 1.0e-2, sampling: log}}
search: {{tuner: random, max_trials: {trials}, seed: 0}}
"""


# ---------------------------------------------------------------- the synthetic folder (hpstudy's own writers)
def module(*names: str):
    """The first of the modules `names` that this process's hpstudy has: the code before and after this change
    keep the same functions under different names (results.files became files, engine's search its own package)."""
    import importlib
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(f"none of {names}")


def trial_id(number: int, trials: int) -> str:
    """keras-tuner's id of trial `number`: padded to the width of max_trials, as its oracle pads it."""
    return f"{number:0{len(str(trials))}d}"


def record_path(layout, tuner_id: str) -> Path:
    """keras-tuner's record of a trial, at the path keras-tuner names it (the code before had no Layout helper)."""
    return layout.tuner / f"trial_{tuner_id}" / "trial.json"


def checkpoint_path(layout, tuner_id: str) -> Path:
    """keras-tuner's weights file of a trial, where keras-tuner writes it."""
    return layout.tuner / f"trial_{tuner_id}" / "checkpoint.weights.h5"


def write_trial(layout, tuner_id: str, score: float, status: str, rng, *, checkpoint: bool) -> None:
    """Trial `tuner_id`'s files as a run leaves them once it ended: keras-tuner's record, the execution record,
    history and summary, failure.txt (FAILED) or pruned.json (every 20th COMPLETED one), the checkpoint if kept."""
    import keras_tuner as kt
    import pandas as pd

    from hpstudy.results.layout import trial_number
    from hpstudy.text import csv_text

    files = module("hpstudy.files", "hpstudy.results.files")

    hp = kt.HyperParameters()
    hp.Int("model.conv_layers", 1, 3)
    hp.Choice("model.dropout", [0.0, 0.2, 0.4, 0.6])
    hp.Float("train.learning_rate", 1e-4, 1e-2, sampling="log")
    hp.values.update({"model.conv_layers": int(rng.integers(1, 4)), "model.dropout": float(rng.choice([0.0, 0.2,
                      0.4, 0.6])), "train.learning_rate": float(10 ** rng.uniform(-4, -2))})
    trial = kt.engine.trial.Trial(hp, trial_id=tuner_id, status=status)
    number = trial_number(tuner_id)
    rows = [{"epoch": e + 1, "accuracy": score * (e + 1) / 3, "loss": 2.0 - score - e / 10,
             "val_accuracy": score * (e + 1) / 3, "val_loss": 2.1 - score - e / 10, "seconds": 1.5 * (e + 1)}
            for e in range(3)]
    if status == "COMPLETED":
        trial.metrics.register("val_accuracy", direction="max")
        for name in ("loss", "accuracy", "val_loss"):
            trial.metrics.register(name, direction="min" if "loss" in name else "max")
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
            trial.metrics.update(name, rows[-1][name], step=2)
        trial.score, trial.best_step = score, 2
    else:
        trial.message = "Traceback (most recent call last):\nValueError: the configuration failed"
        files.write_text(layout.failure(number), trial.message)
    files.write_text(layout.history(number), csv_text(pd.DataFrame(rows)))
    files.write_json(layout.execution(number), {
        "execution": 0, "epochs_run": 3, "seconds": 4.5, "params": 12345, "trainable_params": 12345,
        "flops": 678901, "history": layout.history(number).name, "worker": None,
        "last": {k: v for k, v in rows[-1].items() if k not in ("epoch", "seconds")}})
    files.write_text(layout.summary(number), "Model: plain_cnn\n")
    if status == "COMPLETED" and int(number) % 20 == 19:
        files.write_json(layout.pruned(number), {"epoch": 3, "rule": "median", "reason": "below the median",
                                                 "objective": "val_accuracy", "value": score, "threshold": 0.9,
                                                 "compared": ["0"]})
    files.write_text(record_path(layout, tuner_id), json.dumps(trial.get_state()))
    if checkpoint:
        files.write_bytes(checkpoint_path(layout, tuner_id), b"\0" * CHECKPOINT_BYTES)


def write_folder(root: Path, trials: int, seed: int = 0) -> None:
    """A results folder of `trials` ended trials (see the module's doc)."""
    import numpy as np

    from hpstudy.results import folder
    from hpstudy.results.layout import trial_number
    from hpstudy.study import spec

    files = module("hpstudy.files", "hpstudy.results.files")

    layout = folder.prepare(root, spec.loads(STUDY.format(trials=trials)))
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.5, 0.9, trials)
    statuses = ["FAILED" if rng.random() < 0.05 else "COMPLETED" for _ in range(trials)]
    ranked = sorted((k for k in range(trials) if statuses[k] == "COMPLETED" and k % 20 != 19),
                    key=lambda k: -scores[k])
    for number in range(trials):
        write_trial(layout, trial_id(number, trials), float(scores[number]), statuses[number], rng,
                    checkpoint=number in ranked[:KEEP])
    best = ranked[0]
    files.write_json(layout.best, {
        "results_format": 3, "trial_id": trial_number(trial_id(best, trials)), "objective": "val_accuracy",
        "score": float(scores[best]), "best_epoch": 3, "checkpoint_epoch": "best", "weights_epoch": 3,
        "hyperparameters": {}, "test_loss": 0.5, "test_accuracy": 0.85, "class_names": [str(c) for c in range(10)]})


# ---------------------------------------------------------------- a side, in its own process
def oracle_of(layout, trials: int):
    """keras-tuner's random search oracle with hpstudy's StudyOracle, holding the folder's trials."""
    import keras_tuner as kt

    adapter = module("hpstudy.engine.search.adapter", "hpstudy.engine.adapter")

    oracle_class = type("BenchOracle", (adapter.StudyOracle, kt.oracles.RandomSearchOracle), {})
    oracle = oracle_class(objective=kt.Objective("val_accuracy", "max"), max_trials=trials)
    for path in layout.tuner_trials():
        trial = kt.engine.trial.Trial.from_state(json.loads(path.read_text()))
        oracle.trials[trial.trial_id] = trial
    return oracle


def measure(folder: Path, side: str, trials: int, repeats: int) -> dict:
    """Time `repeats` trial ends on `folder` with the code of `side` (whichever hpstudy is on sys.path)."""
    import keras_tuner as kt
    import numpy as np

    from hpstudy.results.layout import Layout

    layout = Layout(folder)
    oracle = oracle_of(layout, trials)
    rng = np.random.default_rng(1)
    first = None
    if side == "after":
        from hpstudy.engine.search.retention import Retention
        from hpstudy.results.trials_table import TrialsTable
        start = time.perf_counter()
        retention, table = Retention(layout, KEEP), TrialsTable(layout)
        retention.prune(oracle)
        table.write(known=oracle.trials)
        first = time.perf_counter() - start

        def trial_end(tuner_id):
            retention.prune(oracle)
            table.write([tuner_id], known=oracle.trials)
    else:
        from hpstudy.engine import retention as old_retention
        from hpstudy.results import trials as old_trials

        def trial_end(tuner_id):
            old_retention.prune_checkpoints(oracle, layout, KEEP)
            old_trials.write_table(layout)
    seconds = []
    for k in range(repeats):
        tuner_id = trial_id(trials + k, trials)
        write_trial(layout, tuner_id, 0.6, "COMPLETED", rng, checkpoint=True)
        record = json.loads(record_path(layout, tuner_id).read_text())
        oracle.trials[tuner_id] = kt.engine.trial.Trial.from_state(record)
        start = time.perf_counter()
        trial_end(tuner_id)
        seconds.append(time.perf_counter() - start)
        common.progress(f"  {side} at {trials}: trial end {k + 1}/{repeats}: {seconds[-1]:.4f} s")
    return {"seconds": seconds, "first": first}


# ---------------------------------------------------------------- the parent
def extract_base(where: Path) -> Path:
    """hpstudy/ as it was at BASE, extracted under `where`."""
    archive = where / "base.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), BASE, "hpstudy"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(where / "base", filter="data")
    return where / "base"


def run_side(side: str, code: Path, folder: Path, trials: int, repeats: int, log: Path) -> dict:
    """One side's trial ends, in a fresh process whose `hpstudy` is the one under `code`."""
    env = {**os.environ, **common.QUIET, "PYTHONPATH": str(code), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, __file__, "--child", side, str(folder), str(trials), str(repeats)]
    with open(log, "a") as errors:
        child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        lines = []
        for line in child.stdout:
            (lines.append(line) if line.startswith("{") else print(line.rstrip(), flush=True))
        if child.wait() != 0 or not lines:
            raise RuntimeError(f"{side} at {trials} failed:\n{log.read_text(errors='replace')[-3000:]}")
    result = json.loads(lines[-1])
    if result.get("hpstudy") != str(code / "hpstudy" / "__init__.py"):
        raise RuntimeError(f"{side} ran {result.get('hpstudy')}, not the code under {code}")
    return result


def head() -> str:
    """The commit the after side ran (`+` when the tree had changes beside it)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()
    return git("rev-parse", "--short", "HEAD") + ("+" if git("status", "--porcelain", "--", "hpstudy") else "")


def kept(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in (folder / "tuner").glob("trial_*/checkpoint.weights.h5"))


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4g} s (1 repeat)"
    return f"{statistics.median(values):.4g} s ({min(values):.4g}–{max(values):.4g}, {len(values)} repeats)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before-repeats-large", type=int, default=1,
                        help="repeats of the before side at 10,000 trials or more (each takes minutes)")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("trial_end.md"))
    parser.add_argument("--work", type=Path, default=None, help="a folder for the synthetic studies (default: temp)")
    args = parser.parse_args()
    info, counters, began = common.machine(), common.cpu_counters(), time.monotonic()
    work = Path(args.work or tempfile.mkdtemp(prefix="trial_end_"))
    work.mkdir(parents=True, exist_ok=True)
    base = extract_base(work)
    rows = []
    for trials in args.sizes:
        common.progress(f"writing a folder of {trials} trials")
        source = work / f"source_{trials}"
        shutil.rmtree(source, ignore_errors=True)
        write_folder(source, trials)
        result, folders = {}, {}
        for side, code in (("before", base), ("after", ROOT)):
            folders[side] = work / f"{side}_{trials}"
            shutil.rmtree(folders[side], ignore_errors=True)
            shutil.copytree(source, folders[side], symlinks=True)
            repeats = args.before_repeats_large if side == "before" and trials >= 10000 else args.repeats
            result[side] = run_side(side, code, folders[side], trials, repeats, work / "log.txt")
        if len(result["before"]["seconds"]) == len(result["after"]["seconds"]):    # the same trials ended
            tables = [(folders[side] / "trials.csv").read_bytes() for side in ("before", "after")]
            same_table, same_kept = tables[0] == tables[1], kept(folders["before"]) == kept(folders["after"])
        else:
            same_table = same_kept = None
        rows.append({"trials": trials, **result, "same_table": same_table, "same_kept": same_kept})
        shutil.rmtree(source)
    info["shared"] = common.shared_text(common.cpu_used(counters))
    write_markdown(args, info, rows, time.monotonic() - began)
    print(args.output.read_text())


def write_markdown(args, info: dict, rows: list[dict], wall: float) -> None:
    command = "python benchmarks/trial_end.py" + "".join(
        f" {flag} {' '.join(map(str, value)) if isinstance(value, list) else value}"
        for flag, value, default in (("--sizes", args.sizes, [100, 1000, 10000]), ("--repeats", args.repeats, 5),
                                     ("--before-repeats-large", args.before_repeats_large, 1))
        if value != default)
    lines = ["# The cost of one trial's end: the trials table and checkpoint retention", "",
             *common.machine_lines(info), "",
             f"Command: `{command}`; {wall:.0f} s in all. Before: the code of commit {BASE} (`trials.write_table` "
             "and `retention.prune_checkpoints`, every trial file read and tuner/ listed once per trial); after: "
             f"`TrialsTable.write` and `Retention.prune`, kept by the run (commit {head()}). Each side in a process "
             "of its own on a copy of the same synthetic folder (see the script's doc); a trial end is a new "
             "trial's, outside the best 3, whose checkpoint is deleted. Median (min–max) over the repeats.", "",
             "| trials | before, per trial end | after, per trial end | before / after (medians) | after, first "
             "trial end of a process (every file read once) | same trials.csv and checkpoints |",
             "|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        before, after = row["before"]["seconds"], row["after"]["seconds"]
        same = ("not compared (different repeats)" if row["same_table"] is None else
                "yes" if row["same_table"] and row["same_kept"] else
                f"NO (table {row['same_table']}, checkpoints {row['same_kept']})")
        lines.append(f"| {row['trials']:,} | {spread(before)} | {spread(after)} | "
                     f"{statistics.median(before) / statistics.median(after):,.0f}x | {row['after']['first']:.3g} s | "
                     f"{same} |")
    lines += ["", "Before, a trial end read every trial's files (its record, execution record, pruned.json, "
              "failure.txt) and parsed spec.yaml, and retention looked each ended trial's checkpoint up by listing "
              "tuner/ again (`Layout.checkpoint`), so its cost grew with the square of the trials. After, it reads "
              "the trial that ended and best.json, and retention goes to keras-tuner's path of the checkpoints it "
              "has not yet seen gone; what remains grows with the trials is in memory (the oracle's ranking, the "
              "table's DataFrame and its CSV text), written whole each time so that trials.csv stays exactly what "
              "the files say. The first trial end of a process reads every trial file once (a resumed run)."]
    args.output.write_text("\n".join(lines) + "\n")


def child(side: str, folder: str, trials: str, repeats: str) -> None:
    import hpstudy

    result = measure(Path(folder), side, int(trials), int(repeats))
    common.emit({**result, "hpstudy": hpstudy.__file__})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
    else:
        main()
