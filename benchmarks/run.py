"""Every hpstudy benchmark in one run, side by side, into benchmarks/RESULTS.md.

    python benchmarks/run.py [--quick] [--sections overhead memory startup ...] [--output FILE] [--keep DIR]

Sections (each in its own process, under the KERAS_BACKEND it names):
- overhead: wall time of a 1-trial hpstudy study vs a hand-written `model.fit` of the same model on the same
  data for the same epochs, in one process (the trial's own seconds, and the whole run with its data loading,
  validation builds and best-model save);
- memory: VmRSS after each trial of one study in one process (benchmarks/memory.py); its 100 trials are also
  the results folder the startup section reports on;
- startup: `hpstudy --help` and `hpstudy report` of a 100-trial folder, and whether either imports TensorFlow;
- tuners: epochs and seconds that hyperband, bayesian and random search (plain, and with each search.pruning
  rule), each with several seeds, need to come within 0.5 points of the best validation accuracy a full grid
  finds, on digits;
- pipeline: images/s the input side feeds vs images/s a model trains at (benchmarks/pipeline.py);
- backends: images/s of one plain_cnn trial under each installed Keras backend;
- settings: images/s of plain_cnn for each train.precision, jit_compile and steps_per_execution.
`--quick` makes every section tiny (a smoke test, about 3 minutes); the full run takes about 20 minutes on
2 CPU cores.
"""
from __future__ import annotations

import argparse
import io
import json
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

SECTIONS = ("overhead", "memory", "startup", "tuners", "pipeline", "backends", "settings")
SIZES = {
    "full": {"overhead_fit_s": 60, "overhead_epochs": 3, "memory_trials": 100, "tuner_axes": 3, "tuner_values": 3,
             "tuner_epochs": 9, "pipeline_images": 4096, "pipeline_backends": ["tensorflow", "jax"],
             "decode_images": 5000, "backend_images": 8192, "backend_epochs": 3, "settings_s": 8.0,
             "settings_images": 32768, "settings_all": True, "settings_backends": ["tensorflow", "jax"], "help_runs": 5,
             "report_runs": 3},
    "quick": {"overhead_fit_s": 1.5, "overhead_epochs": 2, "memory_trials": 4, "tuner_axes": 2, "tuner_values": 2,
              "tuner_epochs": 2, "pipeline_images": 256, "pipeline_backends": ["tensorflow"], "decode_images": 200,
              "backend_images": 256, "backend_epochs": 2, "settings_s": 0.3, "settings_images": 1024,
              "settings_all": False, "settings_backends": ["tensorflow"], "help_runs": 2, "report_runs": 1},
}
BATCH = 64          # the study default
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


# ---------------------------------------------------------------- children: one section part each, JSON out
def child_overhead(size: dict, work: Path) -> dict:
    """A hand-written fit, then a 1-trial study of the same model and data, then the hand-written fit again."""
    import keras
    import keras_tuner as kt

    from hpstudy.study import spec
    from hpstudy.engine import checks, hypermodel, runner

    epochs = size["overhead_epochs"]
    # Calibrate the data size so that one hand-written fit takes about overhead_fit_s (and warm the process up).
    x, y = common.random_images(1024)
    calibrate = spec.from_dict({"name": "calibrate"})
    model = hypermodel.SpecHyperModel(calibrate, (32, 32, 3), 10).build(kt.HyperParameters())
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    rate = len(x) / (time.perf_counter() - start)
    train = max(1024, int(size["overhead_fit_s"] * rate / epochs) // BATCH * BATCH)
    npz = common.write_npz(work / "overhead.npz", train, max(256, train // 10), 512)
    path = common.write_study(work, {"name": "overhead", "data": {"dataset": "npz", "data_dir": str(npz)},
                                     "train": {"epochs": epochs, "batch_size": BATCH},
                                     "search": {"tuner": "random", "max_trials": 1}})
    study = spec.load(path)
    dataset = hypermodel.load_data(study)
    common.progress(f"overhead: {train:,} images x {epochs} epochs (calibrated at {rate:,.0f} images/s)")

    def hand_written() -> dict:
        keras.backend.clear_session()
        start = time.perf_counter()
        model = hypermodel.make_hypermodel(study, dataset).build(kt.HyperParameters())
        built = time.perf_counter()
        model.fit(dataset.train.x, dataset.train.y, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0,
                  validation_data=(dataset.validation.x, dataset.validation.y))
        return {"build_s": built - start, "fit_s": time.perf_counter() - built}

    phases = {**_time_phases(runner, ("load_data", "_make_tuner", "_save_best")), **_time_phases(checks, ("build_each",))}
    first = hand_written()
    common.progress(f"overhead: hand-written fit {first['fit_s']:.1f} s")
    keras.backend.clear_session()
    start = time.perf_counter()
    layout = runner.run(study, results_dir=work / "results", overwrite=True, stream=io.StringIO())
    run_s = time.perf_counter() - start
    import pandas as pd
    table = pd.read_csv(layout.root / "trials.csv")
    trial_s = float(table.seconds.iloc[0])
    common.progress(f"overhead: hpstudy run {run_s:.1f} s (trial {trial_s:.1f} s)")
    second = hand_written()
    common.progress(f"overhead: hand-written fit again {second['fit_s']:.1f} s")
    return {"images": train, "val_images": len(dataset.validation.x), "epochs": epochs, "hand": [first, second],
            "trial_s": trial_s, "run_s": run_s, "phases": phases, "status": str(table.status.iloc[0]),
            "backend": keras.backend.backend()}


def _time_phases(module, names) -> dict:
    """Wrap module-level functions so each call's seconds add up in the returned dict (missing names skipped)."""
    phases = {}
    for name in names:
        function = getattr(module, name, None)
        if function is None:
            continue

        def timed(*args, _function=function, _name=name, **kwargs):
            start = time.perf_counter()
            try:
                return _function(*args, **kwargs)
            finally:
                phases[_name] = phases.get(_name, 0.0) + time.perf_counter() - start
        setattr(module, name, timed)
    return phases


def child_report_folder(size: dict, work: Path) -> dict:
    """The memory section's study alone: a results folder of `memory_trials` trials for the startup section."""
    import memory
    return {"results": memory.measure(size["memory_trials"], work / "memory")["results"]}


def child_memory(size: dict, work: Path) -> dict:
    import memory
    result = memory.measure(size["memory_trials"], work / "memory")
    result["cli"] = memory.measure_cli(size["memory_trials"], work / "memory", size.get("memory_allowance_mib", 200))
    return result


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
        study["search"]["pruning"] = {**TUNER_PRUNING[rule], "warmup_epochs": max(1, size["tuner_epochs"] // 3)}
    return study


def child_tuners(size: dict, work: Path) -> dict:
    """The full grid first; then each tuner (plain and pruned) with several seeds, each run stopped once a trial
    that was not pruned comes within 0.5 points of the grid's best."""
    import pandas as pd

    import hpstudy
    import keras
    import memory

    from hpstudy.engine import checks, hypermodel
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
        table = pd.read_csv(found.path / "trials.csv")
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
            "bayesian_initial": BAYESIAN_INITIAL, "cap": TUNER_EPOCH_CAP,
            "date": common.machine()["date"]}


def run_facts(root, grid_root, target: float) -> dict | None:
    """What a run's trials.csv says beyond its rows (None when its folder is gone): how many different
    configurations its trials tried (fewer than its trials where the tuner proposed one again; Hyperband: the
    rounds that continue one), and how many of its pruned trials had a configuration that reaches the target
    when trained to the end (its score in the grid, from the same initial weights)."""
    import pandas as pd
    table, grid = Path(root) / "trials.csv", Path(grid_root) / "trials.csv"
    if not table.exists() or not grid.exists():
        return None
    trials, full = pd.read_csv(table), pd.read_csv(grid)
    searched = [c for c in trials.columns if c.startswith(("model.", "train."))]
    winners = full[full["val_accuracy"] >= target - 1e-9][searched].drop_duplicates()
    pruned = trials[trials["status"] == "PRUNED"][searched].merge(winners, on=searched)
    return {"distinct": int(len(trials[searched].drop_duplicates())), "pruned_winners": int(len(pruned))}


def early_rank_correlation(root: Path, epochs: int) -> dict[int, float]:
    """Over the grid's trials: Spearman's rank correlation of each trial's best val_accuracy by epoch e with its
    best over all epochs, for each e: how well an early epoch ranks the configurations a pruner compares."""
    import pandas as pd
    from scipy.stats import spearmanr
    paths = sorted(root.glob("trials/*/history_0.csv"))
    curves = [pd.read_csv(path)["val_accuracy"].cummax().to_numpy() for path in paths]
    final = [curve[-1] for curve in curves]
    return {e: float(spearmanr([curve[min(e, len(curve)) - 1] for curve in curves], final).correlation)
            for e in range(1, epochs + 1)}


def child_pipeline(size: dict, work: Path) -> dict:
    import pipeline
    return pipeline.measure_backend(size["pipeline_images"])


def child_decode(size: dict, work: Path) -> dict:
    import pipeline
    return pipeline.measure_decode(size["decode_images"])


def child_backend(size: dict, work: Path) -> dict:
    """One 1-trial plain_cnn study: images/s over the trial, and over its last epoch (compiled, warm)."""
    import keras
    import pandas as pd

    import hpstudy

    images, epochs = size["backend_images"], size["backend_epochs"]
    npz = common.write_npz(work / "backend.npz", images, max(256, images // 16), 256)
    path = common.write_study(work, {"name": f"backend_{keras.backend.backend()}",
                                     "data": {"dataset": "npz", "data_dir": str(npz)},
                                     "train": {"epochs": epochs, "batch_size": BATCH},
                                     "search": {"tuner": "random", "max_trials": 1}})
    study = hpstudy.run(path, results_dir=work / "results", overwrite=True, stream=io.StringIO())
    trial = pd.read_csv(study.path / "trials.csv").iloc[0]
    history = pd.read_csv(study.path / "trials" / "0" / "history_0.csv")
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
    """images/s of plain_cnn (the default study model) under each setting, after compiling and warming up."""
    import keras
    import keras_tuner as kt

    from hpstudy.study import spec
    from hpstudy.engine import hypermodel

    x, y = common.random_images(size["settings_images"])
    rows = []
    for config in settings_configs(size["settings_all"]):
        keras.backend.clear_session()
        study = spec.from_dict({"name": "settings", "train": {"batch_size": BATCH, **config}})
        model = hypermodel.SpecHyperModel(study, (32, 32, 3), 10).build(kt.HyperParameters())
        rate = _steady_rate(model, x, y, size["settings_s"], config.get("steps_per_execution", 1))
        rows.append({**config, "images_per_s": rate, "jit_resolved": bool(model.jit_compile)})
        common.progress(f"settings ({keras.backend.backend()}): {config or 'defaults'} {rate:,.0f} images/s")
    keras.config.set_dtype_policy("float32")
    return {"backend": keras.backend.backend(), "rows": rows}


def _steady_rate(model, x, y, seconds: float, steps: int) -> float:
    """Images/s of `model.fit` on a slice sized to take about `seconds`, after a compiling and a probing fit."""
    chunk = BATCH * max(16, steps)
    model.fit(x[:chunk], y[:chunk], batch_size=BATCH, epochs=1, verbose=0)        # compile, warm up
    start = time.perf_counter()
    model.fit(x[:chunk], y[:chunk], batch_size=BATCH, epochs=1, verbose=0)
    probe = chunk / (time.perf_counter() - start)
    count = min(len(x), max(chunk, int(probe * seconds) // chunk * chunk))
    start = time.perf_counter()
    model.fit(x[:count], y[:count], batch_size=BATCH, epochs=1, verbose=0)
    return count / (time.perf_counter() - start)


CHILDREN = {"overhead": child_overhead, "memory": child_memory, "report_folder": child_report_folder,
            "tuners": child_tuners, "pipeline": child_pipeline,
            "decode": child_decode, "backend": child_backend, "settings": child_settings}


# ---------------------------------------------------------------- the parent: sections
class Runner:
    def __init__(self, mode: str, work: Path):
        self.mode, self.size, self.work = mode, SIZES[mode], work

    def child(self, name: str, backend: str | None = "tensorflow", tag: str = "") -> dict:
        folder = self.work / f"{name}{tag}"
        folder.mkdir(parents=True, exist_ok=True)
        return common.run_child(Path(__file__), [name, self.mode, str(folder)], backend, self.work / "stderr.log")

    def overhead(self) -> dict:
        return self.child("overhead")

    def memory(self) -> dict:
        return self.child("memory")

    def startup(self, results: dict) -> dict:
        folder = results.get("memory", {}).get("results")
        if not folder or not Path(folder).exists():     # the section ran alone: make the folder now
            folder = self.child("report_folder")["results"]
        return measure_startup(folder, self.size)

    def tuners(self) -> dict:
        return self.child("tuners")

    def pipeline(self) -> dict:
        return {"backends": [self.child("pipeline", b, f"_{b}") for b in self.size["pipeline_backends"]
                             if common.version(b)],
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


def cli_command() -> list[str]:
    """The `hpstudy` console script next to this Python, else `python -m hpstudy.cli`."""
    script = Path(sys.executable).parent / "hpstudy"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hpstudy.cli"]


PROBE = ("import sys\nfrom hpstudy.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
         "sys.stderr.write('\\nPROBE ' + str({m: m in sys.modules for m in ('tensorflow', 'keras', 'jax', 'torch', "
         "'pandas', 'keras_tuner')}) + '\\n')")


def measure_startup(folder: str, size: dict) -> dict:
    """Wall times of `hpstudy --help` and `hpstudy report FOLDER`, the modules each imported, its slowest imports."""
    env = {**os.environ, **common.QUIET}
    out = {"folder_trials": sum(1 for _ in (Path(folder) / "trials").iterdir())}
    commands = (("help", ["--help"], size["help_runs"]), ("report", ["report", folder], size["report_runs"]))
    for label, args, runs in commands:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(cli_command() + args, env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        probe = subprocess.run([sys.executable, "-X", "importtime", "-c", PROBE, *args], env=env,
                               capture_output=True, text=True)
        modules = eval(probe.stderr.split("PROBE ")[-1].strip())     # noqa: S307 - our own dict literal
        out[label] = {"median_s": statistics.median(times), "min_s": min(times), "runs": runs,
                      "imported": modules, "slowest_imports": slowest_imports(probe.stderr)}
        common.progress(f"startup: {label} {statistics.median(times):.2f} s, TensorFlow imported: "
                        f"{modules['tensorflow']}")
    return out


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
def render(results: dict, info: dict, mode: str, sections: list[str]) -> str:
    lines = ["# hpstudy benchmarks", ""]
    if mode == "quick":
        lines += ["**Quick smoke run (`--quick`): tiny sizes to check that every section works. These are not "
                  "measurements; run `python benchmarks/run.py` for the numbers.**", ""]
    lines += common.machine_lines(info)
    lines += [f"- Command: `python benchmarks/run.py{' --quick' if mode == 'quick' else ''}"
              f"{' --sections ' + ' '.join(sections) if list(sections) != list(SECTIONS) else ''}`; "
              f"total {results.get('_total_s', 0) / 60:.1f} min", ""]
    for name in SECTIONS:
        if name not in results:
            continue
        lines += [f"## {name}", ""]
        result = results[name]
        if "error" in result:
            lines += ["Failed:", "", "```", result["error"][-1500:], "```", ""]
            continue
        lines += RENDER[name](result) + ["", f"_{result.get('_seconds', 0):.0f} s._", ""]
    return "\n".join(lines)


def render_overhead(r: dict) -> list[str]:
    hand = statistics.mean(h["fit_s"] for h in r["hand"])
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in r["phases"].items())
    return [f"One trial of the default plain_cnn, {r['images']:,} random CIFAR-shaped images, {r['epochs']} epochs, "
            f"batch {BATCH}, {r['val_images']:,} validation images ({r['backend']} backend, one process).", "",
            "| | seconds | / hand-written fit | target |", "|---|---:|---:|---:|",
            f"| hand-written `model.fit` (mean of before and after) | {hand:.1f} | 1.00 | |",
            f"| hpstudy trial (trials.csv `seconds`) | {r['trial_s']:.1f} | {r['trial_s'] / hand:.3f} | <= 1.05 |",
            f"| hpstudy run, whole (`runner.run`) | {r['run_s']:.1f} | {r['run_s'] / hand:.3f} | |", "",
            f"Hand-written fits: {', '.join(_fit_text(h) for h in r['hand'])}. "
            f"Inside the run: {phases}; the tuner's search is the rest."]


def _fit_text(hand: dict) -> str:
    return f"{hand['fit_s']:.1f} s (+{hand['build_s']:.1f} s build)"


def render_memory(r: dict) -> list[str]:
    import memory
    s = memory.summary(r)
    return [*memory.summary_lines(r), "", *memory.cli_lines(r["cli"]), "",
            "| trials | first MiB | last MiB | max MiB | MiB/trial | MiB/trial, 2nd half | run s |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {s['trials']} | {s['first_mib']:,.0f} | {s['last_mib']:,.0f} | {s['max_mib']:,.0f} | "
            f"{s['slope_mib_per_trial']:+.2f} | {s['slope_second_half']:+.2f} | {r['wall_s']:.0f} |", "",
            "Per-trial table: benchmarks/memory.md (written by full runs and by `python benchmarks/memory.py`)."]


def render_startup(r: dict) -> list[str]:
    rows = []
    for label, target in (("help", 0.5), ("report", 1.5)):
        m = r[label]
        command = "hpstudy --help" if label == "help" else f"hpstudy report (a {r['folder_trials']}-trial folder)"
        slow = ", ".join(f"{name} {s:.2f}" for name, s in m["slowest_imports"])
        rows.append(f"| `{command}` | {m['median_s']:.2f} | {m['min_s']:.2f} | {m['runs']} | < {target} | "
                    f"{'yes' if m['imported']['tensorflow'] else 'no'} | "
                    f"{'yes' if m['imported']['keras'] else 'no'} | {slow} |")
    return ["| command | median s | min s | runs | target s | TensorFlow imported | Keras imported | "
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


def tuner_summary(runs: list[dict], target: float, grid_epochs: int) -> dict:
    """Over one tuner's runs (one per seed): how many reached the target, epochs, seconds and trials to it, the
    epochs as a share of the full grid's, and the pruned trials per run."""
    reached = [r for r in (tuner_reach(run["rows"], target) for run in runs) if r]
    return {"runs": len(runs), "reached": len(reached), "epochs": [r["epochs"] for r in reached],
            "share": [r["epochs"] / grid_epochs for r in reached], "seconds": [r["seconds"] for r in reached],
            "trials": [r["trials"] for r in reached],
            "pruned": [sum(row.get("status") == "PRUNED" for row in run["rows"]) for run in runs],
            "spent": [sum(row["epochs"] for row in run["rows"]) for run in runs]}


def render_tuners(r: dict) -> list[str]:
    grid = r["grid"]["rows"]
    grid_epochs = sum(row["epochs"] for row in grid)
    best = r["target"] + 0.005
    reach = tuner_reach(grid, r["target"])
    seeds = max(len(runs) for runs in r["runs"].values())
    lines = [f"Measured {r['date'][:10]} (`--sections tuners`). Digits, {r['configs']} configurations "
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
             "| tuner | reached | epochs to target, mean ± sd (min-max) | of the grid's epochs | trials to target | "
             "seconds to target | pruned trials per run | epochs per run | per run: trials (distinct configurations; "
             "pruned that would have reached) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| grid | {'1/1' if reach else '0/1'} | {reach['epochs'] if reach else '-'} | "
             f"{reach['epochs'] / grid_epochs:.0%} | {reach['trials'] if reach else '-'} | "
             f"{reach['seconds']:.0f} | 0 | {grid_epochs} | {len(grid)} ({len(grid)}; 0) |"]
    for label, runs in r["runs"].items():
        s = tuner_summary(runs, r["target"], grid_epochs)
        share = _spread([100 * x for x in s["share"]]) + " %" if s["share"] else "-"
        facts = [run.get("facts") or run_facts(run.get("path", ""), r["grid"].get("path", ""), r["target"]) or {}
                 for run in runs]
        tried = ", ".join(f"{len(run['rows'])} ({f.get('distinct', '?')}; {f.get('pruned_winners', '?')})"
                          for run, f in zip(runs, facts))
        lines.append(f"| {label} | {s['reached']}/{s['runs']} | {_spread(s['epochs'])} | {share} | "
                     f"{_spread(s['trials'], 1)} | {_spread(s['seconds'])} | {_spread(s['pruned'], 1)} | "
                     f"{_spread(s['spent'])} | {tried} |")
    lines += ["", f"The full grid: {grid_epochs} epochs, {sum(row['seconds'] for row in grid):.0f} s of training "
                  f"({r['grid']['wall_s']:.0f} s wall). Means and spreads are over the runs that reached the target; "
                  "epochs per run counts every run, reached or not. Epoch counts do not depend on the machine's "
                  "load; seconds do (the CPU was shared with other work).", "",
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
    text = pipeline.render(r["backends"], r["decode"], r["images"]) if r["backends"] else "no backend\n"
    return text.split("\n", 2)[2].rstrip().splitlines()        # without its title line


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
    lines = ["images/s of the default plain_cnn (batch 64, random CIFAR-shaped images) after a compiling epoch, "
             "one `train:` setting changed at a time from the defaults (float32, jit_compile auto, "
             "steps_per_execution 1).", "",
             "| backend | setting | images/s | vs defaults | XLA/jit on |", "|---|---|---:|---:|---|"]
    for part in r["backends"]:
        base = part["rows"][0]["images_per_s"]
        for row in part["rows"]:
            setting = ", ".join(f"{k}: {v}" for k, v in row.items() if k not in ("images_per_s", "jit_resolved"))
            lines.append(f"| {part['backend']} | {setting or 'defaults'} | {row['images_per_s']:,.0f} | "
                         f"{row['images_per_s'] / base:.2f}x | {'yes' if row['jit_resolved'] else 'no'} |")
    return lines


RENDER = {"overhead": render_overhead, "memory": render_memory, "startup": render_startup, "tuners": render_tuners,
          "pipeline": render_pipeline, "backends": render_backends, "settings": render_settings}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        name, mode, folder = sys.argv[2:5]
        common.emit(CHILDREN[name](SIZES[mode], Path(folder)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of every section (~3 min)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), metavar="SECTION",
                        help=f"run only these ({', '.join(SECTIONS)})")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--keep", metavar="DIR", help="keep the studies and logs in DIR (default: a temporary folder)")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    sections = [s for s in SECTIONS if s in args.sections]
    work = Path(args.keep or tempfile.mkdtemp(prefix="hpstudy-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    runner, info, results = Runner(mode, work), common.machine(), {}
    started = time.perf_counter()
    print(f"hpstudy benchmarks ({mode}): {', '.join(sections)}; work folder {work}", flush=True)
    for name in sections:
        print(f"[{name}] ...", flush=True)
        start = time.perf_counter()
        try:
            results[name] = getattr(runner, name)(results) if name == "startup" else getattr(runner, name)()
        except Exception as err:  # noqa: BLE001 - one failed section must not lose the others
            results[name] = {"error": f"{type(err).__name__}: {err}"}
        results[name]["_seconds"] = time.perf_counter() - start
        results["_total_s"] = time.perf_counter() - started
        state = "FAILED" if "error" in results[name] else "done"
        print(f"[{name}] {state} in {results[name]['_seconds']:.0f} s (total {results['_total_s'] / 60:.1f} min)",
              flush=True)
        Path(args.output).write_text(render(results, info, mode, sections))     # after each: a crash keeps them
    if mode == "full" and "error" not in results.get("memory", {"error": ""}):
        import memory
        (HERE / "memory.md").write_text(memory.render(results["memory"], info))
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(Path(args.output).read_text())
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    failed = [name for name in sections if "error" in results[name]]
    if failed:
        print(f"failed sections: {', '.join(failed)} (see {args.output})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
