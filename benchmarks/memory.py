"""Memory benchmark: resident memory after each trial of one study, in one process and through `hpstudy run`.

    python benchmarks/memory.py [--trials 40] [--allowance 200] [--output benchmarks/memory.md] [--results-dir DIR]

Runs a random search of `--trials` 1-epoch trials on a small digits subset (small models, a continuous
space so no configuration repeats) under the KERAS_BACKEND of the environment, and after every trial reads
VmRSS from /proc/self/status. The end-of-trial hook is hpstudy's own tuner method `on_trial_end`, wrapped
here (hpstudy is not changed for this); the wrapper also times that method (it rewrites trials.csv) and the
wall time between two trial ends, which the trial's own seconds (trials.csv) leave out.

Then the same study through the command line with HPSTUDY_MEMORY_ALLOWANCE_MIB=--allowance: the run continues
in a fresh process whenever it has grown by more than that, and the child's VmRSS is read at each trial line.
"""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def study(name: str, trials: int) -> dict:
    """A random search of `trials` short trials of small models on 500 digits."""
    return {
        "name": name,
        "data": {"dataset": "digits", "subset": {"train": 50, "validation": 20, "test": 20}},
        "model": {"builder": "plain_cnn", "conv_layers": {"tune": "choice", "values": [1, 2]},
                  "filters": {"tune": "choice", "values": [8, 16]}, "dense_units": 32,
                  "dropout": {"tune": "float", "min_value": 0.0, "max_value": 0.5}},
        "train": {"epochs": 1, "batch_size": 32,
                  "learning_rate": {"tune": "float", "min_value": 1e-4, "max_value": 1e-2, "sampling": "log"}},
        "search": {"tuner": "random", "max_trials": trials, "seed": 0},
    }


def tuner_mixin():
    """The class hpstudy mixes into every keras-tuner tuner."""
    from hpstudy.engine.tuner import StudyTuner
    return StudyTuner


def watch_trials() -> list[dict]:
    """Wrap the tuner's on_trial_end: append one row per trial (RSS, wall time, the hook's own time)."""
    mixin = tuner_mixin()
    original = mixin.on_trial_end
    rows: list[dict] = []
    last = [time.perf_counter()]

    def on_trial_end(self, trial):
        start = time.perf_counter()
        original(self, trial)
        now = time.perf_counter()
        rows.append({"trial": len(rows), "rss_mib": round(common.rss_mib(), 1),
                     "wall_s": round(now - last[0], 3), "trial_end_s": round(now - start, 4)})
        last[0] = now

    mixin.on_trial_end = on_trial_end
    return rows


def measure(trials: int, results_dir: Path) -> dict:
    """Run the study in this process; per-trial rows and the run's totals."""
    import hpstudy

    folder = Path(results_dir)
    path = common.write_study(folder, study("memory", trials))
    start_rss = common.rss_mib()
    rows = watch_trials()
    start = time.perf_counter()
    done = hpstudy.run(path, results_dir=folder / "results", overwrite=True, stream=io.StringIO())
    wall = time.perf_counter() - start
    table = done.trials
    for row, seconds in zip(rows, table.seconds):
        row["trial_s"] = None if seconds != seconds else float(seconds)    # NaN: a failed trial
    import keras
    return {"rows": rows, "wall_s": wall, "rss_before_mib": start_rss, "backend": keras.backend.backend(),
            "results": str(done.path), "completed": int((table.status == "COMPLETED").sum())}


def measure_cli(trials: int, results_dir: Path, allowance_mib: float) -> dict:
    """`hpstudy run` of the same study with a memory allowance: the child's VmRSS at each finished trial."""
    folder = Path(results_dir)
    path = common.write_study(folder, study("memory_cli", trials))
    env = {**os.environ, "HPSTUDY_MEMORY_ALLOWANCE_MIB": str(allowance_mib)}
    command = [sys.executable, "-m", "hpstudy.cli", "run", str(path), "--results-dir", str(folder / "results"),
               "--overwrite"]
    start, rows, restarts = time.perf_counter(), [], 0
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env) as child:
        for line in child.stdout:        # the same pid across restarts: the run re-executes itself
            if line.startswith("trial "):
                rows.append({"trial": len(rows), "rss_mib": round(_rss_of(child.pid), 1), "after_restart": False})
            elif "continuing in a fresh process" in line:
                restarts += 1
                if rows:
                    rows[-1]["after_restart"] = True
    return {"rows": rows, "restarts": restarts, "allowance_mib": allowance_mib,
            "wall_s": time.perf_counter() - start, "returncode": child.returncode}


def _rss_of(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def cli_lines(result: dict) -> list[str]:
    rss = [r["rss_mib"] for r in result["rows"]]
    if not rss:
        return [f"`hpstudy run` with a {result['allowance_mib']:g} MiB allowance: no trial finished "
                f"(exit code {result['returncode']})."]
    return [f"Through `hpstudy run` with HPSTUDY_MEMORY_ALLOWANCE_MIB={result['allowance_mib']:g}: {len(rss)} trials, "
            f"{result['restarts']} fresh-process restarts; VmRSS after the first trial {rss[0]:,.0f} MiB, after the "
            f"last {rss[-1]:,.0f} MiB, at most {max(rss):,.0f} MiB; whole run {result['wall_s']:.0f} s "
            f"(exit code {result['returncode']})."]


def summary(result: dict) -> dict:
    """First, last and largest RSS, and its growth per trial (least squares; all trials and the second half)."""
    rss = np.array([r["rss_mib"] for r in result["rows"]])
    index = np.arange(len(rss))

    def slope(part):
        return float(np.polyfit(index[part], rss[part], 1)[0]) if len(rss[part]) >= 2 else float("nan")
    half = slice(len(rss) // 2, None)
    ends = [r["trial_end_s"] for r in result["rows"]]
    overhead = [r["wall_s"] - r["trial_s"] for r in result["rows"][1:] if r.get("trial_s") is not None]
    return {"trials": len(rss), "first_mib": float(rss[0]), "last_mib": float(rss[-1]), "max_mib": float(rss.max()),
            "slope_mib_per_trial": slope(slice(None)), "slope_second_half": slope(half),
            "trial_end_first_s": ends[0], "trial_end_last_s": ends[-1],
            "overhead_median_s": float(np.median(overhead)) if overhead else float("nan")}


def summary_lines(result: dict) -> list[str]:
    s = summary(result)
    return [f"{s['trials']} trials of one study in one process ({result['backend']} backend): VmRSS after the first "
            f"trial {s['first_mib']:,.0f} MiB, after the last {s['last_mib']:,.0f} MiB, at most "
            f"{s['max_mib']:,.0f} MiB; "
            f"growth {s['slope_mib_per_trial']:+.2f} MiB per trial (second half: {s['slope_second_half']:+.2f}). "
            f"Rewriting trials.csv at each trial end took {s['trial_end_first_s'] * 1000:.0f} ms after the first "
            f"trial and {s['trial_end_last_s'] * 1000:.0f} ms after the last; the median wall time per trial beyond "
            f"its own seconds (build, compile, checkpoints, keras-tuner's files) was {s['overhead_median_s']:.2f} s."]


def render(result: dict, info: dict) -> str:
    lines = ["# Memory across the trials of one study", "", *common.machine_lines(info), "",
             f"`python benchmarks/memory.py --trials {len(result['rows'])}`: a random search of 1-epoch trials on 500 "
             f"digits, RSS before the search {result['rss_before_mib']:,.0f} MiB, whole run {result['wall_s']:.0f} s.",
             "", *summary_lines(result), "", *cli_lines(result["cli"]), "",
             "| trial | VmRSS MiB, one process | wall s | trial s | on_trial_end s | VmRSS MiB, `hpstudy run` |",
             "|---:|---:|---:|---:|---:|---:|"]
    cli = {r["trial"]: r for r in result["cli"]["rows"]}
    for r in result["rows"]:
        trial_s = "" if r.get("trial_s") is None else f"{r['trial_s']:.2f}"
        other = cli.get(r["trial"])
        run = "" if other is None else f"{other['rss_mib']:,.1f}" + (" (then restarted)" if other["after_restart"] else "")
        lines.append(f"| {r['trial']} | {r['rss_mib']:,.1f} | {r['wall_s']:.2f} | {trial_s} | {r['trial_end_s']:.3f} "
                     f"| {run} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--allowance", type=float, default=200.0, help="MiB for the `hpstudy run` measurement")
    parser.add_argument("--output", default=str(Path(__file__).with_name("memory.md")))
    parser.add_argument("--results-dir", help="where the study's results go (default: a temporary folder)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.trials, Path(args.results_dir or tmp))
        result["cli"] = measure_cli(args.trials, Path(args.results_dir or tmp), args.allowance)
        if args.child:          # benchmarks/run.py: the numbers, as JSON
            common.emit(result)
            return
    text = render(result, common.machine())
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
