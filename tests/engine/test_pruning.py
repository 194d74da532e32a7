"""search.pruning: the rules on curves written here, then real tiny searches on digits where some learning rates
are hopeless: which trials stop, at which epoch and why; min_trials and warmup respected; a pruned trial never
the best while one completed; the same decisions after a kill and fresh-process restarts, and across workers."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

import hpstudy
from hpstudy import files
from hpstudy.engine.search import pruning
from hpstudy.results.folder import open_folder
from hpstudy.results.trials import ranked_trials
from hpstudy.study import spec as spec_module
from tests.helpers import HPSTUDY_COMMAND, run_command, write_study

# Five learning rates in grid order: a hopeless one first (kept: fewer than min_trials trials had completed),
# two that learn, then two hopeless ones that the median of the three completed trials stops at epoch 2.
MEDIAN = """
name: {name}
data:
  dataset: digits
  validation_split: 0.3
  subset: {{train: 20, validation: 20, test: 4}}
model:
  builder: plain_cnn
  conv_layers: 1
  filters: 8
  dense_units: 16
train:
  epochs: 3
  batch_size: 32
  learning_rate: {{tune: choice, values: [{rates}]}}
search:
  tuner: grid
  seed: 1
  keep_checkpoints: all
  pruning: {{{pruning}}}
"""
RATES = "0.000001, 0.01, 0.003, 0.0000001, 0.0000003"
MEDIAN_RULE = "rule: median, warmup_epochs: 2, min_trials: 3"
REASON = r"best val_accuracy (0\.\d{4}) by epoch 2 is below the median (0\.\d{4}) of 3 completed trials at that epoch"


def median_study(name: str) -> str:
    return MEDIAN.format(name=name, rates=RATES, pruning=MEDIAN_RULE)


def rule(**keys):
    """A PruningSpec as a study file gives it (its rule's own key filled in)."""
    return spec_module.from_dict({"name": "x", "search": {"pruning": keys}}).search.pruning


# ---------------------------------------------------------------- the rules on curves
def test_the_rules_look_after_warmup_every_interval_or_at_the_rungs():
    assert [e for e in range(1, 9) if pruning.is_due(rule(warmup_epochs=2, interval=2), e)] == [2, 4, 6, 8]
    assert [e for e in range(1, 30) if pruning.is_due(rule(rule="successive_halving"), e)] == [1, 3, 9, 27]
    assert [e for e in range(1, 9) if pruning.is_due(rule(rule="successive_halving", warmup_epochs=2,
                                                          reduction_factor=2), e)] == [2, 4, 8]


OTHERS = [("0", "COMPLETED", [0.1, 0.2, 0.3]), ("1", "COMPLETED", [0.5, 0.6]),     # 1 stopped early: 0.6 after
          ("2", "PRUNED", [0.9]), ("3", "RUNNING", [0.95, 0.95, 0.95]), ("4", "FAILED", [0.99, 0.99, 0.99])]


def test_the_median_rule_compares_with_completed_trials_only():
    spec = rule(min_trials=2)
    decision = pruning.median_rule(spec, 3, 0.4, OTHERS, "val_accuracy", False)
    assert decision.threshold == pytest.approx(0.45) and decision.compared == ["0", "1"]
    assert decision.reason == ("best val_accuracy 0.4000 by epoch 3 is below the median 0.4500 of 2 completed "
                               "trials at that epoch")
    assert pruning.median_rule(spec, 3, 0.45, OTHERS, "val_accuracy", False) is None     # a tie continues
    assert pruning.median_rule(rule(min_trials=3), 3, 0.0, OTHERS, "val_accuracy", False) is None
    losses = [("0", "COMPLETED", [1.0, 0.8]), ("1", "COMPLETED", [0.6, 0.4])]
    decision = pruning.median_rule(rule(min_trials=2), 2, 0.7, losses, "val_loss", True)
    assert decision.reason.startswith("best val_loss 0.7000 by epoch 2 is above the median 0.6000")


# Trial 1 was pruned at epoch 1, trial 3 failed, trial 4 has no epoch yet.
AT_RUNGS = [("0", "COMPLETED", [0.6, 0.7, 0.8]), ("1", "PRUNED", [0.5]), ("2", "RUNNING", [0.95, 0.95, 0.95]),
            ("3", "FAILED", [0.99, 0.99, 0.99]), ("4", "COMPLETED", [])]


def test_successive_halving_keeps_the_top_fraction_of_the_trials_at_the_rung():
    thirds = rule(rule="successive_halving", min_trials=1)
    decision = pruning.halving_rule(thirds, 1, 0.8, AT_RUNGS, "val_accuracy", False)
    assert decision.compared == ["0", "1", "2"] and decision.threshold == pytest.approx(0.95)
    assert decision.reason == ("best val_accuracy 0.8000 by epoch 1 is below 0.9500: only the top 1 of the 4 "
                               "trials at this rung (1/3) continue")
    assert pruning.halving_rule(thirds, 1, 0.96, AT_RUNGS, "val_accuracy", False) is None
    halves = rule(rule="successive_halving", min_trials=1, reduction_factor=2)
    assert pruning.halving_rule(halves, 1, 0.6, AT_RUNGS, "val_accuracy", False) is None       # 2nd of 4
    assert pruning.halving_rule(halves, 1, 0.55, AT_RUNGS, "val_accuracy", False).threshold == pytest.approx(0.6)
    # At epoch 3 only the trials that ran 3 epochs count.
    assert pruning.halving_rule(thirds, 3, 0.5, AT_RUNGS, "val_accuracy", False).compared == ["0", "2"]
    assert pruning.halving_rule(rule(rule="successive_halving", min_trials=5), 1, 0.0, AT_RUNGS, "val_accuracy",
                                False) is None


# ---------------------------------------------------------------- real searches
@pytest.fixture(scope="module")
def median_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("median")
    study_path = write_study(folder, median_study("median"), name="median")
    return hpstudy.run(study_path, results_dir=folder / "results"), study_path


def best_by(layout, trial_id, epoch: int) -> float:
    """A trial's best val_accuracy by `epoch`, read from its history file with pandas."""
    history = pd.read_csv(layout.history(trial_id))
    return float(history["val_accuracy"].cummax().iloc[:epoch].iloc[-1])


def test_the_median_rule_stops_the_hopeless_trials_at_the_end_of_warmup(median_run):
    study, _ = median_run
    table = study.trials.set_index("trial_id")
    assert list(table.status) == ["COMPLETED"] * 3 + ["PRUNED"] * 2, table.status
    completed = ["0", "1", "2"]
    median = float(np.median([best_by(study.layout, t, 2) for t in completed]))
    for number in ("3", "4"):
        row = table.loc[number]
        assert row.pruned_at_epoch == 2 and row.epochs_run == 2 and row.best_epoch <= 2     # warmup: not at epoch 1
        found = re.fullmatch(REASON, row.pruned_reason)
        assert found, row.pruned_reason
        assert float(found.group(1)) == pytest.approx(best_by(study.layout, number, 2), abs=5e-5)
        assert float(found.group(2)) == pytest.approx(median, abs=5e-5)
        record = json.loads(study.layout.pruned(number).read_text())
        assert record["compared"] == completed and record["rule"] == "median"       # a pruned trial is not compared
    # Trial 0 is as hopeless as 3 and 4, but fewer than min_trials trials had completed when it ran.
    assert best_by(study.layout, "0", 2) < median and table.loc["0", "epochs_run"] == 3
    assert study.best["trial_id"] == table.loc[completed, "score"].astype(float).idxmax()


def test_a_pruned_trial_keeps_its_best_epoch_weights(median_run):
    from hpstudy.engine.search.hypermodel import load_data
    study, _ = median_run
    model = study.model("3")
    data = load_data(hpstudy.load_spec(study.layout.spec))
    accuracy = model.evaluate(data.validation.x, data.validation.y, verbose=0, return_dict=True)["accuracy"]
    assert accuracy == pytest.approx(float(study.trials.set_index("trial_id").loc["3", "score"]), abs=1e-6)


def test_a_trial_whose_fit_ends_anyway_is_not_pruned(median_run, tmp_path):
    import keras
    study, _ = median_run
    root = tmp_path / "median"
    shutil.copytree(study.path, root)
    layout = open_folder(root)
    layout.pruned("3").unlink()

    def pruned_at(stopped_by_early_stopping: bool):
        pruner = pruning.Pruner(hpstudy.load_spec(layout.spec).search, layout, "3")
        pruner.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
        pruner.set_params({"epochs": 3})
        pruner.model.stop_training = False          # as fit sets it
        pruner.on_epoch_end(0, {"val_accuracy": 0.0})
        pruner.model.stop_training = stopped_by_early_stopping     # set by a callback before it, at epoch 2
        pruner.on_epoch_end(1, {"val_accuracy": 0.0})
        return pruner.pruned_at
    assert pruned_at(True) is None and not layout.pruned("3").exists()     # it completed: early stopping ended it
    assert pruned_at(False) == 2 and json.loads(layout.pruned("3").read_text())["compared"] == ["0", "1", "2"]


def test_a_rule_that_could_stop_nothing_is_refused_and_override_epochs_count():
    from hpstudy.engine.search import checks
    from hpstudy.errors import SpecError
    text = MEDIAN.format(name="reach", rates="0.01, 0.001", pruning="warmup_epochs: 5, min_trials: 1")
    with pytest.raises(SpecError, match=r"warmup_epochs: 5: no trial runs more than 3 epochs"):
        checks.check(spec_module.loads(text))
    # A trial an override gives 6 epochs can be stopped at epoch 5.
    longer = text.replace("  batch_size: 32\n", "  batch_size: 32\n  overrides: [{when: {train.learning_rate: 0.01}, "
                                                "set: {epochs: 6}}]\n")
    assert checks.check(spec_module.loads(longer)).search.pruning.warmup_epochs == 5
    with pytest.raises(SpecError, match=r"min_trials: 5: the median rule acts once 5 other trials have completed, "
                                        r"but search.max_trials is 2"):
        checks.check(spec_module.loads(MEDIAN.format(name="few", rates="0.01, 0.001", pruning="min_trials: 5")
                                       .replace("tuner: grid", "tuner: random\n  max_trials: 2")))


def test_the_report_marks_pruned_trials_and_leaves_them_out_of_the_estimates(median_run):
    from hpstudy.report import pages, plots_trials, tables
    study, _ = median_run
    report = tables.build([study.path])
    assert list(report.trials.status) == ["COMPLETED"] * 3 + ["PRUNED"] * 2      # best first: pruned after
    fx = report.studies[0].effects
    assert fx.trials == 3 and fx.pruned == 2
    for outcome, runs in (("score", fx.trials - fx.untrained), ("did not train", fx.trials)):   # pruned: in none
        mine = [c for c in fx.contrasts() if c.outcome == outcome]
        assert sum(c.n for c in mine) + mine[0].n_reference <= runs
    per_value = fx.effects[0].table.set_index("value")
    assert per_value.loc[1e-07, "pruned"] == 1 and per_value.loc[1e-07, "count"] == 0
    answer = json.loads(pages.render(report, "json"))["answer"]
    assert answer["pruned"] == 2 and answer["best_trial"] == study.best["trial_id"]
    text = pages.render(report, "markdown")
    assert "**Pruned:** 2 trials stopped early by search.pruning" in text
    assert "(pruned trials, left out of the estimate: 1e-07: 1, 3e-07: 1)" in text
    assert "3 completed trials; 2 pruned, left out)" in text
    figure = plots_trials.plot_history(report.studies[0])
    labels = {text.get_text() for ax in figure.axes if ax.get_legend() for text in ax.get_legend().get_texts()}
    assert "pruned (cut short; not estimated)" in labels


def test_the_best_models_section_marks_a_pruned_trial(median_run, tmp_path):
    from hpstudy.report import tables
    study, _ = median_run
    titles = [section.title for section in tables.evaluate_best([study.path], tmp_path, top=4)]
    assert [", pruned at epoch 2)" in title for title in titles] == [False] * 3 + [True], titles


def test_a_pruned_trial_is_the_best_only_when_no_trial_completed(median_run, tmp_path):
    from hpstudy.report import tables
    study, study_path = median_run
    root = tmp_path / "median"
    shutil.copytree(study.path, root)
    layout = open_folder(root)
    best = study.best["trial_id"]
    # The best trial's record says the rule stopped it (no run of the rule can: it had the best curve).
    files.write_json(layout.pruned(best), {"epoch": 3, "rule": "median", "reason": "marked by the test"})
    ranked = ranked_trials(layout)
    assert ranked[2] == best and best not in ranked[:2]      # after the two completed trials
    resumed = hpstudy.run(study_path, results_dir=tmp_path)        # a finished study: its best model saved again
    assert resumed.best["trial_id"] == ranked[0] != best
    assert tables.build([root]).studies[0].answer.best_trial == ranked[0]
    for number in ("0", "1", "2"):
        files.write_json(layout.pruned(number), {"epoch": 3, "rule": "median", "reason": "marked by the test"})
    assert hpstudy.run(study_path, results_dir=tmp_path).best["trial_id"] == best     # nothing completed
    assert ranked_trials(layout)[0] == best


@pytest.mark.slow
def test_successive_halving_stops_trials_outside_the_top_of_their_rung(tmp_path):
    text = MEDIAN.format(name="halving", rates="0.01, 0.003, 0.0000001, 0.000001",
                         pruning="rule: successive_halving, warmup_epochs: 1, min_trials: 3, reduction_factor: 2")
    study = hpstudy.run(write_study(tmp_path, text, name="halving"), results_dir=tmp_path)
    table = study.trials.set_index("trial_id")
    assert list(table.status) == ["COMPLETED", "COMPLETED", "PRUNED", "PRUNED"], table.status
    assert list(table.pruned_at_epoch.dropna()) == [1, 1]
    assert "only the top 1 of the 3 trials at this rung (1/2) continue" in table.loc["2", "pruned_reason"]
    assert "only the top 2 of the 4 trials at this rung (1/2) continue" in table.loc["3", "pruned_reason"]
    assert json.loads(study.layout.pruned("3").read_text())["compared"] == ["0", "1", "2"]


@pytest.mark.slow
def test_a_killed_run_with_fresh_process_restarts_decides_as_one_run_did(median_run, tmp_path):
    reference, _ = median_run
    study_path = write_study(tmp_path, median_study("median"), name="median")
    command = [*HPSTUDY_COMMAND, "run", str(study_path), "--results-dir", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = tmp_path / "median" / "trials" / "3" / "history_0.csv"
    deadline = time.time() + 300
    while process.poll() is None and not history.exists() and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before trial 3's first epoch"
    os.kill(process.pid, signal.SIGKILL)                 # inside trial 3, before the rule looks at epoch 2
    process.wait()
    # The resumed run reruns trial 3, then runs trial 4 in a fresh process (the memory allowance, exceeded at once).
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HPSTUDY_MEMORY_ALLOWANCE_MIB": "0.01"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "continuing in a fresh process" in done.stdout
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("trial ")] == ["3", "4"]
    columns = ["status", "epochs_run", "pruned_at_epoch", "pruned_reason", "score"]
    resumed = hpstudy.load_study(tmp_path / "median").trials
    pd.testing.assert_frame_equal(resumed[columns], reference.trials[columns])


@pytest.mark.slow
def test_workers_prune_from_each_others_curves(tmp_path):
    rates = "0.01, 0.003, 0.0000001, 0.0000003, 0.000001, 0.0000002"
    text = MEDIAN.format(name="workers", rates=rates, pruning="rule: median, warmup_epochs: 2, min_trials: 2")
    study_path = write_study(tmp_path, text, name="workers")
    done = run_command("run", study_path, "--results-dir", tmp_path, "--workers", "2", timeout=400)
    assert done.returncode == 0, done.stdout[-3000:]
    root = tmp_path / "workers"
    table = hpstudy.load_study(root).trials.set_index("trial_id")
    worker = {n: json.loads((root / "trials" / n / "execution_0.json").read_text())["worker"] for n in table.index}
    assert set(worker.values()) == {"worker0", "worker1"}
    assert list(table.status[["0", "1"]]) == ["COMPLETED", "COMPLETED"]
    pruned = list(table.index[table.status == "PRUNED"])
    assert len(pruned) >= 2, table[["status", "pruned_reason"]]
    compared = {n: json.loads((root / "trials" / n / "pruned.json").read_text())["compared"] for n in pruned}
    assert all(len(trials) >= 2 for trials in compared.values())
    # Each worker reads the shared folder: a worker's decision rests on trials the other worker ran.
    assert any(worker[other] != worker[n] for n, trials in compared.items() for other in trials), (compared, worker)
    assert "PRUNED at epoch 2" in done.stdout
