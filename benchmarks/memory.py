"""Memory benchmark: resident memory after each trial of one study through `hpstudy run`, against a plain Keras loop.

    python benchmarks/memory.py [--trials 100] [--allowance 200] [--output benchmarks/memory.md] [--results-dir DIR]

A random search of `--trials` 1-epoch trials on a small digits subset (small models, a continuous space so no
configuration repeats), under the KERAS_BACKEND of the environment:

1. `hpstudy run` with the default memory allowance (HPSTUDY_MEMORY_ALLOWANCE_MIB unset: 2048 MiB), VmRSS of the
   run's process read at each trial's line;
2. the same with `--allowance` MiB (a small one), so that the fresh-process restarts happen within the run;
3. a plain Keras loop of the same models in one process: each trial's hyperparameters read back from run 1,
   the model built and compiled by hpstudy's own builder, `model.fit` for the same epoch on the same data,
   then `del`, `keras.backend.clear_session()` and `gc.collect()`; VmRSS after each model. No tuner, no
   callbacks, no checkpoint: what Keras and the backend keep by themselves.

Growth per trial is the least-squares slope of VmRSS over the trials (and over their second half); the
difference between run 1 and the plain loop is what hpstudy and keras-tuner add.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

DEFAULT_ALLOWANCE_MIB = 2048      # hpstudy.cli.DEFAULT_MEMORY_ALLOWANCE_MIB, read here without importing hpstudy


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
    from hpstudy.engine.search.tuner import StudyTuner
    return StudyTuner


def measure(trials: int, folder: Path, allowance_mib: float) -> dict:
    """`hpstudy run` with the default allowance and with `allowance_mib`, then the plain loop of the same models."""
    folder = Path(folder)
    default = measure_cli(trials, folder, None)
    small = measure_cli(trials, folder, allowance_mib)
    plain = measure_plain(Path(default["results"]))
    import keras
    return {"trials": trials, "cli": [default, small], "plain": plain, "backend": keras.backend.backend(),
            "results": small["results"]}


def measure_cli(trials: int, folder: Path, allowance_mib: float | None) -> dict:
    """`hpstudy run` of the study (with HPSTUDY_MEMORY_ALLOWANCE_MIB=`allowance_mib`; None: unset, the default):
    the run's VmRSS at each finished trial, its restarts and wall time."""
    name = f"memory_{DEFAULT_ALLOWANCE_MIB if allowance_mib is None else allowance_mib:g}"
    path = common.write_study(Path(folder), study(name, trials))
    env = {k: v for k, v in os.environ.items() if k != "HPSTUDY_MEMORY_ALLOWANCE_MIB"}
    if allowance_mib is not None:
        env["HPSTUDY_MEMORY_ALLOWANCE_MIB"] = f"{allowance_mib:g}"
    command = [sys.executable, "-m", "hpstudy.cli", "run", str(path), "--results-dir", str(Path(folder) / "results"),
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
    common.progress(f"memory: hpstudy run, allowance {allowance_mib or 'default'}: {len(rows)} trials, "
                    f"{restarts} restarts")
    return {"rows": rows, "restarts": restarts, "allowance_mib": allowance_mib or DEFAULT_ALLOWANCE_MIB,
            "default_allowance": allowance_mib is None, "wall_s": time.perf_counter() - start,
            "returncode": child.returncode, "results": str(Path(folder) / "results" / name)}


def measure_plain(results: Path) -> dict:
    """In this process: the models of the run in `results`, one after the other in a plain Keras loop."""
    import gc

    import keras

    from hpstudy.engine.search import hypermodel
    from hpstudy.results import trials as trials_module
    from hpstudy.results.layout import Layout
    from hpstudy.study import spec

    layout = Layout(Path(results))
    study_spec = spec.load(layout.spec)
    dataset = hypermodel.load_data(study_spec)
    maker = hypermodel.make_hypermodel(study_spec, dataset)
    rows, start_rss, start = [], common.rss_mib(), time.perf_counter()
    for trial_id in trials_module.read_trials(layout).trial_id:
        hp = hypermodel.trial_hyperparameters(layout, trial_id)
        train = maker.values(hp)["train"]
        model = maker.build(hp)
        model.fit(dataset.train.x, dataset.train.y, batch_size=train["batch_size"], epochs=train["epochs"],
                  shuffle=True, verbose=0, validation_data=(dataset.validation.x, dataset.validation.y))
        del model
        keras.backend.clear_session()
        gc.collect()
        rows.append({"trial": len(rows), "rss_mib": round(common.rss_mib(), 1)})
    common.progress(f"memory: plain Keras loop: {len(rows)} models")
    return {"rows": rows, "rss_before_mib": start_rss, "wall_s": time.perf_counter() - start}


def _rss_of(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def summary(rows: list[dict]) -> dict:
    """First, last and largest VmRSS, and its growth per trial (least squares; all trials and the second half)."""
    rss = np.array([r["rss_mib"] for r in rows])
    index = np.arange(len(rss))

    def slope(part):
        return float(np.polyfit(index[part], rss[part], 1)[0]) if len(rss[part]) >= 2 else float("nan")
    return {"trials": len(rss), "first_mib": float(rss[0]), "last_mib": float(rss[-1]), "max_mib": float(rss.max()),
            "slope": slope(slice(None)), "slope_second_half": slope(slice(len(rss) // 2, None))}


def section_lines(result: dict) -> list[str]:
    """The summary table and what it says (RESULTS.md's memory section, and memory.md's head)."""
    runs = [("plain Keras loop, one process", result["plain"], "")]
    for cli in result["cli"]:
        allowance = f"{cli['allowance_mib']:g} MiB" + (" (the default)" if cli["default_allowance"] else "")
        runs.append((f"`hpstudy run`, allowance {allowance}", cli, f"{cli['restarts']}"))
    lines = [f"{result['trials']} trials of 1 epoch on 500 digits ({result['backend']} backend), one run of each: "
             "VmRSS (MiB) after each trial; growth per trial is the least-squares slope (all trials, and the second "
             "half), shown for the runs that stayed in one process.", "",
             "| run | trials | first MiB | last MiB | max MiB | MiB/trial | MiB/trial, 2nd half | restarts | run s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, run, restarts in runs:
        if not run["rows"]:
            lines.append(f"| {label} | 0 | | | | | | {restarts} | {run['wall_s']:.0f} |")
            continue
        s = summary(run["rows"])
        # Across fresh-process restarts a slope is no process's growth: shown only for a run in one process.
        slopes = ("– | –" if run.get("restarts") else f"{s['slope']:+.2f} | {s['slope_second_half']:+.2f}")
        lines.append(f"| {label} | {s['trials']} | {s['first_mib']:,.0f} | {s['last_mib']:,.0f} | {s['max_mib']:,.0f} "
                     f"| {slopes} | {restarts} | {run['wall_s']:.0f} |")
    return lines + ["", *_reading(result)]


def _reading(result: dict) -> list[str]:
    """The sentences the table supports: hpstudy's share of the growth, and what each allowance did."""
    default, small = result["cli"]
    if not (default["rows"] and small["rows"] and result["plain"]["rows"]):
        return ["A run reported no trial: nothing to compare."]
    plain, run = summary(result["plain"]["rows"])["slope"], summary(default["rows"])
    grown = run["max_mib"] - run["first_mib"]
    lines = [f"- Growth per trial in one process: {run['slope']:+.2f} MiB through `hpstudy run`, {plain:+.2f} MiB for "
             f"the same models in a plain Keras loop; the difference, {run['slope'] - plain:+.2f} MiB per trial, is "
             "what hpstudy and keras-tuner add (one run of each)."]
    if default["restarts"]:
        lines.append(f"- With the default {default['allowance_mib']:g} MiB allowance the run restarted "
                     f"{default['restarts']} times and stayed within {run['max_mib']:,.0f} MiB.")
    else:
        lines.append(f"- With the default {default['allowance_mib']:g} MiB allowance the {run['trials']} trials grew "
                     f"by {grown:,.0f} MiB, within the allowance, so the run never restarted: the default bound was "
                     f"not reached here (at {run['slope']:+.1f} MiB per trial it would be after about "
                     f"{default['allowance_mib'] / run['slope']:,.0f} trials of these models).")
    s = summary(small["rows"])
    lines.append(f"- With a {small['allowance_mib']:g} MiB allowance it restarted {small['restarts']} times in "
                 f"{s['trials']} trials and stayed within {s['max_mib']:,.0f} MiB (exit code {small['returncode']}).")
    return lines


def render(result: dict, info: dict) -> str:
    """benchmarks/memory.md: the summary, then VmRSS after every trial of each run."""
    default, small = result["cli"]
    lines = ["# Memory across the trials of one study", "", *common.machine_lines(info), "",
             f"`python benchmarks/memory.py --trials {result['trials']} --allowance {small['allowance_mib']:g}` "
             "(or `python benchmarks/run.py --sections memory`); one run of each.", "", *section_lines(result), "",
             f"| trial | plain Keras loop | `hpstudy run`, {default['allowance_mib']:g} MiB | "
             f"`hpstudy run`, {small['allowance_mib']:g} MiB |", "|---:|---:|---:|---:|"]
    columns = [{r["trial"]: r for r in run["rows"]} for run in (result["plain"], default, small)]
    for trial in range(max(len(c) for c in columns)):
        cells = []
        for column in columns:
            row = column.get(trial)
            cells.append("" if row is None else f"{row['rss_mib']:,.1f}"
                         + (" (then restarted)" if row.get("after_restart") else ""))
        lines.append(f"| {trial} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--allowance", type=float, default=200.0, help="the small allowance, MiB")
    parser.add_argument("--output", default=str(Path(__file__).with_name("memory.md")))
    parser.add_argument("--results-dir", help="where the studies' results go (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.trials, Path(args.results_dir or tmp), args.allowance)
    text = render(result, common.machine())
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
