"""Calibration of hpstudy's verdicts (issue 25, point 9): simulated studies whose truth is known (benchmarks/
simulate.py) fed through the report's own analysis, and what came out, as a table in benchmarks/calibration.md.

    python benchmarks/calibration.py --section before       # today's statistics; --section after once changed
    python benchmarks/calibration.py --studies 100 --jobs 4 --out /tmp/calibration.md   # a quick look

Each run rewrites only its own section of the file (the other is kept), headed by the seed, the date, the
machine, the commit measured and the run time. Every scenario's studies are drawn from the same seeds whichever
section is written, so before and after see the same trials. The `one effect` scenario also computes the
importance ranking (a random forest per study), which is most of the run time; --jobs splits the studies over
processes.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402
import simulate  # noqa: E402

SECTIONS = {"before": "## Before: the statistics before issue 25", "after": "## After: the statistics of issue 25"}
HEADER = """# Calibration of the verdicts (issue 25)

Written by `python benchmarks/calibration.py --section before|after` (see its docstring). Each row is one kind of
simulated random-search study (benchmarks/simulate.py): 6 searched hyperparameters (head dense/gap, dropout
0.2/0.5, kernel size 3/5, conv layers 2/3/4, batch size 32/64/128: 8 contrasts; learning rate 1e-4 to 1e-2
log-uniform: a slope), score = 0.80 + true effects + noise (sd 0.01 = 1 noise sd), fed through
`hpstudy.analysis.effects.effects()`. A finding is a contrast with the verdict `effect`.

Columns: **false finding**, the share of studies with a finding on a hyperparameter that has no true effect
(every hyperparameter in the null rows; target: at most 5%); **coverage**, the share of 95% intervals that contain
the true difference, over the contrasts whose truth is known (target 93-97% where the model holds: null, one
effect); **detected**, the share of studies with a finding on the row's true effect (target for 15% diverged:
at least 90%); **wrong sign**, the share of those findings with the wrong sign; **other**, the row's own count.
Each share is followed by its simulation standard error.
"""


def _commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(HERE), "log", "-1", "--format=%h %s"], capture_output=True,
                             text=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "--", "../hpstudy"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{out[:100]}{' (with uncommitted changes to hpstudy/)' if dirty else ''}" or "unknown"


def _chunk(args) -> dict:
    name, studies, seed, start, ranked = args
    return simulate.simulate(simulate.SCENARIOS[name], studies, seed, start, importance_until=ranked)


def measure(studies: int, seed: int, jobs: int, ranked: int | None = None) -> dict:
    """Every scenario's summed counts, its studies split over `jobs` processes; importance counted over the first
    `ranked` studies (default: all)."""
    tasks = []
    for name in simulate.SCENARIOS:
        size = -(-studies // (jobs * 4))
        tasks += [(name, min(size, studies - start), seed, start, ranked) for start in range(0, studies, size)]
    totals: dict = {name: {} for name in simulate.SCENARIOS}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for (name, *_), counts in zip(tasks, pool.map(_chunk, tasks)):
            for key, value in counts.items():
                totals[name][key] = totals[name].get(key, 0) + value
    return totals


def _pct(total: dict, numerator: str, denominator: str) -> str:
    found = simulate.share(total, numerator, denominator)
    return "-" if found is None else f"{100 * found[0]:.1f}% ± {100 * found[1]:.1f}"


def _other(name: str, total: dict) -> str:
    if "noisy contrasts" in total:
        return (f"contrasts with the noisy value called an effect: {_pct(total, 'noisy findings', 'noisy contrasts')}"
                + (f"; their interval excluding zero: {_pct(total, 'noisy significant', 'noisy contrasts')}"
                   if "noisy significant" in total else ""))
    if "irrelevant ranked" in total:
        ranked = total["irrelevant ranked"] // len(set(simulate.NAMES) - simulate.SCENARIOS[name].active())
        first = f" (first {ranked} studies)" if ranked < total["studies"] else ""
        return (f"irrelevant hyperparameters whose importance interval includes 0{first}: "
                f"{_pct(total, 'irrelevant include zero', 'irrelevant ranked')}")
    if "aliased finding" in total:
        return (f"a member of the aliased pair called an effect: {_pct(total, 'aliased finding', 'studies')}; "
                f"verdicts of the pair differ (the order of names decided): {_pct(total, 'order decided', 'studies')}")
    return ""


def table(totals: dict) -> list[str]:
    """The markdown table of every scenario's shares."""
    lines = ["| scenario | trials | studies | false finding | coverage | detected | wrong sign | other |",
             "|---|---|---|---|---|---|---|---|"]
    for name, scenario in simulate.SCENARIOS.items():
        total = totals[name]
        detected = _pct(total, "detected", "studies") if scenario.target else "-"
        lines.append(f"| {name}: {scenario.description} | {scenario.trials} | {total.get('studies', 0)} | "
                     f"{_pct(total, 'false finding', 'studies')} | {_pct(total, 'covered', 'intervals')} | "
                     f"{detected} | {_pct(total, 'wrong sign', 'calls')} | {_other(name, total)} |")
    return lines


def section(key: str, totals: dict, *, seed: int, studies: int, jobs: int, seconds: float) -> str:
    """One section of calibration.md: what was measured, on what, and the table."""
    info = common.machine()
    return "\n".join([SECTIONS[key], "", f"- Commit measured: {_commit()}",
                      f"- Seed {seed}; {studies} simulated studies per scenario; {jobs} processes; "
                      f"run time {seconds:.0f} s", *common.machine_lines(info), "", *table(totals), ""])


def write(path: Path, key: str, text: str) -> None:
    """calibration.md with section `key` replaced by `text` (the header and the other section kept)."""
    old = path.read_text() if path.exists() else ""
    parts = {k: "" for k in SECTIONS}
    for k, heading in SECTIONS.items():
        if heading in old:
            rest = old.split(heading, 1)[1]
            ends = [rest.find(h) for h in SECTIONS.values() if h != heading and rest.find(h) >= 0]
            parts[k] = heading + (rest[:min(ends)] if ends else rest)
    parts[key] = text
    path.write_text("\n".join([HEADER, *(parts[k].rstrip() + "\n" for k in SECTIONS if parts[k])]))


def main(argv=None) -> int:
    """Measure every scenario and write its section of the calibration table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--section", choices=list(SECTIONS), default="after")
    parser.add_argument("--studies", type=int, default=1000, help="simulated studies per scenario (1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="processes (2)")
    parser.add_argument("--importance-studies", type=int, metavar="N", help="count importance intervals over the "
                        "first N studies only (a random forest each, ~1 s: most of the run time); default: all")
    parser.add_argument("--out", type=Path, default=HERE / "calibration.md")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    totals = measure(args.studies, args.seed, args.jobs, args.importance_studies)
    seconds = time.perf_counter() - start
    write(args.out, args.section, section(args.section, totals, seed=args.seed, studies=args.studies,
                                          jobs=args.jobs, seconds=seconds))
    print("\n".join(table(totals)))
    print(f"{seconds:.0f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
