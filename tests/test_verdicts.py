"""Verdicts on real tiny searches with a known true effect and known null ones, the seed repeats behind the
noise floor (resumed after a kill), and a confounded design that must not produce a false claim."""
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import hpstudy
from hpstudy.analysis import adjusted, effects, statistics
from hpstudy.cli import main
from tests.conftest import write_study

# model.head: a GAP head on 8 filters of one conv layer cannot read digits as well as a dense head (a true
# effect). train.lr_decay_factor and train.lr_min change nothing: a step schedule every 100 epochs never decays
# within 3, and lr_min is only read by other schedules (true nulls; their trials differ by seed alone).
KNOWN = """
name: known
question: [model.head]
data: {dataset: digits, subset: {train: 20, validation: 15, test: 10}}
model: {conv_layers: 1, filters: 8, dense_units: 32, head: {tune: choice, values: [gap, dense]}}
train:
  epochs: 3
  batch_size: 32
  learning_rate: 0.003
  lr_schedule: step
  lr_decay_epochs: 100
  lr_decay_factor: {tune: choice, values: [0.5, 0.9]}
  lr_min: {tune: float, min_value: 1.0e-6, max_value: 1.0e-5, sampling: log}
search: {tuner: random, max_trials: 10, seed: 0, confirm: {top: 2, seeds: 2}}
"""


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    root = tmp_path_factory.mktemp("known")
    study = hpstudy.run(write_study(root, KNOWN, name="known"), results_dir=root / "results")
    return study


def _report(study, capsys):
    assert main(["report", str(study.path), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_a_true_effect_is_an_effect_and_true_nulls_are_not(known, capsys):
    # This GAP head never learns in 3 epochs (every gap run at chance), the dense head always does: the true
    # effect is on whether a run trains, and the report must say so rather than average chance into a score.
    report = _report(known, capsys)
    by = {}
    for record in report["effects"]:
        by.setdefault(record["hyperparameter"], []).append(record)
    head = next(r for r in by["model.head"] if r["outcome"] == "did not train")
    # The reference is the value with more runs, whichever it is: gap's share is 1.0 above dense's.
    assert head["verdict"] == statistics.EFFECT and {head["value"], head["reference"]} == {"gap", "dense"}
    assert head["n_reference"] >= head["n"] and head["n"] + head["n_reference"] == 10
    sign = 1 if head["value"] == "gap" else -1
    assert head["difference"] == sign * 1.0 and sign * head["ci95"][0 if sign > 0 else 1] > 0
    assert not [r for r in by["model.head"] if r["outcome"] == "score" and r["difference"] is not None]
    for null in ("train.lr_decay_factor", "train.lr_min"):
        assert statistics.EFFECT not in [r["verdict"] for r in by[null]], by[null]
    assert by["train.lr_min"][0]["value"].startswith("q75 vs q25 (")   # its quartiles, on the scale searched
    # A searched range is split at its median for the share that did not train: one comparison, not one per value
    shares = [r for r in by["train.lr_min"] if r["outcome"] == "did not train"]
    assert len(shares) == 1 and shares[0]["value"].startswith(">= ") and shares[0]["reference"].startswith("< ")


@pytest.mark.slow
def test_the_report_states_only_what_holds(known, tmp_path):
    assert main(["report", str(known.path), "--output", str(tmp_path / "r.md"), "--best", "0"]) == 0
    text = (tmp_path / "r.md").read_text()
    summary = text[text.index("### Summary"):text.index("### Effects, adjusted")]
    head = next(line for line in summary.splitlines() if line.startswith("- model.head"))
    assert "only dense among the runs that trained" in head and "gap: 7 of 7" in head
    assert "the share differs between values" in head
    for null in ("train.lr_decay_factor", "train.lr_min"):
        line = next(line for line in summary.splitlines() if line.startswith(f"- {null}"))
        assert "too few trials" in line or "undetermined" in line or "negligible" in line
        assert "the share not shown to differ between values" in line
    assert "Noise floor: the seed-to-seed standard deviation of val_accuracy is" in summary
    assert "### The question: model.head" in text


@pytest.mark.slow
def test_the_report_opens_with_the_answer(known, tmp_path, capsys):
    """The runs that did not train are the finding, no score finding is claimed, the best trial's seed interval
    is shown."""
    answer = _report(known, capsys)["answer"]
    assert answer["findings"] == [] and answer["did_not_train"] == 7 and answer["runs"] == 10
    assert len(answer["training_findings"]) == 1 and answer["training_findings"][0].startswith("model.head: ")
    best = known.best
    assert answer["best_trial"] == best["trial_id"] and answer["test_accuracy"] == best["test_accuracy"]
    mine = next(c for c in best["confirmed"]["configurations"] if c["trial_id"] == best["trial_id"])
    assert answer["seed_test_accuracy_ci95"] == mine["test_accuracy_ci95"] and answer["seeds"] == 2
    assert main(["report", str(known.path), "--output", str(tmp_path / "r.md"), "--best", "0"]) == 0
    head = (tmp_path / "r.md").read_text().split("\n\n| trial_id")[0]
    assert head.startswith("## The answer\n\n- **Question:** How does model.head change val_accuracy")
    assert "- **No finding:** no searched hyperparameter was shown to change val_accuracy among the runs" in head
    assert "- **Finding:** model.head: runs that did not train" in head and "gap: 7 of 7" in head
    assert "- **Did not train:** 7 of 10 runs" in head and "over 2 new seeds" in head


@pytest.mark.slow
def test_every_figure_of_a_confirmed_study(known):
    """A real random search with seed repeats: every figure has something to show (the importance ranking
    needs 4 runs that trained: it says so instead), and the learning rate floor searched log is drawn on a log
    axis."""
    from hpstudy.report import plots, tables
    study = tables.build([known.path]).studies[0]
    captions = [caption for caption, _ in plots.figures(study)]
    assert [c.split(": ", 1)[1] for c in captions] == [c for _, _, c in plots.CAPTIONS if "importance" not in c]
    assert "3 completed that trained" in study.effects.importance_note
    panels = {ax.get_title().split(":")[0]: ax for ax in plots.plot_effects(study).axes}
    assert panels["train.lr_min"].get_xscale() == "log" and panels["model.head"].get_title() == "model.head: effect"
    repeats = plots.plot_repeats(study).axes[0]
    assert len(repeats.get_xticklabels()) == 2        # confirm: top 2


@pytest.mark.slow
def test_repeats_are_recorded_with_their_seeds_and_summarized_in_best_json(known):
    repeats = known.repeats
    assert len(repeats) == 4 and repeats.groupby("trial_id").seed.nunique().eq(2).all()
    assert set(repeats.trial_id) == set(known.ranked()[:2])
    assert repeats.status.eq("COMPLETED").all() and repeats.test_accuracy.between(0, 1).all()
    trial_seeds = set(range(10))     # the trials' own seeds (search.seed 0): repeats never reuse one
    assert not set(repeats.seed) & trial_seeds
    confirmed = known.best["confirmed"]
    assert confirmed["noise_floor"] == pytest.approx(
        statistics.pooled_std(g.score for _, g in repeats.groupby("trial_id"))[0])
    assert isinstance(confirmed["distinguishable"], bool) and confirmed["runner_up"] in set(repeats.trial_id)
    for config in confirmed["configurations"]:
        scores = repeats[repeats.trial_id == config["trial_id"]].score
        assert config["score_mean"] == pytest.approx(scores.mean())
        assert config["score_ci95"][0] <= config["score_mean"] <= config["score_ci95"][1]


@pytest.mark.slow
def test_confirm_resumes_after_a_kill(known, tmp_path):
    folder = tmp_path / "known"
    shutil.copytree(known.path, folder)
    shutil.rmtree(folder / "repeats")
    command = [sys.executable, "-m", "hpstudy.cli", "confirm", str(folder), "--top", "2", "--seeds", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline and not list(folder.glob("repeats/*/seed_*.json")):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = {p: p.read_bytes() for p in folder.glob("repeats/*/seed_*.json")}
    assert len(first) == 1, "the kill landed after the first repeat"
    assert main(["confirm", str(folder), "--top", "2", "--seeds", "2"]) == 0
    done = sorted(folder.glob("repeats/*/seed_*.json"))
    assert len(done) == 4 and all(p.read_bytes() == content for p, content in first.items())   # not run again
    assert len(pd.read_csv(folder / "repeats.csv")) == 4


def test_a_confounded_design_makes_no_false_claim():
    """batch_size 32 came mostly with the dense head; raw means credit it with the head's effect."""
    rng = np.random.default_rng(1)
    head = np.array(["gap"] * 8 + ["dense"] * 8)
    batch = np.array([64] * 7 + [32] + [32] * 6 + [64] * 2)
    trials = pd.DataFrame({"trial_id": [str(i) for i in range(16)], "status": "COMPLETED", "model.head": head,
                           "train.batch_size": batch,
                           "score": np.where(head == "dense", 0.95, 0.30) + rng.normal(0, 0.03, 16)})
    raw = trials.groupby("train.batch_size").score.mean()
    assert raw[32] - raw[64] > 0.3                              # what a marginal mean would report
    found = effects.effects(trials, ["model.head", "train.batch_size"], "val_accuracy")
    verdict = {e.name: e.verdict for e in found.effects}
    assert verdict == {"model.head": statistics.EFFECT, "train.batch_size": statistics.UNDETERMINED}
    assert "undetermined" in found.effects[1].sentence and "more trials per value would settle it" in \
        found.effects[1].sentence


def test_too_few_trials_are_said_so():
    trials = pd.DataFrame({"trial_id": list("0123"), "status": "COMPLETED", "a": ["x", "x", "x", "y"],
                           "b": [1.0, 2.0, 3.0, 4.0], "score": [0.1, 0.2, 0.3, 0.9]})
    found = effects.effects(trials, ["a"], "val_accuracy")
    assert found.effects[0].verdict == statistics.TOO_FEW and "too few trials (n=1 vs 3)" in found.effects[0].sentence
    inseparable = adjusted.contrasts(trials.assign(c=trials["a"]), {"a": (False, False), "c": (False, False)})
    assert [c.verdict for c in inseparable] == [statistics.TOO_FEW] * 2
    assert "not separable" in inseparable[1].note


def test_statistics_against_hand_computed_values():
    summary = statistics.summarize([1.0, 2.0, 3.0])
    assert (summary.n, summary.mean, summary.std) == (3, 2.0, 1.0)
    assert summary.ci95 == pytest.approx((2 - 4.302653 / 3 ** 0.5, 2 + 4.302653 / 3 ** 0.5), rel=1e-5)
    assert statistics.pooled_std([[1.0, 3.0], [2.0, 2.0, 5.0]]) == (pytest.approx(((2 + 6) / 3) ** 0.5), 3)
    assert statistics.verdict(0.1, (0.05, 0.15), 0.2) == statistics.EFFECT           # excludes zero: the floor
    assert statistics.verdict(0.1, (0.05, 0.15), 0.2, p_family=0.2) == statistics.NEGLIGIBLE   # not after Holm, small
    assert statistics.verdict(0.01, (-0.05, 0.07), 0.1) == statistics.NEGLIGIBLE     # all within +-0.1
    assert statistics.verdict(0.01, (-0.05, 0.15), 0.1) == statistics.UNDETERMINED   # reaches past the floor
    assert statistics.verdict(0.3, (-0.1, 0.7), None) == statistics.UNDETERMINED     # no smallest effect known
    assert statistics.more_trials(0.1, (-0.1, 0.3), 8, None) == 24          # half-width 0.2 -> 0.1: 4x the trials
    assert statistics.decimals((0.00001, 0.00003)) == 6 and statistics.decimals((-0.2, 0.3)) == 3
    assert statistics.verdict(None, None, None) == statistics.TOO_FEW


@pytest.mark.slow
def test_the_same_study_and_seed_give_the_same_trials_table_but_for_wall_time(tmp_path):
    """On the CPU with TensorFlow (as the README claims): each trial seeds its weights and data order from
    search.seed and its number, so two runs, one in this process and one in another, agree in every column but
    `seconds`."""
    text = KNOWN.replace("max_trials: 10", "max_trials: 2").replace(", confirm: {top: 2, seeds: 2}", "") \
        .replace("question: [model.head]\n", "").replace("epochs: 3", "epochs: 2")
    path = write_study(tmp_path, text, name="known")
    first = hpstudy.run(path, results_dir=tmp_path / "a").trials
    done = subprocess.run([sys.executable, "-m", "hpstudy.cli", "run", str(path), "--results-dir",
                           str(tmp_path / "b")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    second = hpstudy.load_study(tmp_path / "b" / "known").trials
    differ = [c for c in first.columns if not first[c].equals(second[c])]
    assert differ == ["seconds"]
    assert first.loss.nunique() > 1        # the trials themselves differ: the comparison is not vacuous
