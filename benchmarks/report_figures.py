"""How long `hpstudy report --output` takes with its figures, on a real 100-trial results folder.

    python benchmarks/report_figures.py [--trials 100] [--repeats 5] [--folder DIR]
        [--output benchmarks/report_figures.md]

The folder is a real search (unless --folder names one): a random search of `--trials` 1-epoch trials of small
models on a digits subset, over a log-sampled learning rate, a dropout range, two choices and a boolean, with the
best two configurations confirmed with 2 seeds each (so every figure has something to show). Then, each a whole
`hpstudy report PATH --output FILE --best 0` process (model evaluation aside: it is the same with or without
figures), markdown and html alternate `--repeats` times, and a plain `hpstudy report PATH` (no figures) once per
round for reference. Reported: each command's median, min and max wall time, and the first report after
importance.json was removed (the importance ranking and its bootstrap interval computed again). Target: under
10 s on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 10.0


def study(name: str, trials: int) -> dict:
    """A random search of `trials` 1-epoch trials of small models on a digits subset, confirmed top 2 x 2 seeds."""
    return {
        "name": name,
        "data": {"dataset": "digits", "subset": {"train": 40, "validation": 20, "test": 20}},
        "model": {"builder": "plain_cnn", "conv_layers": 1, "filters": {"tune": "choice", "values": [4, 8, 16]},
                  "dense_units": 16, "head": {"tune": "choice", "values": ["gap", "dense"]},
                  "dropout": {"tune": "float", "min_value": 0.0, "max_value": 0.5}},
        "preprocess": {"flip": {"tune": "boolean"}},
        "train": {"epochs": 2, "batch_size": 16,
                  "learning_rate": {"tune": "float", "min_value": 1e-4, "max_value": 1e-1, "sampling": "log"}},
        "search": {"tuner": "random", "max_trials": trials, "seed": 0, "confirm": {"top": 2, "seeds": 2}},
    }


def timed(arguments: list[str]) -> float:
    """Seconds of one whole `hpstudy ARGUMENTS` process (its output discarded; a failure stops the benchmark)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hpstudy.cli", *arguments], env={**os.environ, **common.QUIET},
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"hpstudy {' '.join(arguments)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def spread(times: list[float]) -> str:
    """median (min to max) of some seconds."""
    return f"{statistics.median(times):.2f} s ({min(times):.2f} to {max(times):.2f})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folder", help="an existing results folder to report on instead of a new search")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "report_figures.md"))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hpstudy-report-figures-"))
    search_s = None
    if args.folder:
        folder = Path(args.folder)
    else:
        spec = work / "figures.yaml"
        spec.write_text(yaml.safe_dump(study("figures", args.trials), sort_keys=False))
        search_s = timed(["run", str(spec), "--results-dir", str(work)])
        folder = work / "figures"
    commands = {"markdown --output (figures)": ["report", str(folder), "--output", str(work / "r.md"), "--best", "0"],
                "html --output (figures)": ["report", str(folder), "--format", "html", "--output", str(work / "r.html"),
                                            "--best", "0"],
                "markdown to stdout (no figures)": ["report", str(folder)]}
    importance = folder / "importance.json"
    importance.unlink(missing_ok=True)
    cold = timed(commands["markdown --output (figures)"])      # computes the ranking and its interval again
    times = {label: [] for label in commands}
    for _ in range(args.repeats):
        for label, arguments in commands.items():
            times[label].append(timed(arguments))
    import hpstudy
    loaded = hpstudy.load_study(folder)
    figures = sorted(p.name for p in (work / "r_figures" / folder.name).glob("*.png"))
    html_kib = (work / "r.html").stat().st_size / 1024
    worst = max(max(t) for label, t in times.items() if "figures" in label)
    lines = ["# `hpstudy report --output` with figures", "",
             *common.machine_lines(common.machine()), "",
             f"Command: `python benchmarks/report_figures.py --trials {args.trials} --repeats {args.repeats}`"
             + (f" --folder {args.folder}" if args.folder else "") + "; each time a whole process, the three "
             f"commands alternating, {args.repeats} rounds.", "",
             f"- folder: {len(loaded.trials)} trials, {len(loaded.repeats)} seed repeats"
             + (f" (the search and its confirm step took {search_s:.0f} s)" if search_s else ""),
             f"- figures written: {len(figures)} ({', '.join(figures)}); the html page {html_kib:,.0f} KiB",
             "- first markdown report after importance.json was removed (ranking and bootstrap computed): "
             f"{cold:.2f} s",
             f"- slowest report with figures: {worst:.2f} s against the {TARGET_S:g} s target: "
             f"{'met' if worst < TARGET_S else 'missed'}", "",
             "| command | median (min to max) |", "|---|---|",
             *[f"| `hpstudy report` {label} | {spread(t)} |" for label, t in times.items()], ""]
    Path(args.output).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
