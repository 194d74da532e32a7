"""Every hpstudy benchmark, each section in its own processes, into benchmarks/RESULTS.md.

    python benchmarks/run.py [--quick] [--sections overhead memory startup ...] [--output FILE] [--keep DIR]

Sections (their children run under the KERAS_BACKEND they name):
- overhead: an hpstudy trial against a hand-written `model.fit` of the same model and data, both whole
  processes, alternating, the fit call timed the same way on both sides (benchmarks/overhead.py);
- memory: VmRSS after each trial through `hpstudy run` (default and small memory allowance) and in a plain
  Keras loop of the same models (benchmarks/memory.py); the small-allowance run's results folder is the one
  the startup section reports on;
- startup: `hpstudy --help`, and `hpstudy report` of that folder cold (importance.json moved aside, the ranking
  computed) and cached,
  alternating, and whether either imports TensorFlow;
- tuners: epochs and seconds that hyperband, bayesian and random search (plain, and with each search.pruning
  rule), each with several seeds, need to come within 0.5 points of the best validation accuracy a full grid
  finds, on digits;
- pipeline: images/s the input side feeds vs images/s a model trains at, and decoding a CINIC-10-sized PNG
  folder (benchmarks/pipeline.py);
- backends: images/s of one plain_cnn trial under each installed Keras backend;
- settings: images/s of plain_cnn for each train.precision, jit_compile and steps_per_execution, in rounds;
- confirm, serve, report_figures, design: benchmarks/confirm.py, serve.py, report_figures.py and design.py
  (its synthetic section), each writing its own benchmarks/<name>.md.
A full run rewrites the sections it runs in RESULTS.md (keeping the others) and benchmarks/memory.md,
pipeline.md and the scripts' files; `--quick` makes every section tiny (a smoke test whose numbers mean nothing)
and writes its results into the work folder.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402
import overhead  # noqa: E402

from hpstudy.text import read_csv  # noqa: E402  (hpstudy's CSVs: each text cell as it was written)

SECTIONS = ("overhead", "memory", "startup", "tuners", "pipeline", "backends", "settings", "confirm", "serve",
            "report_figures", "design")
# The sections that run a script of their own, which writes benchmarks/<name>.md: its arguments per mode.
SCRIPTS = {"full": {"confirm": ["--seeds", "5"], "serve": ["--trials", "100", "--repeats", "20"],
                    "report_figures": ["--trials", "100", "--repeats", "5"], "design": ["--studies", "100"]},
           "quick": {"confirm": ["--seeds", "2", "--max-trials", "2", "--epochs", "1"],
                     "serve": ["--trials", "6", "--repeats", "2"],
                     "report_figures": ["--trials", "6", "--repeats", "1"],
                     "design": ["--studies", "2", "--cap", "8"]}}
SIZES = {
    "full": {"overhead_fit_s": 15, "overhead_epochs": 3, "overhead_repeats": 4, "memory_trials": 50,
             "memory_allowance_mib": 200, "tuner_axes": 3, "tuner_values": 3, "tuner_epochs": 9,
             "pipeline_images": 2048, "pipeline_backends": ["tensorflow", "jax"], "pipeline_repeats": 3,
             "decode_images": 270_000, "decode_repeats": 2, "backend_images": 8192, "backend_epochs": 3,
             "settings_s": 5.0, "settings_repeats": 3, "settings_images": 32768, "settings_all": True,
             "settings_backends": ["tensorflow", "jax"], "help_runs": 5, "report_runs": 3},
    "quick": {"overhead_fit_s": 1.5, "overhead_epochs": 2, "overhead_repeats": 1, "memory_trials": 4,
              "memory_allowance_mib": 200, "tuner_axes": 2, "tuner_values": 2, "tuner_epochs": 2,
              "pipeline_images": 256, "pipeline_backends": ["tensorflow"], "pipeline_repeats": 2, "decode_images": 200,
              "decode_repeats": 2, "backend_images": 256, "backend_epochs": 2, "settings_s": 0.3,
              "settings_repeats": 2, "settings_images": 1024, "settings_all": False,
              "settings_backends": ["tensorflow"], "help_runs": 2, "report_runs": 1},
}
BATCH = 64          # the study default
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


# ---------------------------------------------------------------- children: one section part each, JSON out
def child_memory(size: dict, work: Path) -> dict:
    import memory
    return memory.measure(size["memory_trials"], work, size["memory_allowance_mib"])


TUNER_SPACE = {"conv_layers": [1, 2, 3], "filters": [8, 16, 32], "learning_rate": [3e-4, 1e-3, 3e-3]}
# Each searching tuner, plain and with each pruning rule; a pruned search shares its tuner's seeds, so each
# pruned run is paired with the plain run that proposes the same first trials.
TUNER_VARIANTS = [("random", None), ("random", "median"), ("random", "successive_halving"), ("bayesian", None),
                  ("bayesian", "median"), ("bayesian", "successive_halving"), ("hyperband", None)]
TUNER_SEEDS = {"random": 1, "bayesian": 101, "hyperband": 201}     # each tuner its own seeds: seed + 0, 1, ...
# Looked at from a third of a trial's epochs on (tuner_study: 3 of 9; see the rank correlations the section
# reports), once 3 trials are there to compare with; successive halving's rungs are then epochs 3 and 9 (the last
# epoch, never pruned at).
TUNER_PRUNING = {"median": {"rule": "median", "min_trials": 3},
                 "successive_halving": {"rule": "successive_halving", "min_trials": 3}}
BAYESIAN_INITIAL = 3        # random trials before the Gaussian process (keras-tuner's default: 3 x 3 axes = 9)
TUNER_EPOCH_CAP = 0.4       # a run stops once it has spent this share of the full grid's epochs: not reached
TUNER_GOAL = 0.2            # a pruned search's median epochs to the target, as a share of the grid's
SIZES["full"].update(tuner_seeds=3, tuner_variants=TUNER_VARIANTS)           # runs per tuner, and which tuners
SIZES["quick"].update(tuner_seeds=1, tuner_variants=[("random", "median"), ("bayesian", "successive_halving"),
                                                     ("hyperband", None)])


def tuner_space(size: dict) -> dict:
    """The searched values: tuner_values of each of the first tuner_axes hyperparameters of TUNER_SPACE."""
    return {k: v[:size["tuner_values"]] for k, v in list(TUNER_SPACE.items())[:size["tuner_axes"]]}


def tuner_label(tuner: str, rule: str | None) -> str:
    return f"{tuner} + {rule}" if rule else tuner


def tuner_study(size: dict, tuner: str, seed: int = 0, rule: str | None = None) -> dict:
    """The search space every tuner searches: values^axes configurations of a small CNN on digits, half the
    images held out for validation (one image is 0.14 points, so 0.5 points is 3.6 images, not one or two)."""
    n, axes, searched = size["tuner_values"], size["tuner_axes"], tuner_space(size)
    model = {"builder": "plain_cnn", "conv_layers": 2, "filters": 16, "dense_units": 64}
    train = {"epochs": size["tuner_epochs"], "batch_size": 32}
    for key, values in searched.items():
        (train if key == "learning_rate" else model)[key] = {"tune": "choice", "values": values}
    study = {
        "name": f"tuners_{tuner}{'_' + rule if rule else ''}_{seed}",
        "data": {"dataset": "digits", "validation_split": 0.5},       # 718 validation images, 719 training
        "model": model, "train": train, "search": {"tuner": tuner, "seed": seed},
    }
    if tuner == "hyperband":
        study["search"]["options"] = {"factor": 3, "hyperband_iterations": 1}
    elif tuner != "grid":
        # At most two thirds of the grid's trials: a tuner that needs more is reported as not reaching the target.
        study["search"]["max_trials"] = max(2, 2 * n ** axes // 3)
    if tuner == "bayesian":
        study["search"]["options"] = {"num_initial_points": BAYESIAN_INITIAL}
    if rule:
        pruning = {**TUNER_PRUNING[rule], "warmup_epochs": max(1, size["tuner_epochs"] // 3)}
        # A quick run has too few trials for that min_trials (refused: it would stop nothing): as many as it has.
        pruning["min_trials"] = min(pruning["min_trials"], study["search"]["max_trials"] - (rule == "median"))
        study["search"]["pruning"] = pruning
    return study


def child_tuners(size: dict, work: Path) -> dict:
    """The full grid first; then each tuner (plain and pruned) with several seeds, each run stopped once a trial
    that was not pruned comes within 0.5 points of the grid's best."""
    import keras
    import memory
    import pandas as pd

    import hpstudy
    from hpstudy.engine.search import checks, hypermodel
    from hpstudy.results import trials as trials_module

    # The same initial weights for every trial: a configuration then scores the same whichever tuner tries it
    # (and a pruned trial's curve is the start of the unpruned one), so the tuners are compared on their choices.
    build = hypermodel.SpecHyperModel.build

    def seeded_build(self, hp):
        keras.utils.set_random_seed(1)
        return build(self, hp)
    hypermodel.SpecHyperModel.build = seeded_build

    mixin = memory.tuner_mixin()
    original = mixin.on_trial_end
    target, cap = [None], [None]

    def on_trial_end(self, trial):
        original(self, trial)
        if target[0] is None:
            return
        done = self.oracle.get_trial(trial.trial_id)
        reached = done.score is not None and done.score >= target[0]
        reached = reached and trials_module.read_pruned(self.layout, trial.trial_id) is None
        spent = pd.to_numeric(trials_module.read_trials(self.layout).epochs_run, errors="coerce").sum()
        if reached or spent >= cap[0]:
            self.oracle.max_trials = len(self.oracle.trials)     # the oracle hands out no further trial
    mixin.on_trial_end = on_trial_end

    def search(study: dict) -> dict:
        path = common.write_study(work, study)
        start = time.perf_counter()
        found = hpstudy.run(path, results_dir=work / "results", overwrite=True, stream=io.StringIO())
        wall = time.perf_counter() - start
        table = read_csv(found.path / "trials.csv")
        rows = [{"status": r.status, "epochs": int(r.epochs_run) if r.epochs_run == r.epochs_run else 0,
                 "seconds": float(r.seconds) if r.seconds == r.seconds else 0.0,
                 "val_accuracy": float(r.val_accuracy) if r.val_accuracy == r.val_accuracy else None}
                for r in table.itertuples()]
        return {"rows": rows, "wall_s": wall, "seed": study["search"]["seed"], "path": str(found.path)}

    grid = search(tuner_study(size, "grid"))
    target[0] = max(r["val_accuracy"] for r in grid["rows"] if r["val_accuracy"] is not None) - 0.005
    cap[0] = TUNER_EPOCH_CAP * sum(r["epochs"] for r in grid["rows"])
    # The grid's run built every configuration up front; the runs after it skip that check (wall time, no epochs).
    checks.build_each = lambda *args, **kwargs: 0
    common.progress(f"tuners: grid {len(grid['rows'])} trials, {sum(r['epochs'] for r in grid['rows'])} epochs, "
                    f"{grid['wall_s']:.0f} s")
    runs = {tuner_label(t, rule): [] for t, rule in size["tuner_variants"]}
    for k in range(size["tuner_seeds"]):        # seed by seed: every tuner has as many runs at any moment
        for tuner, rule in size["tuner_variants"]:
            run = search(tuner_study(size, tuner, TUNER_SEEDS[tuner] + k, rule))
            run["facts"] = run_facts(run["path"], grid["path"], target[0])
            runs[tuner_label(tuner, rule)].append(run)
            reach = tuner_reach(run["rows"], target[0])
            common.progress(f"tuners: {tuner_label(tuner, rule)} seed {run['seed']}: {len(run['rows'])} trials, "
                            f"{'reached at %d epochs' % reach['epochs'] if reach else 'not reached'}, "
                            f"{run['wall_s']:.0f} s")
    return {"grid": grid, "runs": runs, "target": target[0], "epochs": size["tuner_epochs"],
            "rank_correlation": early_rank_correlation(Path(grid["path"]), size["tuner_epochs"]),
            "searched": list(tuner_space(size)), "configs": size["tuner_values"] ** size["tuner_axes"],
            "pruning": {rule: tuner_study(size, "random", 0, rule)["search"]["pruning"] for rule in TUNER_PRUNING},
            "bayesian_initial": BAYESIAN_INITIAL, "cap": TUNER_EPOCH_CAP}


def run_facts(root, grid_root, target: float) -> dict | None:
    """What a run's trials.csv says beyond its rows (None when its folder is gone): how many different
    configurations its trials tried (fewer than its trials where the tuner proposed one again; Hyperband: the
    rounds that continue one), and how many of its pruned trials had a configuration that reaches the target
    when trained to the end (its score in the grid, from the same initial weights)."""
    table, grid = Path(root) / "trials.csv", Path(grid_root) / "trials.csv"
    if not table.exists() or not grid.exists():
        return None
    trials, full = read_csv(table), read_csv(grid)
    searched = [c for c in trials.columns if c.startswith(("model.", "train."))]
    winners = full[full["val_accuracy"] >= target - 1e-9][searched].drop_duplicates()
    pruned = trials[trials["status"] == "PRUNED"][searched].merge(winners, on=searched)
    return {"distinct": int(len(trials[searched].drop_duplicates())), "pruned_winners": int(len(pruned))}


def early_rank_correlation(root: Path, epochs: int) -> dict[int, float]:
    """Over the grid's trials: Spearman's rank correlation of each trial's best val_accuracy by epoch e with its
    best over all epochs, for each e: how well an early epoch ranks the configurations a pruner compares."""
    from scipy.stats import spearmanr
    paths = sorted(root.glob("trials/*/history_0.csv"))
    curves = [read_csv(path)["val_accuracy"].cummax().to_numpy() for path in paths]
    final = [curve[-1] for curve in curves]
    return {e: float(spearmanr([curve[min(e, len(curve)) - 1] for curve in curves], final).correlation)
            for e in range(1, epochs + 1)}


def child_pipeline(size: dict, work: Path) -> dict:
    import pipeline
    return pipeline.measure_backend(size["pipeline_images"])


def child_decode(size: dict, work: Path) -> dict:
    import pipeline
    return pipeline.measure_decode(size["decode_images"], size["decode_repeats"])


def child_backend(size: dict, work: Path) -> dict:
    """One 1-trial plain_cnn study: images/s over the trial, and over its last epoch (compiled, warm)."""
    import keras

    import hpstudy

    images, epochs = size["backend_images"], size["backend_epochs"]
    npz = common.write_npz(work / "backend.npz", images, max(256, images // 16), 256)
    path = common.write_study(work, {"name": f"backend_{keras.backend.backend()}",
                                     "data": {"dataset": "npz", "data_dir": str(npz)},
                                     "train": {"epochs": epochs, "batch_size": BATCH},
                                     "search": {"tuner": "random", "max_trials": 1}})
    study = hpstudy.run(path, results_dir=work / "results", overwrite=True, stream=io.StringIO())
    trial = read_csv(study.path / "trials.csv").iloc[0]
    history = read_csv(study.path / "trials" / "0" / "history_0.csv")
    last = float(history.seconds.iloc[-1] - history.seconds.iloc[-2]) if len(history) > 1 else float("nan")
    return {"backend": keras.backend.backend(), "images": images, "epochs": epochs, "trial_s": float(trial.seconds),
            "trial_rate": epochs * images / float(trial.seconds), "last_epoch_rate": images / last,
            "first_epoch_s": float(history.seconds.iloc[0]), "devices": devices(),
            "tensorflow_imported": "tensorflow" in sys.modules, "status": str(trial.status)}


def devices() -> list[str]:
    """Keras's devices (the torch backend has no keras.distribution)."""
    import keras
    try:
        return keras.distribution.list_devices()
    except AttributeError:
        return [keras.backend.backend()]


def settings_configs(every: bool = True) -> list[dict]:
    """One setting changed at a time from the spec defaults (float32, jit_compile auto, 1 step per call)."""
    configs = [{}]
    configs += [{"precision": p} for p in PRECISIONS[1:]]
    configs += [{"jit_compile": True}, {"jit_compile": False}]
    configs += [{"steps_per_execution": s} for s in (4, 16)]
    # --quick: one of each kind
    return configs if every else [configs[0], configs[1], configs[4], configs[5]]


def child_settings(size: dict, work: Path) -> dict:
    """images/s of plain_cnn (the default study model) under each setting: every model built, compiled and warmed
    up first, then `settings_repeats` rounds that time each in turn, so that other work on a shared CPU weighs on
    every setting alike."""
    import keras
    import keras_tuner as kt

    from hpstudy.engine.search import hypermodel
    from hpstudy.study import spec

    x, y = common.random_images(size["settings_images"])
    rows = []
    for config in settings_configs(size["settings_all"]):
        study = spec.from_dict({"name": "settings", "train": {"batch_size": BATCH, **config}})
        model = hypermodel.SpecHyperModel(study, (32, 32, 3), 10).build(kt.HyperParameters())
        count = _warm_up(model, x, y, size["settings_s"], config.get("steps_per_execution", 1))
        rows.append({"config": config, "model": model, "count": count, "rates": [],
                     "jit_resolved": bool(model.jit_compile)})
    keras.config.set_dtype_policy("float32")
    for index in range(size["settings_repeats"]):
        for row in rows:
            start = time.perf_counter()
            row["model"].fit(x[:row["count"]], y[:row["count"]], batch_size=BATCH, epochs=1, verbose=0)
            row["rates"].append(row["count"] / (time.perf_counter() - start))
        common.progress(f"settings ({keras.backend.backend()}): round {index + 1}: "
                        + ", ".join(f"{_setting_name(r['config'])} {r['rates'][-1]:,.0f}" for r in rows))
    return {"backend": keras.backend.backend(), "seconds": size["settings_s"],
            "rows": [{**r["config"], "images": r["count"], "rates": r["rates"], "jit_resolved": r["jit_resolved"]}
                     for r in rows]}


def _warm_up(model, x, y, seconds: float, steps: int) -> int:
    """A compiling fit and a probing one; returns the slice of `x` that one timed fit takes about `seconds` on.

    The probe is 2 batches (or one call of `steps` batches): a setting that runs a thousand times slower than the
    defaults (mixed_float16 under TensorFlow on some CPUs) then costs seconds, not minutes."""
    chunk = BATCH * max(2, steps)
    model.fit(x[:chunk], y[:chunk], batch_size=BATCH, epochs=1, verbose=0)        # compile, warm up
    start = time.perf_counter()
    model.fit(x[:chunk], y[:chunk], batch_size=BATCH, epochs=1, verbose=0)
    probe = chunk / (time.perf_counter() - start)
    return min(len(x), max(chunk, int(probe * seconds) // chunk * chunk))


def _setting_name(config: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in config.items()) or "defaults"


CHILDREN = {"overhead_setup": overhead.setup, "overhead_hand": overhead.hand, "overhead_trial": overhead.trial,
            "memory": child_memory, "tuners": child_tuners, "pipeline": child_pipeline,
            "decode": child_decode, "backend": child_backend, "settings": child_settings}


# ---------------------------------------------------------------- the parent: sections
class Runner:
    def __init__(self, mode: str, work: Path):
        self.mode, self.size, self.work = mode, SIZES[mode], work

    def child(self, name: str, backend: str | None = "tensorflow", tag: str = "", folder: Path | None = None) -> dict:
        folder = folder or self.work / f"{name}{tag}"
        folder.mkdir(parents=True, exist_ok=True)
        return common.run_child(Path(__file__), [name, self.mode, str(folder)], backend, self.work / "stderr.log")

    def overhead(self) -> dict:
        return overhead.measure(lambda name: self.child(name, folder=self.work / "overhead"), self.size)

    def memory(self) -> dict:
        return self.child("memory")

    def startup(self, results: dict) -> dict:
        folder = results.get("memory", {}).get("results")
        if not folder or not Path(folder).exists():     # the section ran alone: make the folder now
            import memory
            allowance = self.size["memory_allowance_mib"]
            folder = memory.measure_cli(self.size["memory_trials"], self.work / "report_folder", allowance)["results"]
        return measure_startup(folder, self.size)

    def tuners(self) -> dict:
        return self.child("tuners")

    def pipeline(self) -> dict:
        """`pipeline_repeats` rounds of each backend's measurement, alternating backends; then the PNG folder."""
        backends = [b for b in self.size["pipeline_backends"] if common.version(b)]
        rounds = [[self.child("pipeline", b, f"_{b}") for b in backends] for _ in range(self.size["pipeline_repeats"])]
        return {"backends": [[part[i] for part in rounds] for i in range(len(backends))],
                "decode": self.child("decode"), "images": self.size["pipeline_images"]}

    def backends(self) -> dict:
        out = []
        for backend in ("tensorflow", "jax", "torch"):
            if not common.version(backend):
                out.append({"backend": backend, "missing": True})
                continue
            try:
                out.append(self.child("backend", backend, f"_{backend}"))
            except RuntimeError as err:
                out.append({"backend": backend, "error": str(err).splitlines()[-1][:300]})
            common.progress(f"    backends: {backend} done")
        return {"rows": out}

    def settings(self) -> dict:
        return {"backends": [self.child("settings", b, f"_{b}") for b in self.size["settings_backends"]
                             if common.version(b)]}

    def script(self, name: str) -> dict:
        """A section with a script of its own: run it; a full run writes benchmarks/<name>.md, --quick a scratch
        file."""
        output = HERE / f"{name}.md" if self.mode == "full" else self.work / f"{name}.md"
        command = [sys.executable, str(HERE / f"{name}.py"), *SCRIPTS[self.mode][name], "--output", str(output)]
        log = self.work / f"{name}.log"
        with open(log, "w") as out:
            code = subprocess.run(command, env={**os.environ, **common.QUIET}, stdout=out,
                                  stderr=subprocess.STDOUT).returncode
        if code != 0:
            raise RuntimeError(f"{' '.join(command[1:])} exited {code}:\n{log.read_text(errors='replace')[-2000:]}")
        return {"command": " ".join(["python", f"benchmarks/{name}.py", *SCRIPTS[self.mode][name]]),
                "output": str(output), "lines": Path(output).read_text().splitlines()}


def cli_command() -> list[str]:
    """The `hpstudy` console script next to this Python, else `python -m hpstudy.cli`."""
    script = Path(sys.executable).parent / "hpstudy"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hpstudy.cli"]


PROBE = ("import sys\nfrom hpstudy.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
         "sys.stderr.write('\\nPROBE ' + str({m: m in sys.modules for m in ('tensorflow', 'keras', 'jax', 'torch', "
         "'pandas', 'keras_tuner')}) + '\\n')")


def measure_startup(folder: str, size: dict) -> dict:
    """Wall times of `hpstudy --help` and `hpstudy report FOLDER`, the modules each imported, its slowest imports.

    The report runs cold (importance.json moved aside for it: the importance ranking computed in memory,
    scikit-learn imported; a report never saves it) and cached (reading back the file `hpstudy run` left),
    alternating.
    """
    importance = Path(folder) / "importance.json"
    out = {"folder_trials": sum(1 for _ in (Path(folder) / "trials").iterdir())}
    commands = {"help": (["--help"], None), "report_cold": (["report", folder], importance),
                "report": (["report", folder], None)}
    times = {label: [] for label in commands}
    for _ in range(size["help_runs"]):
        times["help"].append(_cli_seconds(["--help"]))
    for _ in range(size["report_runs"]):
        for label in ("report_cold", "report"):
            args, remove = commands[label]
            times[label].append(_cli_seconds(args, remove))
    for label, (args, hide) in commands.items():
        with _hidden(hide):
            probe = subprocess.run([sys.executable, "-X", "importtime", "-c", PROBE, *args],
                                   env={**os.environ, **common.QUIET}, capture_output=True, text=True)
        modules = eval(probe.stderr.split("PROBE ")[-1].strip())     # noqa: S307 - our own dict literal
        out[label] = {"median_s": statistics.median(times[label]), "min_s": min(times[label]),
                      "max_s": max(times[label]), "runs": len(times[label]), "imported": modules,
                      "slowest_imports": slowest_imports(probe.stderr)}
        common.progress(f"startup: {label} {out[label]['median_s']:.2f} s, TensorFlow imported: "
                        f"{modules['tensorflow']}")
    return out


def _cli_seconds(args: list[str], hide: Path | None = None) -> float:
    """Wall time of one `hpstudy ARGS` process (with `hide`, when given, moved aside meanwhile)."""
    with _hidden(hide):
        start = time.perf_counter()
        subprocess.run(cli_command() + args, env={**os.environ, **common.QUIET}, capture_output=True, check=True)
        return time.perf_counter() - start


@contextlib.contextmanager
def _hidden(path: Path | None):
    """`path` moved aside while the block runs (a cold report's importance.json), then put back."""
    aside = path.with_name(path.name + ".aside") if path is not None else None
    if path is not None and path.exists():
        path.replace(aside)
    try:
        yield
    finally:
        if aside is not None and aside.exists():
            aside.replace(path)


def slowest_imports(importtime: str, top: int = 5) -> list[tuple[str, float]]:
    """The top-level packages that took longest to import, from `python -X importtime` output (seconds)."""
    found = {}
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if "." not in name and not name.startswith("_"):
            found[name] = max(found.get(name, 0.0), int(cumulative) / 1e6)
    return sorted(found.items(), key=lambda item: -item[1])[:top]


# ---------------------------------------------------------------- the report
TITLE = ["# hpstudy benchmarks", "",
         "Written by `python benchmarks/run.py`. Each section says when, on what machine and by which command it ran, "
         "and how much of the CPU other processes used meanwhile; `--sections NAME ...` runs those sections again and "
         "keeps the others as they were.", ""]


def render_section(name: str, result: dict, info: dict, command: str) -> list[str]:
    """One section of RESULTS.md: its heading, what it ran on and when, then its figures (or its failure)."""
    lines = [f"## {name}", "", *common.machine_lines(info)[:2],
             f"- Run: {result.get('_date', info['date'])}, `{command}`, {result.get('_seconds', 0):.0f} s; "
             f"{common.shared_text(result.get('_cpu'))}", ""]
    if "error" in result:
        return lines + ["Failed:", "", "```", result["error"][-1500:], "```", ""]
    return lines + RENDER[name](result) + [""]


def merge_results(old: str, new: dict[str, list[str]], quick: bool) -> str:
    """RESULTS.md: the `new` sections in place of theirs, every other section of `old` kept as it was (a section
    from before sections carried their own run line gets the old file's machine, date and command lines)."""
    header, kept, name = [], {}, None
    for line in old.splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
            kept[name] = [line]
        elif name is None:
            header.append(line)
        else:
            kept[name].append(line)
    legacy = [line for line in header if line.startswith("- ")]
    for lines in kept.values():
        if legacy and not any(line.startswith("- Run:") for line in lines):
            lines[1:1] = ["", *legacy]
    kept.update(new)
    order = [n for n in SECTIONS if n in kept] + [n for n in kept if n not in SECTIONS]
    lines = list(TITLE)
    if quick:
        lines += ["**Quick smoke run (`--quick`): tiny sizes to check that every section works. These are not "
                  "measurements; run `python benchmarks/run.py` for the numbers.**", ""]
    for name in order:
        lines += [line for line in kept[name]]
        if lines[-1] != "":
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_overhead(r: dict) -> list[str]:
    return overhead.render(r)


def render_memory(r: dict) -> list[str]:
    import memory
    return memory.section_lines(r)


def render_startup(r: dict) -> list[str]:
    rows = []
    report = f"hpstudy report (a {r['folder_trials']}-trial folder)"
    for label, command, target in (("help", "hpstudy --help", 0.5),
                                   ("report_cold", f"{report}, importance.json moved aside", None),
                                   ("report", f"{report}, importance.json cached", 1.5)):
        m = r[label]
        slow = ", ".join(f"{name} {s:.2f}" for name, s in m["slowest_imports"])
        rows.append(f"| `{command}` | {m['median_s']:.2f} | {m['min_s']:.2f}–{m.get('max_s', m['min_s']):.2f} | "
                    f"{m['runs']} | {'' if target is None else f'< {target}'} | "
                    f"{'yes' if m['imported']['tensorflow'] else 'no'} | "
                    f"{'yes' if m['imported']['keras'] else 'no'} | {slow} |")
    return ["Each a whole process; the two reports alternate (the cold one, importance.json moved aside, computes "
            "the importance ranking in memory; the cached one reads the file `hpstudy run` left).", "",
            "| command | median s | min–max s | runs | target s | TensorFlow imported | Keras imported | "
            "slowest imports (s, cumulative) |", "|---|---:|---:|---:|---:|---|---|---|", *rows]


def tuner_reach(rows: list[dict], target: float) -> dict:
    """Epochs, seconds and trials spent, in trial order, until a trial that was not pruned reaches `target`
    (None: never). A pruned trial's epochs count as spent; its truncated score never reaches the target."""
    epochs = seconds = 0
    for index, row in enumerate(rows):
        epochs += row["epochs"]
        seconds += row["seconds"]
        reached = row["val_accuracy"] is not None and row["val_accuracy"] >= target - 1e-9
        if reached and row.get("status", "COMPLETED") == "COMPLETED":
            return {"trials": index + 1, "epochs": epochs, "seconds": seconds}
    return None


def _spread(values: list[float], digits: int = 0) -> str:
    """mean ± sd (min-max) of `values`; "-" when empty."""
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    low, high = min(values), max(values)
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def tuner_summary(runs: list[dict], target: float) -> dict:
    """Over one tuner's runs (one per seed): how many reached the target, the median epochs to it over every run,
    epochs, seconds and trials to it over the runs that reached it, and the pruned trials and epochs per run."""
    reaches = [tuner_reach(run["rows"], target) for run in runs]
    reached = [r for r in reaches if r]
    # Every run counted, one that never reached as infinitely many epochs (it stopped at the cap): the median
    # does not leave out the runs that failed, as a mean over the reached ones does.
    median = statistics.median(r["epochs"] if r else math.inf for r in reaches)
    return {"runs": len(runs), "reached": len(reached), "median": median, "epochs": [r["epochs"] for r in reached],
            "seconds": [r["seconds"] for r in reached], "trials": [r["trials"] for r in reached],
            "pruned": [sum(row.get("status") == "PRUNED" for row in run["rows"]) for run in runs],
            "spent": [sum(row["epochs"] for row in run["rows"]) for run in runs]}


def render_tuners(r: dict) -> list[str]:
    grid = r["grid"]["rows"]
    grid_epochs = sum(row["epochs"] for row in grid)
    best = r["target"] + 0.005
    reach = tuner_reach(grid, r["target"])
    seeds = max(len(runs) for runs in r["runs"].values())
    lines = [f"Digits, {r['configs']} configurations "
             f"({' x '.join(r['searched'])}) at up to {r['epochs']} epochs, half the images for validation, every "
             f"trial from the same initial weights; target: a trial that was not pruned within 0.5 points of the "
             f"grid's best validation accuracy {best:.4f}. Each other tuner ran with {seeds} "
             f"seed{'s' if seeds > 1 else ''} (its own: "
             "random 1..., bayesian 101..., hyperband 201...; a pruned search uses its tuner's seeds), each run "
             f"stopping once it reached the target, or had spent {r['cap']:.0%} of the grid's epochs, or after two "
             "thirds of the grid's trials; bayesian with "
             f"num_initial_points {r['bayesian_initial']}. Pruning: "
             + "; ".join(f"{k} {v}" for k, v in r["pruning"].items()) + " (the other keys at their defaults).", "",
             f"{sum(row['val_accuracy'] >= r['target'] - 1e-9 for row in grid if row['val_accuracy'] is not None)} "
             f"of the {len(grid)} configurations reach the target when trained to the end.", "",
             f"| tuner | reached | median epochs to target, every run | of the grid's epochs (goal: pruned "
             f"<= {TUNER_GOAL:.0%}) | epochs to target, runs that reached: mean ± sd (min-max) | trials to target | "
             "seconds to target | pruned trials per run | epochs per run | per run: trials (distinct configurations; "
             "pruned that would have reached) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| grid | {'1/1' if reach else '0/1'} | {reach['epochs']} | {reach['epochs'] / grid_epochs:.0%} | "
             f"{reach['epochs']} | {reach['trials']} | "
             f"{reach['seconds']:.0f} | 0 | {grid_epochs} | {len(grid)} ({len(grid)}; 0) |"]
    for label, runs in r["runs"].items():
        s = tuner_summary(runs, r["target"])
        facts = [run.get("facts") or run_facts(run.get("path", ""), r["grid"].get("path", ""), r["target"]) or {}
                 for run in runs]
        tried = ", ".join(f"{len(run['rows'])} ({f.get('distinct', '?')}; {f.get('pruned_winners', '?')})"
                          for run, f in zip(runs, facts))
        if s["median"] == math.inf:
            median = f"not reached (> {r['cap'] * grid_epochs:.0f}) | > {r['cap']:.0%}"
        else:
            median = f"{s['median']:.0f} | {s['median'] / grid_epochs:.0%}"
        if "+" in label:
            median += " met" if s["median"] <= TUNER_GOAL * grid_epochs else " missed"
        lines.append(f"| {label} | {s['reached']}/{s['runs']} | {median} | {_spread(s['epochs'])} | "
                     f"{_spread(s['trials'], 1)} | {_spread(s['seconds'])} | {_spread(s['pruned'], 1)} | "
                     f"{_spread(s['spent'])} | {tried} |")
    lines += ["", f"The full grid: {grid_epochs} epochs, {sum(row['seconds'] for row in grid):.0f} s of training "
                  f"({r['grid']['wall_s']:.0f} s wall). Means and spreads are over the runs that reached the target; "
                  "epochs per run counts every run, reached or not. Epoch counts do not depend on the machine's "
                  "load; seconds do (the Run line says how busy the CPU was).", "",
              "Spearman rank correlation, over the grid's trials, of the best val_accuracy by epoch e with the best "
              "over all epochs: " + ", ".join(f"e={e}: {rho:.2f}" for e, rho in r["rank_correlation"].items())
              + " (what a pruner, or Hyperband's first rungs, compare on).", "",
              "Per seed, epochs to the target (- : not reached, epochs spent in brackets):", ""]
    for label, runs in r["runs"].items():
        cells = []
        for run in runs:
            hit = tuner_reach(run["rows"], r["target"])
            cells.append(f"{run['seed']}: {hit['epochs']}" if hit else
                         f"{run['seed']}: - ({sum(row['epochs'] for row in run['rows'])})")
        lines.append(f"- {label}: {', '.join(cells)}")
    return lines


def render_pipeline(r: dict) -> list[str]:
    import pipeline
    return pipeline.render_lines(r["backends"], r["decode"], r["images"]) if r["backends"] else ["no backend"]


def render_backends(r: dict) -> list[str]:
    lines = ["One plain_cnn trial (random CIFAR-shaped images, batch 64) per backend: images/s over the whole trial "
             "(compilation included) and over its last epoch.", "",
             "| backend | images x epochs | trial s | images/s, trial | images/s, last epoch | first epoch s | "
             "TensorFlow imported | devices |", "|---|---:|---:|---:|---:|---:|---|---|"]
    for row in r["rows"]:
        if row.get("missing") or row.get("error"):
            lines.append(f"| {row['backend']} | {'not installed' if row.get('missing') else row['error']} "
                         f"| | | | | | |")
            continue
        lines.append(f"| {row['backend']} | {row['images']:,} x {row['epochs']} | {row['trial_s']:.1f} | "
                     f"{row['trial_rate']:,.0f} | {row['last_epoch_rate']:,.0f} | {row['first_epoch_s']:.1f} | "
                     f"{'yes' if row['tensorflow_imported'] else 'no'} | {', '.join(row['devices'])} |")
    return lines + ["", "TensorFlow imported: read after the run. Keras's own model saving imports TensorFlow when it "
                        "is installed, whatever the backend; tests/test_backends.py runs studies under JAX and "
                        "PyTorch with it refused."]


def render_settings(r: dict) -> list[str]:
    parts = r["backends"]
    repeats = len(parts[0]["rows"][0]["rates"]) if parts else 0
    lines = [f"images/s of the default plain_cnn (batch {BATCH}, random CIFAR-shaped images), one `train:` setting "
             "changed at a time from the defaults (float32, jit_compile auto, steps_per_execution 1). Every model is "
             f"compiled and warmed up first; then {repeats} rounds time one epoch of each in turn (about "
             f"{parts[0]['seconds'] if parts else 0:g} s each), so other work on the CPU weighs on all alike. "
             "images/s as median (min–max) over the rounds; \"vs defaults\" is each round's ratio to the defaults "
             "in the same round, median (min–max); \"every round\" says whether all rounds agree.", "",
             "| backend | setting | images/s | vs defaults | every round | XLA/jit on |", "|---|---|---:|---:|---|---|"]
    notes = []
    for part in parts:
        base = part["rows"][0]
        for row in part["rows"]:
            config = {k: v for k, v in row.items() if k not in ("images", "rates", "jit_resolved")}
            ratios = [rate / b for rate, b in zip(row["rates"], base["rates"])]
            agree = ("" if not config else "faster" if min(ratios) > 1 else "slower" if max(ratios) < 1
                     else "mixed")
            ratio = f"{overhead.spread(ratios, 3 if max(ratios) < 0.1 else 2)}x"
            lines.append(f"| {part['backend']} | {_setting_name(config)} | {overhead.spread(row['rates'], 0)} | "
                         f"{ratio} | {agree} | {'yes' if row['jit_resolved'] else 'no'} |")
            if list(config) == ["jit_compile"] and row["jit_resolved"] == base["jit_resolved"]:
                notes.append(f"Under {part['backend']}, `jit_compile: {config['jit_compile']}` resolves to what the "
                             f"defaults do (XLA {'on' if base['jit_resolved'] else 'off'}): the two are the same "
                             f"configuration, so their ratio, {ratio}, is this run's noise.")
    return lines + (["", *notes] if notes else [])


def render_script(r: dict) -> list[str]:
    """A section with a script of its own: what it ran and where its figures are."""
    name = Path(r["output"]).name
    if Path(r["output"]).parent != HERE:
        return [f"`{r['command']}` ran (its scratch output is not kept)."]
    return [f"`{r['command']}` wrote [{name}]({name}) (its own date, machine and repeat count are there)."]


RENDER = {"overhead": render_overhead, "memory": render_memory, "startup": render_startup, "tuners": render_tuners,
          "pipeline": render_pipeline, "backends": render_backends, "settings": render_settings,
          **{name: render_script for name in SCRIPTS["full"]}}


def run_section(runner: Runner, name: str, results: dict) -> dict:
    """One section, timed, with the CPU time other processes used meanwhile; a failure is kept as its message."""
    date, cpu, start = common.machine()["date"], common.cpu_counters(), time.perf_counter()
    try:
        if name == "startup":
            result = runner.startup(results)
        elif name in SCRIPTS["full"]:
            result = runner.script(name)
        else:
            result = getattr(runner, name)()
    except Exception as err:  # noqa: BLE001 - one failed section must not lose the others
        result = {"error": f"{type(err).__name__}: {err}"}
    result.update(_date=date, _seconds=time.perf_counter() - start, _cpu=common.cpu_used(cpu))
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        name, mode, folder = sys.argv[2:5]
        common.emit(CHILDREN[name](SIZES[mode], Path(folder)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of every section")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), metavar="SECTION",
                        help=f"run only these ({', '.join(SECTIONS)})")
    parser.add_argument("--output", help="the results file (default: benchmarks/RESULTS.md; with --quick, a new file "
                                         "in the work folder)")
    parser.add_argument("--keep", metavar="DIR", help="keep the studies and logs in DIR (default: a temporary folder)")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    sections = [s for s in SECTIONS if s in args.sections]
    work = Path(args.keep or tempfile.mkdtemp(prefix="hpstudy-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    output = Path(args.output or (work / "RESULTS.md" if args.quick else HERE / "RESULTS.md"))
    command = " ".join(["python benchmarks/run.py", *(["--quick"] if args.quick else []),
                        *(["--sections", *sections] if sections != list(SECTIONS) else [])])
    old = output.read_text() if output.exists() else ""
    runner, info, results, rendered = Runner(mode, work), common.machine(), {}, {}
    started = time.perf_counter()
    print(f"hpstudy benchmarks ({mode}): {', '.join(sections)}; work folder {work}", flush=True)
    for name in sections:
        print(f"[{name}] ...", flush=True)
        results[name] = run_section(runner, name, results)
        state = "FAILED" if "error" in results[name] else "done"
        print(f"[{name}] {state} in {results[name]['_seconds']:.0f} s (total "
              f"{(time.perf_counter() - started) / 60:.1f} min)", flush=True)
        rendered[name] = render_section(name, results[name], info, command)
        output.write_text(merge_results(old, rendered, args.quick))     # after each: a crash keeps them
    if mode == "full":
        write_section_files(results, info)
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(output.read_text())
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    failed = [name for name in sections if "error" in results[name]]
    if failed:
        print(f"failed sections: {', '.join(failed)} (see {output})", file=sys.stderr)
        sys.exit(1)


def _when(info: dict, result: dict) -> dict:
    """`info` with the section's own start and the CPU time other processes took while it ran."""
    return {**info, "date": result.get("_date", info["date"]), "shared": common.shared_text(result.get("_cpu"))}


def write_section_files(results: dict, info: dict) -> None:
    """A full run's memory and pipeline sections also rewrite benchmarks/memory.md and benchmarks/pipeline.md."""
    import memory
    import pipeline
    if "error" not in results.get("memory", {"error": ""}):
        r = results["memory"]
        (HERE / "memory.md").write_text(memory.render(r, _when(info, r)))
    if "error" not in results.get("pipeline", {"error": ""}):
        r = results["pipeline"]
        (HERE / "pipeline.md").write_text(pipeline.render(r["backends"], r["decode"], r["images"], _when(info, r)))


if __name__ == "__main__":
    main()
