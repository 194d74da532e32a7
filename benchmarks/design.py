"""How many trials `search.tuner: design` saves against random search for the same answers, written to
benchmarks/design.md.

    python benchmarks/design.py [--studies 100] [--cap 64] [--jobs 1]     # the synthetic arms (no Keras training)
    python benchmarks/design.py --real [--seeds 0 1 2]                     # the quickstart on digits, both tuners

Synthetic: keras-tuner's own oracles are driven directly (`create_trial`, `update_trial`, `end_trial`), with a
synthetic objective whose truth is known, and the question's verdicts are computed as the report computes them
(`hpstudy.analysis.effects.effects`) after every round of 4 trials. Three arms per simulated study: random search
(`RandomSearchOracle`), the balanced design run to the cap (`DesignOracle`), and the design stopped by its own
`until` rule as soon as every question verdict is decisive. Each run rewrites its own section of the file (the
synthetic or the real one) and keeps the other.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import common  # noqa: E402

OBJECTIVE, CLASSES, NOISE, BASE, ROUND = "val_accuracy", 10, 0.01, 0.80, 4
QUESTION = ("model.head", "model.conv_layers")
SHIFT = {"model.head": {"gap": 0.0, "dense": 2.5 * NOISE}}      # the truth: dense +2.5 noise sd, the rest null
RIGHT = {"model.head": "effect", "model.conv_layers": "negligible"}
RANGES = {"model.dropout": "linear", "train.learning_rate": "log"}
SCENARIOS = {"10% diverged": 0.10, "none diverged": 0.0}      # the share of runs that end at chance
ARMS = ("random", "design, fixed", "design, until answered")
RANDOM_UNTIL = "random, stopped by the same rule"     # random search's rows read with the until arm's rule
SECTIONS = {"synthetic": "## Synthetic studies", "real": "## Real studies: the quickstart on digits"}


def space():
    """The searched space: the question (head, conv layers) and four nuisance hyperparameters."""
    import keras_tuner as kt

    hps = kt.HyperParameters()
    hps.Choice("model.head", ["gap", "dense"])
    hps.Choice("model.conv_layers", [1, 2])
    hps.Choice("model.kernel_size", [3, 5])
    hps.Float("model.dropout", 0.0, 0.5)
    hps.Choice("train.batch_size", [32, 64, 128])
    hps.Float("train.learning_rate", 1e-4, 1e-2, sampling="log")
    return hps


def outcome(values: dict, diverge: float, rng: np.random.Generator) -> dict:
    """One run's metrics as the trials table holds them: the true score plus noise, or chance when it diverged."""
    if rng.random() < diverge:
        accuracy = 1 / CLASSES + rng.normal(0.0, 0.003)
        return {"score": accuracy, OBJECTIVE: accuracy, "val_loss": float(np.log(CLASSES)), "best_epoch": 1}
    mean = BASE + sum(shift.get(values[name], 0.0) for name, shift in SHIFT.items())
    accuracy = mean + rng.normal(0.0, NOISE)
    return {"score": accuracy, OBJECTIVE: accuracy, "val_loss": 0.6 - (accuracy - BASE) * 3, "best_epoch": 8}


def table(rows: list[dict]) -> pd.DataFrame:
    """The trials table effects() reads (results.read_trials's columns that it uses)."""
    return pd.DataFrame([{"trial_id": f"{i:03d}", "status": "COMPLETED", **row} for i, row in enumerate(rows)])


_JUDGED: dict = {}      # rows already judged (the until arm asks of the fixed arm's prefixes again)


def judge(rows: list[dict], looks: int = 1) -> dict:
    """The question's verdicts over `rows`: whether every one is decisive, every decisive one right (head an
    effect with dense above gap, conv layers negligible), and any decisive one wrong (see design.md); `held`:
    whether every one is decisive at the level each of `looks` looks is held to (analysis.looks)."""
    key = (looks, tuple(tuple(sorted(row.items())) for row in rows))
    if key not in _JUDGED:
        if len(_JUDGED) > 10_000:
            _JUDGED.clear()
        _JUDGED[key] = _judge(rows, looks)
    return _JUDGED[key]


def _judge(rows: list[dict], looks: int) -> dict:
    from hpstudy.analysis.effects import effects
    from hpstudy.analysis.looks import verdict_at

    names = list(space().values)
    found = effects(table(rows), names, OBJECTIVE, ranges=RANGES, question=QUESTION, with_importance=False,
                    classes=CLASSES, smallest_effect=NOISE)
    verdicts, held, why = {}, {}, []
    for effect in found.effects:
        if effect.name not in QUESTION:
            continue
        verdicts[effect.name] = effect.verdict
        held[effect.name] = verdict_at(effect, found.smallest_effect, looks)
        short = effect.name.split(".")[-1]
        for c in effect.outcomes:
            shift = SHIFT.get(effect.name, {})
            true = shift.get(c.value, 0.0) - shift.get(c.reference, 0.0) if c.outcome == "score" else 0.0
            if c.verdict == "effect" and (not true or np.sign(c.difference) != np.sign(true)):
                why.append(f"{short}: {'score' if c.outcome == 'score' else 'training'} effect"
                           f"{' of the wrong sign' if true else ''}")
        if effect.verdict == "negligible" and SHIFT.get(effect.name):
            why.append(f"{short}: negligible")
    decisive = all(v in ("effect", "negligible") for v in verdicts.values()) and len(verdicts) == len(QUESTION)
    right = decisive and not why and all(verdicts[name] == word for name, word in RIGHT.items())
    return {"decisive": decisive, "right": right, "wrong": bool(why), "why": "; ".join(sorted(set(why))),
            "verdicts": verdicts, "held": decisive and all(v in ("effect", "negligible") for v in held.values())}


class _Until:
    """The design's stopping rule (engine.search.answered.Answered's contract) over the rows run so far."""

    def __init__(self, rows: list[dict]):
        self.rows, self.looks = rows, 1          # looks: set by the oracle, as for Answered

    def check(self) -> str | None:
        return "answered" if judge(self.rows, self.looks)["held"] else None


def drive(oracle, diverge: float, rng: np.random.Generator, cap: int) -> list[dict]:
    """Run `oracle` to its end (or `cap` trials) with the synthetic objective: the trials' values and metrics."""
    rows = []
    until = getattr(oracle, "until", None)
    if until is not None:
        until.rows = rows
    while len(rows) < cap:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        values = dict(trial.hyperparameters.values)
        metrics = outcome(values, diverge, rng)
        oracle.update_trial(trial.trial_id, {OBJECTIVE: metrics[OBJECTIVE]})
        oracle.end_trial(trial)
        rows.append({**values, **metrics})
    return rows


def _oracle(arm: str, seed: int, cap: int, folder: str):
    import keras_tuner as kt

    from hpstudy.engine.search.design import DesignOracle

    objective = kt.Objective(OBJECTIVE, "max")
    if arm == "random":
        oracle = kt.oracles.RandomSearchOracle(objective=objective, max_trials=cap, seed=seed)
    else:
        oracle = DesignOracle(objective=objective, max_trials=cap, seed=seed, question=QUESTION,
                              until=_Until([]) if arm.endswith("answered") else None)
    oracle._set_project_dir(folder, arm.replace(" ", "_").replace(",", ""))
    oracle.verbose = 0              # keras-tuner's per-trial display: nothing to show here
    oracle.update_space(space())
    return oracle


def arm_result(arm: str, rows: list[dict], cap: int) -> dict:
    """One arm of one study: the first round at which every question verdict was decisive (None: not within
    the rows), the verdicts' judgement there, and at the last row."""
    looks = -(-cap // ROUND)
    if arm == RANDOM_UNTIL:            # the first round decisive at each look's level, as the until arm stops
        stop = next((n for n in range(ROUND, len(rows) + 1, ROUND) if judge(rows[:n], looks)["held"]), None)
    else:
        stop = next((n for n in range(ROUND, len(rows) + 1, ROUND) if judge(rows[:n])["decisive"]), None)
    at_stop = judge(rows[:stop]) if stop else None
    last = judge(rows)
    if arm.endswith("answered"):       # stopped by the oracle itself, at a look's level: where it stopped
        stop = len(rows) if judge(rows, looks)["held"] else None
        at_stop = last if stop else None
    return {"arm": arm, "trials": len(rows), "stop": stop, "right_at_stop": bool(at_stop and at_stop["right"]),
            "wrong_at_stop": bool(at_stop and at_stop["wrong"]), "why_at_stop": at_stop["why"] if at_stop else "",
            "right_at_end": last["right"],
            "wrong_at_end": last["wrong"], **{f"end {k}": v for k, v in last["verdicts"].items()}}


def _light() -> None:
    """Import keras-tuner and freeze the objects it made, once per process: Python's automatic collections
    then skip TensorFlow's heap, which the thousands of analyses below would otherwise walk again and again."""
    import gc

    import keras_tuner  # noqa: F401

    import hpstudy.analysis.effects  # noqa: F401
    import hpstudy.engine.search.design  # noqa: F401

    gc.collect()
    gc.freeze()


def one_study(args) -> list[dict]:
    """Every arm of simulated study `index` of a scenario: one row per arm."""
    scenario, index, seed, cap = args
    _light()
    diverge, number = SCENARIOS[scenario], list(SCENARIOS).index(scenario)
    out = []
    with tempfile.TemporaryDirectory() as folder:
        for arm in ARMS:
            started = time.perf_counter()
            # The two design arms see the same noise: until-answered is the fixed arm stopped by the oracle.
            rng = np.random.default_rng([seed, number, index, 0 if arm == "random" else 1])
            rows = drive(_oracle(arm, seed * 100_000 + index, cap, folder), diverge, rng, cap)
            out.append({"scenario": scenario, "study": index, **arm_result(arm, rows, cap),
                        "seconds": time.perf_counter() - started})
            if arm == "random":
                out.append({"scenario": scenario, "study": index, **arm_result(RANDOM_UNTIL, rows, cap),
                            "seconds": 0.0})
    return out


def synthetic(studies: int, cap: int, seed: int = 0, jobs: int = 1) -> pd.DataFrame:
    """Every scenario's studies, one row per study and arm."""
    tasks = [(scenario, i, seed, cap) for scenario in SCENARIOS for i in range(studies)]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one_study, tasks, chunksize=4))
    else:
        results = [one_study(task) for task in tasks]
    return pd.DataFrame([row for rows in results for row in rows])


def _share(flags: pd.Series) -> str:
    return f"{100 * flags.mean():.0f}%" if len(flags) else "-"


def _quartiles(values: pd.Series, cap: int) -> str:
    """Median (IQR) of the trials until decisive, a study not decisive within the cap counted above it."""
    filled = values.astype(float).fillna(np.inf)
    q = np.quantile(filled, [0.25, 0.5, 0.75], method="lower")
    show = [f"{v:.0f}" if np.isfinite(v) else f">{cap}" for v in q]
    return f"{show[1]} ({show[0]}–{show[2]})"


def _reasons(why: pd.Series) -> str:
    """The wrong verdicts' kinds and how many studies had each (a study may have several)."""
    counts = why.str.split("; ").explode().value_counts()
    return ", ".join(f"{kind} {n}" for kind, n in counts.items() if kind) or "-"


SYNTHETIC_COLUMNS = ["scenario", "arm", "studies", "trials until decisive, median (IQR)", "not within cap",
                     "right at that point", "wrong at that point", "right at the cap", "wrong at the cap",
                     "conv_layers at the cap", "what was wrong at that point (studies)"]


def summary(results: pd.DataFrame, cap: int) -> pd.DataFrame:
    """Per scenario and arm, the shares design.md shows (SYNTHETIC_COLUMNS)."""
    rows = []
    for (scenario, arm), group in results.groupby(["scenario", "arm"], sort=False):
        until = arm.endswith("answered") or arm == RANDOM_UNTIL
        words = group["end model.conv_layers"].value_counts(normalize=True) if not until else None
        rows.append([scenario, arm, len(group), _quartiles(group["stop"], cap), _share(group["stop"].isna()),
                     _share(group["right_at_stop"]), _share(group["wrong_at_stop"]),
                     "-" if until else _share(group["right_at_end"]), "-" if until else _share(group["wrong_at_end"]),
                     "-" if until else ", ".join(f"{w} {100 * s:.0f}%" for w, s in words.items()),
                     _reasons(group.loc[group["wrong_at_stop"], "why_at_stop"])])
    return pd.DataFrame(rows, columns=SYNTHETIC_COLUMNS)


def saved(results: pd.DataFrame, scenario: str, cap: int, random: str = RANDOM_UNTIL,
          design: str = "design, until answered") -> str:
    """Random's trials until decisive minus the design's, per study (arms `random` and `design`, read with the
    same rule): median (IQR), over the studies where both were decisive within the cap, and how many those are."""
    group = results[results["scenario"] == scenario]
    stops = group.pivot(index="study", columns="arm", values="stop").astype(float)
    both = stops.dropna(subset=[random, design])
    if both.empty:
        return f"no study of `{scenario}` had both `{random}` and `{design}` decisive within {cap} trials"
    diff = both[random] - both[design]
    q = np.quantile(diff, [0.25, 0.5, 0.75])
    return (f"`{scenario}`, {design} against {random}: random search needed {q[1]:+.0f} trials more "
            f"(median of the per-study differences; IQR {q[0]:+.0f} to {q[2]:+.0f}), over the {len(both)} of "
            f"{stops.shape[0]} studies where both were decisive within {cap} trials")


def real(seeds: list[int], max_trials: int, random_trials: int, epochs: int | None, folder: Path, *,
         confirm: bool = False) -> pd.DataFrame:
    """The quickstart (studies/quickstart.yaml, its confirm step left out unless `confirm`) on digits per seed
    and tuner, the two
    alternating: random search run to `random_trials` (the quickstart before the design), the design until
    answered capped at `max_trials`; per study the first round of 4 trials at which every question verdict was
    decisive, its trials' seconds, the run's wall time and the final verdicts."""
    import yaml

    import hpstudy
    from hpstudy.study import spec as spec_module

    base = yaml.safe_load((HERE.parent / "studies" / "quickstart.yaml").read_text())
    rows = []
    for seed in seeds:
        for tuner in ("random", "design"):
            study = {**base, "name": f"design_bench_{tuner}_{seed}", "search": {
                **{k: v for k, v in base["search"].items() if k != "until" and (confirm or k != "confirm")},
                "tuner": tuner,
                "seed": seed, "max_trials": max_trials if tuner == "design" else random_trials,
                **({"until": "answered"} if tuner == "design" else {})}}
            if epochs:
                study["train"] = {**study["train"], "epochs": epochs}
            parsed = spec_module.from_dict(study)
            started = time.perf_counter()
            done = hpstudy.run(parsed, results_dir=folder, overwrite=True)
            wall = time.perf_counter() - started
            rows.append({"tuner": tuner, "seed": seed, "wall_s": wall, **real_stop(parsed, done.trials)})
    return pd.DataFrame(rows)


def real_stop(study, trials: pd.DataFrame) -> dict:
    """The first prefix (every 4 trials, in trial order) of a real study's trials at which every question
    verdict was decisive, the trials' own seconds up to it, and the verdicts over all its trials."""
    from hpstudy.analysis.effects import of_study

    trials = trials.sort_values("trial_id", key=lambda s: s.astype(int)).reset_index(drop=True)

    def verdicts(prefix):
        found = of_study(study, prefix, with_importance=False)
        return {e.name: e.verdict for e in found.effects if e.name in study.question}

    stop = next((n for n in range(ROUND, len(trials) + 1, ROUND)
                 if all(v in ("effect", "negligible") for v in verdicts(trials.iloc[:n]).values())), None)
    seconds = pd.to_numeric(trials.get("seconds"), errors="coerce")
    return {"trials": len(trials), "stop": stop,
            "seconds_to_stop": float(seconds.iloc[:stop].sum()) if stop else None,
            "seconds_all": float(seconds.sum()), "verdicts": verdicts(trials)}


def real_lines(results: pd.DataFrame) -> list[str]:
    """The real arm's table: one row per study."""
    lines = ["| tuner | seed | trials run | trials until decisive | their seconds | all trials' seconds | "
             "wall s | final verdicts |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results.to_dict("records"):
        stop = "not within the run" if r["stop"] is None or pd.isna(r["stop"]) else f"{r['stop']:.0f}"
        spent = r["seconds_to_stop"]
        until_s = "-" if spent is None or pd.isna(spent) else f"{spent:.0f}"
        words = ", ".join(f"{k}: {v}" for k, v in r["verdicts"].items())
        lines.append(f"| {r['tuner']} | {r['seed']} | {r['trials']} | {stop} | {until_s} | {r['seconds_all']:.0f} | "
                     f"{r['wall_s']:.0f} | {words} |")
    return lines


HEADER = """# Trials the balanced design saves (search.tuner: design)

Written by `python benchmarks/design.py` (see its docstring). Each section was measured by the command it names,
on the machine it names; the other section is kept from its own run.
"""

SYNTHETIC_NOTE = """Simulated studies, no Keras training: keras-tuner's `RandomSearchOracle` and hpstudy's
`DesignOracle` are driven directly (`create_trial`, `update_trial`, `end_trial`) over one space: question `model.head`
(gap/dense) and `model.conv_layers` (1/2); nuisance `model.kernel_size` (3/5), `model.dropout` (0-0.5),
`train.batch_size` (32/64/128), `train.learning_rate` (1e-4-1e-2, log). Truth: val_accuracy = 0.80, +0.025
(2.5 noise sd) with a dense head, + noise sd 0.01; conv layers and every nuisance hyperparameter do nothing. A
diverged run scores chance (0.1, 10 classes), so the analysis marks it not trained. Verdicts are
`hpstudy.analysis.effects.effects()` with `classes=10` and `smallest_effect=0.01` (1 noise sd: without a smallest
effect, or a noise floor from seed repeats, no verdict can be `negligible`), after every round of 4 trials (one
trial per question cell). Arms: **random** (max_trials = the cap), **random, stopped by the same rule** (random
search's trials read with the until arm's stopping rule), **design, fixed** (max_trials = the cap), and **design,
until answered** (the oracle's own `until` rule, asked before each round, stops it once both verdicts
are decisive at the level each look is held to, Pocock's for the cap's 16 looks (99.2%, analysis.looks); the two
design arms see the same trials and noise, so it stops at or after the round where the fixed arm first was
decisive at 95%). Columns: **trials until decisive**, the first round at which both question verdicts were
`effect` or `negligible` (for the until arm: where it stopped), median (IQR) over the studies, `>cap` where not
within the cap; **not within cap**, the share of
studies never decisive; **right at that point**, the share of studies whose verdicts there were head `effect`
with dense above gap and conv layers `negligible`; **wrong at that point**, the share with a decisive verdict
against the truth (head `negligible` or an effect of the wrong sign, conv layers an `effect`, or an effect on the
share of runs that did not train, which is null here); the same **at the cap** (all the trials of the fixed
arms); **conv_layers at the cap**, its verdict's distribution then; **what was wrong**, per kind of wrong
verdict at the first decisive round, how many studies had it (`training effect`: a difference in the share of
runs that did not train, which is null here)."""


def synthetic_section(results: pd.DataFrame, *, studies: int, cap: int, seed: int, jobs: int, seconds: float,
                      command: str) -> str:
    """design.md's synthetic section: what was run, on what, the table and the per-study savings."""
    shown = summary(results, cap)
    lines = [SECTIONS["synthetic"], "", f"- Command: `{command}`",
             f"- Seed {seed}; {studies} simulated studies per scenario and arm; cap {cap} trials; {jobs} "
             f"process(es); run time {seconds:.0f} s", *common.machine_lines(common.machine()), "",
             SYNTHETIC_NOTE, "", "| " + " | ".join(SYNTHETIC_COLUMNS) + " |",
             "|" + "---|" * len(SYNTHETIC_COLUMNS)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    lines += ["", "Trials saved, per study: " + "; ".join(
        saved(results, s, cap, *arms) for s in SCENARIOS
        for arms in [(RANDOM_UNTIL, "design, until answered"), ("random", "design, fixed")]) + ".", ""]
    return "\n".join(lines)


def real_section(results: pd.DataFrame, *, seeds, max_trials: int, random_trials: int, epochs, seconds: float,
                 command: str, confirm: bool = False) -> str:
    """design.md's real section."""
    lines = [SECTIONS["real"], "", f"- Command: `{command}`",
             f"- studies/quickstart.yaml {'with' if confirm else 'without'} its confirm step; seeds "
             f"{', '.join(map(str, seeds))}, each run with random search over the same space ({random_trials} "
             "trials, the quickstart's count before the design) then the "
             f"design until answered (capped at {max_trials}); epochs {epochs or 'as in the file (8)'}; run "
             f"time {seconds:.0f} s", *common.machine_lines(common.machine()), "",
             "Random search runs every trial; the design runs with `search.until: answered` (verdicts as the "
             "report computes them, with the quickstart's `smallest_effect: 0.02`, each look held to Pocock's "
             "level for the looks its cap allows). "
             "**trials until decisive**: the first 4-trial prefix whose question verdicts were all decisive at "
             "95%, as the report reads them; **their seconds**: those trials' own `seconds`; **wall s**: the "
             "whole `hpstudy.run`, loading and the design's checks between rounds included"
             f"{', and the confirm step' if confirm else ''}.", "", *real_lines(results), ""]
    return "\n".join(lines)


def write(path: Path, key: str, text: str) -> None:
    """design.md with section `key` replaced by `text` (the header and the other section kept)."""
    old = path.read_text() if path.exists() else ""
    parts = {}
    for k, heading in SECTIONS.items():
        if heading in old:
            rest = old.split(heading, 1)[1]
            ends = [rest.find(h) for h in SECTIONS.values() if h != heading and rest.find(h) >= 0]
            parts[k] = heading + (rest[:min(ends)] if ends else rest)
    parts[key] = text
    path.write_text("\n".join([HEADER, *(parts[k].rstrip() + "\n" for k in SECTIONS if k in parts)]))


def main(argv=None) -> int:
    """Run the synthetic arms (or, with --real, the real studies) and write their section of design.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=100, help="simulated studies per scenario (100)")
    parser.add_argument("--cap", type=int, default=64, help="the most trials a study may run (64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="processes for the synthetic studies (1)")
    parser.add_argument("--real", action="store_true", help="run the real digits studies instead (slow)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="--real: study seeds (0 1 2)")
    parser.add_argument("--max-trials", type=int, default=24, help="--real: the design's cap (24, the quickstart's)")
    parser.add_argument("--random-trials", type=int, default=16,
                        help="--real: random search's trials (16, the quickstart's before the design)")
    parser.add_argument("--epochs", type=int, help="--real: override the quickstart's epochs")
    parser.add_argument("--with-confirm", action="store_true",
                        help="--real: keep the quickstart's confirm step in both arms (the whole run users time)")
    parser.add_argument("--output", type=Path, default=HERE / "design.md")
    args = parser.parse_args(argv)
    command = "python benchmarks/design.py " + " ".join(argv if argv is not None else sys.argv[1:])
    start = time.perf_counter()
    if args.real:
        with tempfile.TemporaryDirectory() as folder:
            results = real(args.seeds, args.max_trials, args.random_trials, args.epochs, Path(folder),
                           confirm=args.with_confirm)
        text = real_section(results, seeds=args.seeds, max_trials=args.max_trials, random_trials=args.random_trials,
                            epochs=args.epochs, confirm=args.with_confirm,
                            seconds=time.perf_counter() - start, command=command.strip())
        print("\n".join(real_lines(results)))
    else:
        results = synthetic(args.studies, args.cap, args.seed, args.jobs)
        text = synthetic_section(results, studies=args.studies, cap=args.cap, seed=args.seed, jobs=args.jobs,
                                 seconds=time.perf_counter() - start, command=command.strip())
        print(text)
    write(args.output, "real" if args.real else "synthetic", text)
    print(f"{time.perf_counter() - start:.0f} s; written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
