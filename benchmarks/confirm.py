"""The noise floor on digits, and what the confirm step costs: the quickstart study searched, then its best
configuration trained again with 5 new seeds (`hpstudy confirm --top 1 --seeds 5`), each in its own process.

    python benchmarks/confirm.py [--seeds 5] [--max-trials N --epochs E] [--output benchmarks/confirm.md]

Reported: the search's wall time and its best trial's score; each repeat's validation and test accuracy; their
mean, standard deviation and 95% interval; the noise floor (the seed-to-seed standard deviation, here of one
configuration); the confirm step's wall time as a share of the search's. The quickstart file is used as shipped,
except that its own search.confirm is removed so the search is timed alone.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _timed(arguments: list[str]) -> float:
    """Seconds of one whole `hpstudy ARGUMENTS` process (its output shown as it comes)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hpstudy.cli", *arguments], env={**os.environ, **common.QUIET}, check=True)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-trials", type=int, help="fewer trials than the quickstart's (a smoke test)")
    parser.add_argument("--epochs", type=int, help="fewer epochs than the quickstart's (a smoke test)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "confirm.md"))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hpstudy-confirm-"))
    study = yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text())
    study["search"].pop("confirm", None)
    path = work / "quickstart.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    smaller = [*(["--max-trials", str(args.max_trials)] if args.max_trials else []),
               *(["--epochs", str(args.epochs)] if args.epochs else [])]
    search_s = _timed(["run", str(path), "--results-dir", str(work), *smaller])
    confirm_s = _timed(["confirm", str(work / "quickstart"), "--top", "1", "--seeds", str(args.seeds)])

    import hpstudy
    from hpstudy.analysis import repeats as repeats_module
    loaded = hpstudy.load_study(work / "quickstart")
    repeats, best = loaded.repeats, loaded.best
    summary = repeats_module.summaries(repeats).iloc[0]
    floor, dof = repeats_module.noise_floor(repeats)
    command = f"python benchmarks/confirm.py --seeds {args.seeds}{' ' + ' '.join(smaller) if smaller else ''}"
    lines = ["# The noise floor on digits, and the cost of confirming", "",
             *common.machine_lines(common.machine()), "",
             f"Command: `{command}` (one run: the search once, then {args.seeds} repeats of its best configuration, "
             f"trial {best['trial_id']}).", "",
             f"- search: {len(loaded.trials)} trials in {search_s:.1f} s (the whole `hpstudy run`); best trial "
             f"{best['trial_id']}: {best['objective']} {best['score']:.4f}, test accuracy "
             f"{best['test_accuracy']:.4f}",
             f"- its {int(summary.n)} seed repeats: val_accuracy {summary.score_mean:.4f} ± {summary.score_std:.4f} "
             f"(95% interval {summary.score_ci95[0]:.4f} to {summary.score_ci95[1]:.4f}); test accuracy "
             f"{summary.test_accuracy_mean:.4f} ± {summary.test_accuracy_std:.4f} (95% interval "
             f"{summary.test_accuracy_ci95[0]:.4f} to {summary.test_accuracy_ci95[1]:.4f})",
             f"- noise floor (seed-to-seed std of val_accuracy, {dof} degrees of freedom): {floor:.4f}",
             f"- confirm: {confirm_s:.1f} s (the whole `hpstudy confirm`), {100 * confirm_s / search_s:.0f}% of the "
             f"search's time", "",
             "| seed | val_accuracy | test_accuracy | best epoch | epochs run | seconds |", "|---|---|---|---|---|---|",
             *[f"| {r.seed} | {r.score:.4f} | {r.test_accuracy:.4f} | {r.best_epoch} | {r.epochs_run} "
               f"| {r.seconds:.1f} |" for r in repeats.itertuples()], ""]
    Path(args.output).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
