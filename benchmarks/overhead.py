"""The overhead section of benchmarks/run.py: an hpstudy trial against a hand-written `model.fit`, timed alike.

Both sides are whole processes started the same way (`python benchmarks/run.py --child ...`), alternating
(hand-written, hpstudy, hand-written, hpstudy, ...) so that other work on a shared CPU weighs on both alike:

- hand-written: the study's data loaded and its model built with hpstudy's own functions (so the arrays and
  the model are the same), then `model.fit` with the validation data, `model.evaluate` on the test split and
  `model.save`: what a minimal training script does;
- hpstudy: `hpstudy run` of a 1-trial random search of that model and data (`hpstudy.cli.main`, with the
  process's objects frozen as the command freezes them).

The fit is timed the same way on both sides: `keras.Model.fit` is wrapped in each process, so both figures are
the whole `fit` call (hpstudy's callbacks and keras-tuner's checkpoints included). The trial's own `seconds`
(trials.csv: on_train_begin to on_train_end) is shown beside it. The cost of a trial outside its fit is the
time from the tuner's `on_trial_begin` to the end of its `on_trial_end` minus the fit call: building and
compiling the model, the trial's records, keras-tuner's files, the trials table.
"""
from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from hpstudy.text import read_csv  # noqa: E402  (hpstudy's CSVs: each text cell as it was written)

BATCH = 64          # the study default


def setup(size: dict, work: Path) -> dict:
    """Child: the npz and study file, sized so that one hand-written fit takes about `overhead_fit_s`."""
    import keras_tuner as kt

    from hpstudy.engine.search import hypermodel
    from hpstudy.study import spec

    epochs = size["overhead_epochs"]
    x, y = common.random_images(1024)
    study = spec.from_dict({"name": "calibrate"})
    model = hypermodel.SpecHyperModel(study, (32, 32, 3), 10).build(kt.HyperParameters())
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    rate = len(x) / (time.perf_counter() - start)
    train = max(1024, int(size["overhead_fit_s"] * rate / epochs) // BATCH * BATCH)
    npz = common.write_npz(work / "overhead.npz", train, max(256, train // 10), 512)
    common.write_study(work, {"name": "overhead", "data": {"dataset": "npz", "data_dir": str(npz)},
                              "train": {"epochs": epochs, "batch_size": BATCH},
                              "search": {"tuner": "random", "max_trials": 1}})
    common.progress(f"overhead: {train:,} images x {epochs} epochs (calibrated at {rate:,.0f} images/s)")
    return {"images": train, "val_images": max(256, train // 10), "epochs": epochs, "rate": rate}


def _timed(owner, name: str, spans: list) -> None:
    """Wrap `owner.name` so that each call's wall time is appended to `spans`."""
    function = getattr(owner, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spans.append(time.perf_counter() - start)
    setattr(owner, name, timed)


def _timed_builds_and_fits() -> tuple[list, list]:
    import keras

    from hpstudy.engine.search import hypermodel
    fits, builds = [], []
    _timed(keras.Model, "fit", fits)
    _timed(hypermodel.SpecHyperModel, "build", builds)
    return fits, builds


def hand(size: dict, work: Path) -> dict:
    """Child: one hand-written training process."""
    fits, builds = _timed_builds_and_fits()
    import keras
    import keras_tuner as kt

    from hpstudy.engine.search import hypermodel
    from hpstudy.study import spec

    study = spec.load(work / "overhead.yaml")
    dataset = hypermodel.load_data(study)
    model = hypermodel.make_hypermodel(study, dataset).build(kt.HyperParameters())
    model.fit(dataset.train.x, dataset.train.y, batch_size=BATCH, epochs=size["overhead_epochs"], shuffle=True,
              verbose=0, validation_data=(dataset.validation.x, dataset.validation.y))
    start = time.perf_counter()
    model.evaluate(dataset.test.x, dataset.test.y, verbose=0)
    model.save(work / "hand.keras")
    return {"fit_s": sum(fits), "fits": len(fits), "build_s": sum(builds), "save_s": time.perf_counter() - start,
            "backend": keras.backend.backend()}


def trial(size: dict, work: Path) -> dict:
    """Child: one `hpstudy run` process of the 1-trial study, with the time of its trial and of its phases."""
    fits, builds = _timed_builds_and_fits()

    from hpstudy import cli
    from hpstudy.engine.search import checks, runner
    from hpstudy.engine.search.tuner import StudyTuner

    phases = {name: [] for name in ("load_data", "build_each", "_make_tuner", "_save_best")}
    for name in phases:
        _timed(checks if name == "build_each" else runner, name, phases[name])
    begun, spans, trial_builds = [], [], []       # trial_builds: inside the trial (not _save_best's rebuild)
    begin, end = StudyTuner.on_trial_begin, StudyTuner.on_trial_end

    def on_trial_begin(self, one):
        begun.append((time.perf_counter(), len(builds)))
        begin(self, one)

    def on_trial_end(self, one):
        end(self, one)
        start, builds_before = begun[-1]
        spans.append(time.perf_counter() - start)
        trial_builds.extend(builds[builds_before:])
    StudyTuner.on_trial_begin, StudyTuner.on_trial_end = on_trial_begin, on_trial_end
    # The objects this process holds are frozen, as `hpstudy run`'s own process freezes them once Keras is in
    # (hpstudy.lazy.freeze_after_keras): Keras is already imported here, by the timing above.
    gc.freeze()
    code = cli.main(["run", str(work / "overhead.yaml"), "--results-dir", str(work / "results"), "--overwrite"])
    if code != 0:
        raise SystemExit(f"hpstudy run exited {code}")
    table = read_csv(work / "results" / "overhead" / "trials.csv")
    return {"fit_s": sum(fits), "fits": len(fits), "build_s": sum(trial_builds), "trial_span_s": sum(spans),
            "trial_seconds": float(table.seconds.iloc[0]), "status": str(table.status.iloc[0]),
            "phases": {name: sum(times) for name, times in phases.items()}}


def measure(child, size: dict) -> dict:
    """Parent (`child(name)` runs one child in the section's folder): the setup, then `overhead_repeats` rounds of
    a hand-written process and an hpstudy process."""
    setup_result = child("overhead_setup")
    rounds = []
    for index in range(size["overhead_repeats"]):
        pair = {}
        for side in ("hand", "trial"):
            start = time.perf_counter()
            pair[side] = child(f"overhead_{side}")
            pair[side]["process_s"] = time.perf_counter() - start
        rounds.append(pair)
        common.progress(f"overhead: round {index + 1}: hand-written fit {pair['hand']['fit_s']:.1f} s "
                        f"(process {pair['hand']['process_s']:.1f} s), hpstudy fit {pair['trial']['fit_s']:.1f} s "
                        f"(process {pair['trial']['process_s']:.1f} s)")
    return {**setup_result, "rounds": rounds}


def spread(values: list[float], digits: int = 1) -> str:
    """'median (min–max)' of `values`, or the one value."""
    if len(values) == 1:
        return f"{values[0]:,.{digits}f}"
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def render(r: dict) -> list[str]:
    rounds = r["rounds"]
    hand, hpstudy = [p["hand"] for p in rounds], [p["trial"] for p in rounds]

    def row(label: str, key: str, target: str = "") -> str:
        a, b = [h[key] for h in hand], [t[key] for t in hpstudy]
        ratios = [t / h for h, t in zip(a, b)]
        return (f"| {label} | {spread(a)} | {spread(b)} | {statistics.median(b) / statistics.median(a):.3f} | "
                f"{spread(ratios, 3)} | {target} |")
    outside = [t["trial_span_s"] - t["fit_s"] for t in hpstudy]
    phases = ", ".join(f"{name} {spread([t['phases'][name] for t in hpstudy])} s" for name in hpstudy[0]["phases"])
    return [
        f"The default plain_cnn on {r['images']:,} random CIFAR-shaped images, {r['epochs']} epochs, batch {BATCH}, "
        f"{r['val_images']:,} validation images ({hand[0]['backend']} backend). {len(rounds)} "
        f"round{'s' if len(rounds) > 1 else ''}, each a "
        "hand-written process then an hpstudy process (whole processes started the same way, alternating); "
        "seconds as median (min–max) over the rounds.", "",
        "| | hand-written | hpstudy | ratio of medians | ratio per round | target |",
        "|---|---:|---:|---:|---:|---|",
        row("the `model.fit` call (the same wrapper on both sides)", "fit_s", "<= 1.05"),
        row("the whole process", "process_s"), "",
        f"The trial's own `seconds` (trials.csv, on_train_begin to on_train_end): "
        f"{spread([t['trial_seconds'] for t in hpstudy])} s. Per trial outside its fit call (on_trial_begin to the "
        f"end of on_trial_end, minus the fit): {spread(outside, 2)} s, of which building and compiling the model "
        f"{spread([t['build_s'] for t in hpstudy], 2)} s. Inside the hpstudy process: {phases}. The hand-written "
        f"process: building {spread([h['build_s'] for h in hand], 2)} s, evaluating and saving "
        f"{spread([h['save_s'] for h in hand], 2)} s."]
