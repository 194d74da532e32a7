"""Simulated studies whose truth is known, fed through the report's own analysis (`hpstudy.analysis.effects`),
and the counts that say whether its verdicts can be trusted: how often a study with no real effect reports a
finding, how often an interval covers the truth, how often a real effect is found (and with which sign), and
whether an irrelevant hyperparameter's importance interval includes zero.

Pure numpy/pandas (no Keras): a simulated study is a trials table as `results.read_trials` writes it (a column per
hyperparameter under its dotted name, `status`, `score` = val_accuracy, the metrics at the best epoch) and, for
the scenarios that confirm their best configurations, a repeats table as `results.read_repeats` writes it.
Only `effects()` and its `Effects`/`Contrast` objects are read, never the analysis's internals, so the same
counts measure today's statistics and whatever replaces them. Used by benchmarks/calibration.py (the table) and
tests/analysis/test_calibration.py (the targets as assertions).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

OBJECTIVE = "val_accuracy"
BASE = 0.80                  # the score of a trained run before any effect
NOISE = 0.01                 # the run-to-run noise sd: every effect below is in these units
CLASSES = 10                 # a 10-class dataset: effects() decides from it which runs trained
CHANCE = 1 / CLASSES         # a run that never learned scores chance
LEVELS = {"model.head": ["dense", "gap"], "model.dropout": [0.2, 0.5], "model.kernel_size": [3, 5],
          "model.conv_layers": [2, 3, 4], "train.batch_size": [32, 64, 128]}
LEARNING_RATE = "train.learning_rate"           # searched log-uniformly over LR_RANGE
LR_RANGE = (1e-4, 1e-2)
NAMES = [*LEVELS, LEARNING_RATE]
RANGES = {LEARNING_RATE: "log"}
FINDING = "effect"           # the verdict word of a finding, today and after issue 25


@dataclass(frozen=True)
class Scenario:
    """How one kind of simulated study is drawn: its trials, its true effects and what is counted."""

    name: str
    description: str
    trials: int = 40
    shifts: dict = field(default_factory=dict)   # hyperparameter -> {value: true shift of the score}
    diverge: float = 0.0                         # chance that a run (or a seed repeat) never learns
    noisy: dict = field(default_factory=dict)    # hyperparameter -> {value: noise sd} where not NOISE
    curve: float = 0.0                           # inverted-U learning rate: loss at the range's ends
    interaction: float = 0.0                     # dropout 0.5 vs 0.2: +this with dense, -this with gap
    alias: bool = False                          # model.width always moves with model.kernel_size
    confirm: bool = False                        # the best 2 configurations repeated with 3 seeds each
    question: tuple = ()
    target: str | None = None                    # the hyperparameter with a true effect whose detection is counted
    importance: bool = False                     # count importance intervals (a random forest per study: slow)

    def names(self, reverse: bool = False) -> list[str]:
        """The searched hyperparameters in the order effects() is given them."""
        names = [*NAMES, "model.width"] if self.alias else list(NAMES)
        return names[::-1] if reverse else names

    def active(self) -> set[str]:
        """The hyperparameters that truly change the score (alone or together with another)."""
        out = {name for name, shift in self.shifts.items() if any(shift.values())}
        out |= {LEARNING_RATE} if self.curve else set()
        out |= {"model.dropout", "model.head"} if self.interaction else set()
        return out | ({"model.width", "model.kernel_size"} if self.alias else set())


SCENARIOS = {s.name: s for s in (
    Scenario("null", "6 searched hyperparameters (8 contrasts), no true effect"),
    Scenario("null, 16 trials", "the same with 16 trials", trials=16),
    Scenario("one effect", "head gap +1 noise sd over dense, the rest irrelevant; best 2 confirmed with 3 seeds",
             shifts={"model.head": {"dense": 0.0, "gap": 1.0 * NOISE}}, confirm=True, target="model.head",
             importance=True),
    Scenario("15% diverged", "head +2.5 sd; 15% of runs and repeats at chance; best 2 confirmed with 3 seeds",
             shifts={"model.head": {"dense": 0.0, "gap": 2.5 * NOISE}}, diverge=0.15, confirm=True,
             target="model.head"),
    Scenario("unequal noise", "no true effect; batch size 128 has 4x the noise sd of 32 and 64",
             noisy={"train.batch_size": {128: 4 * NOISE}}),
    Scenario("inverted-U learning rate", "best at 1e-3, 3 noise sds lower at 1e-4 and 1e-2", curve=3 * NOISE,
             target=LEARNING_RATE),
    Scenario("interaction", "dropout 0.5 vs 0.2: +2 sd with dense, -2 sd with gap; no main effects",
             interaction=2 * NOISE, question=("model.head", "model.dropout"), target="model.dropout"),
    Scenario("confounded", "model.width (32, 64) always moves with kernel size (3, 5); together +2.5 sd",
             shifts={"model.width": {32: 0.0, 64: 2.5 * NOISE}}, alias=True),
)}


def design(scenario: Scenario, rng: np.random.Generator) -> pd.DataFrame:
    """A random search's hyperparameter values, one row per trial."""
    n = scenario.trials
    table = pd.DataFrame({name: pd.Series(rng.choice(values, n).tolist(), dtype=object)
                          for name, values in LEVELS.items()})
    for name in ("model.kernel_size", "model.conv_layers", "train.batch_size"):
        table[name] = table[name].astype(int)
    table["model.dropout"] = table["model.dropout"].astype(float)
    low, high = np.log10(LR_RANGE)
    table[LEARNING_RATE] = 10 ** rng.uniform(low, high, n)
    if scenario.alias:
        table["model.width"] = table["model.kernel_size"].map({3: 32, 5: 64}).astype(int)
    return table


def true_mean(scenario: Scenario, table: pd.DataFrame) -> np.ndarray:
    """Each configuration's expected score when it trains."""
    mean = np.full(len(table), BASE)
    for name, shift in scenario.shifts.items():
        mean += table[name].map(shift).to_numpy(dtype=float)
    if scenario.curve:
        middle = np.mean(np.log10(LR_RANGE))
        half = np.log10(LR_RANGE[1]) - middle
        mean -= scenario.curve * ((np.log10(table[LEARNING_RATE].to_numpy()) - middle) / half) ** 2
    if scenario.interaction:
        sign = np.where(table["model.head"] == "dense", 1.0, -1.0)
        mean += sign * np.where(table["model.dropout"] == 0.5, 0.5, -0.5) * scenario.interaction
    return mean


def _noise_sd(scenario: Scenario, table: pd.DataFrame) -> np.ndarray:
    sd = np.full(len(table), NOISE)
    for name, by_value in scenario.noisy.items():
        sd = np.where(table[name].isin(list(by_value)), table[name].map(by_value).fillna(NOISE), sd)
    return sd.astype(float)


def _runs(scenario: Scenario, mean: np.ndarray, sd: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """The metrics of runs with these expected scores: diverged runs stay at chance, with chance's loss."""
    score = mean + rng.normal(0.0, 1.0, len(mean)) * sd
    diverged = rng.random(len(mean)) < scenario.diverge
    score = np.where(diverged, CHANCE + rng.normal(0.0, 0.003, len(mean)), score)
    val_loss = np.where(diverged, math.log(10) + rng.normal(0.0, 0.01, len(mean)), 0.6 - (score - BASE) * 3)
    accuracy = np.where(diverged, score, np.minimum(score + 0.08, 1.0))
    return pd.DataFrame({"score": score, "best_epoch": np.where(diverged, 1, 8), "epochs_run": 10,
                         "loss": np.where(diverged, val_loss, val_loss - 0.25), "accuracy": accuracy,
                         "val_loss": val_loss, "val_accuracy": score})


def study(scenario: Scenario, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One simulated study: its trials table and (scenario.confirm) its repeats table, else None."""
    table = design(scenario, rng)
    mean, sd = true_mean(scenario, table), _noise_sd(scenario, table)
    runs = _runs(scenario, mean, sd, rng)
    trials = pd.concat([pd.DataFrame({"trial_id": [f"{i:02d}" for i in range(len(table))], "status": "COMPLETED"}),
                        table, runs], axis=1)
    if not scenario.confirm:
        return trials, None
    best = trials.sort_values("score", ascending=False, kind="stable").index[:2]
    rows = []
    for index in best:
        again = _runs(scenario, np.full(3, mean[index]), np.full(3, sd[index]), rng)
        again.insert(0, "trial_id", trials.at[index, "trial_id"])
        again.insert(1, "seed", [1, 2, 3])
        again.insert(2, "status", "COMPLETED")
        again["test_accuracy"] = again["score"] - 0.005
        rows.append(again)
    return trials, pd.concat(rows, ignore_index=True)


def analyse(scenario: Scenario, trials: pd.DataFrame, repeats, *, reverse: bool = False):
    """The report's effects of one simulated study (hpstudy.analysis.effects.effects); its importance ranking (a
    random forest per study, most of a simulated study's time) only where the scenario counts it."""
    from hpstudy.analysis.effects import effects

    return effects(trials, scenario.names(reverse), OBJECTIVE, ranges=RANGES, question=scenario.question,
                   repeats=repeats, with_importance=scenario.importance, classes=CLASSES)


def truth(scenario: Scenario, contrast) -> float | None:
    """The true value of what `contrast` estimates: 0 where it involves no hyperparameter with an effect, the
    difference of the two values' shifts for a contrast of levels, else None (not known in closed form)."""
    name = str(contrast.hyperparameter)
    if not any(active in name for active in scenario.active()):
        return 0.0
    shift = scenario.shifts.get(name)
    if scenario.alias or shift is None or contrast.reference is None:
        return None
    if contrast.value in shift and contrast.reference in shift:
        return shift[contrast.value] - shift[contrast.reference]
    return None


def _estimated(contrast) -> bool:
    return contrast.difference is not None and contrast.ci95 is not None


def counts(scenario: Scenario, found) -> dict:
    """What one study's effects say against the truth, as counts (summed over studies by `summarize`)."""
    out = {"studies": 1, "false finding": 0, "intervals": 0, "covered": 0, "detected": 0, "calls": 0,
           "wrong sign": 0}
    for contrast in found.contrasts():
        true, finding = truth(scenario, contrast), contrast.verdict == FINDING
        if true is not None and _estimated(contrast):
            out["intervals"] += 1
            out["covered"] += int(contrast.ci95[0] <= true <= contrast.ci95[1])
        if finding and true == 0.0:
            out["false finding"] = 1
        if finding and scenario.target and scenario.target in str(contrast.hyperparameter):
            out["detected"] = 1
            if true:
                out["calls"] += 1
                out["wrong sign"] += int(np.sign(contrast.difference) != np.sign(true))
    if scenario.noisy:
        noisy = [c for c in found.contrasts() if c.hyperparameter in scenario.noisy and _estimated(c)
                 and (c.value in scenario.noisy[c.hyperparameter] or c.reference in scenario.noisy[c.hyperparameter])]
        out["noisy contrasts"] = len(noisy)
        out["noisy findings"] = sum(c.verdict == FINDING for c in noisy)
        # Its interval alone, before the family's control: whether the interval is honest about unequal noise.
        out["noisy significant"] = sum(c.p_value is not None and c.p_value < 0.05 for c in noisy)
    if scenario.importance:
        out.update(_importance_counts(scenario, found))
    return out


def _importance_counts(scenario: Scenario, found) -> dict:
    """How many irrelevant hyperparameters have an importance interval, and how many of those include zero."""
    table = found.importance
    if table is None:
        return {"irrelevant ranked": 0, "irrelevant include zero": 0}
    rows = table[~table["hyperparameter"].isin(scenario.active())]
    low, high = rows["ci95 low"].astype(float), rows["ci95 high"].astype(float)
    return {"irrelevant ranked": int(len(rows)), "irrelevant include zero": int(((low <= 0) & (high >= 0)).sum())}


def alias_counts(scenario: Scenario, trials: pd.DataFrame, repeats) -> dict:
    """The aliased pair in both orders of names: a finding credited to either member (the trials cannot say
    which), and a study where the two members got different verdicts (the order decided)."""
    out = {"studies": 1, "aliased finding": 0, "order decided": 0}
    for reverse in (False, True):
        found = analyse(scenario, trials, repeats, reverse=reverse)
        verdicts = {e.name: e.verdict for e in found.effects if e.name in ("model.width", "model.kernel_size")}
        out["aliased finding"] |= int(FINDING in verdicts.values())
        out["order decided"] |= int(len(set(verdicts.values())) > 1)
        other = counts(scenario, found)
        out["false finding"] = max(out.get("false finding", 0), other["false finding"])
    return out


def simulate(scenario: Scenario, studies: int, seed: int, start: int = 0, importance_until: int | None = None) -> dict:
    """The summed counts of studies start..start+studies-1 of `scenario` (study i drawn from seed [seed, i]:
    the same study whichever process runs it); importance is counted for the studies before `importance_until`
    (default: all)."""
    total: dict = {}
    for i in range(start, start + studies):
        rng = np.random.default_rng([seed, _scenario_number(scenario), i])
        trials, repeats = study(scenario, rng)
        ranked = scenario.importance and (importance_until is None or i < importance_until)
        ranked_scenario = dataclasses.replace(scenario, importance=ranked)
        one = (alias_counts(ranked_scenario, trials, repeats) if scenario.alias
               else counts(ranked_scenario, analyse(ranked_scenario, trials, repeats)))
        for key, value in one.items():
            total[key] = total.get(key, 0) + value
    return total


def _scenario_number(scenario: Scenario) -> int:
    return list(SCENARIOS).index(scenario.name) if scenario.name in SCENARIOS else 99


def share(total: dict, numerator: str, denominator: str) -> tuple[float, float, int] | None:
    """A share of the counts with its binomial standard error (simulation error) and its denominator."""
    n = total.get(denominator, 0)
    if not n:
        return None
    p = total.get(numerator, 0) / n
    return p, math.sqrt(max(p * (1 - p), 0.25 / n) / n), n
