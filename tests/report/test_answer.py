"""The answer a report opens with (built from effects with known verdicts, no training), the study file's
opening comment kept in the results folder, and the numbers of the tables rounded for reading."""
import io
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from hpstudy.analysis import effects
from hpstudy.report import answer, numbers, pages, tables
from hpstudy.results import folder
from hpstudy.study import spec, yamlfile
from tests.helpers import REPO

STUDIES = REPO / "studies"


def _study(*names, question=()):
    return SimpleNamespace(tunables=lambda: [SimpleNamespace(name=n) for n in names], question=tuple(question))


def _confounded():
    """model.head has a true effect; batch_size none (it came mostly with the dense head: raw means credit it)."""
    rng = np.random.default_rng(1)
    head = np.array(["gap"] * 8 + ["dense"] * 8)
    return pd.DataFrame({"trial_id": [str(i) for i in range(16)], "status": "COMPLETED", "model.head": head,
                         "train.batch_size": np.array([64] * 7 + [32] + [32] * 6 + [64] * 2),
                         "score": np.where(head == "dense", 0.95, 0.30) + rng.normal(0, 0.03, 16)})


def test_only_effects_are_findings_and_the_rest_is_named_as_such():
    trials = _confounded()
    names = ["model.head", "train.batch_size"]
    fx = effects.effects(trials, names, "val_accuracy")
    found = answer.answer_of("c", _study(*names, question=["model.head"]), {}, trials, fx)
    assert len(found.findings) == 1 and found.findings[0].startswith("model.head gap vs dense: val_accuracy -0.")
    assert [n.split(" (")[0] for n in found.undetermined] == ["train.batch_size"] and found.too_few == []
    assert found.negligible == []                  # no noise floor measured: nothing can be shown negligible
    best = trials.loc[trials.score.idxmax()]
    assert found.best_trial == best.trial_id and found.score == pytest.approx(best.score)
    assert found.best.startswith(f"model.head=dense, train.batch_size={best['train.batch_size']} (trial ")
    lines = found.lines()
    assert lines[0] == "Question: How does model.head change val_accuracy, each at its best setting of the others?"
    assert any(line.startswith("Undetermined (intervals too wide to say, not findings): train.batch_size (")
               and "more trials per value" in line for line in lines)
    assert not any(line.startswith("Finding: train.batch_size") for line in lines)
    assert "not measured yet" in found.test_line()


def test_effects_are_ordered_by_size_and_too_few_trials_said():
    rng = np.random.default_rng(0)
    a = np.tile(["x", "y"], 12)
    b = np.repeat(["p", "q"], 12)
    trials = pd.DataFrame({"trial_id": [str(i) for i in range(24)], "status": "COMPLETED", "a": a, "b": b,
                           "c": ["u"] * 22 + ["v"] * 2,
                           "score": 0.5 + 0.1 * (a == "y") + 0.3 * (b == "q") + rng.normal(0, 0.005, 24)})
    fx = effects.effects(trials, ["a", "b", "c"], "val_accuracy")
    found = answer.answer_of("s", _study("a", "b", "c"), {}, trials, fx)
    assert [line.split()[0] for line in found.findings] == ["b", "a"]          # the larger effect first
    assert found.too_few == ["c"] and found.lines()[-1] == "Too few trials to say: c."


def test_the_seed_interval_of_a_confirmed_best_is_shown():
    trials = _confounded()
    fx = effects.effects(trials, ["model.head"], "val_accuracy")
    best = {"trial_id": "9", "score": 0.97, "hyperparameters": {"model.head": "dense"}, "test_accuracy": 0.912345,
            "confirmed": {"configurations": [{"trial_id": "9", "n": 3, "test_accuracy_mean": 0.9,
                                              "test_accuracy_ci95": [0.85, 0.95]}],
                          "winner": "9", "runner_up": "4", "distinguishable": False}}
    line = answer.answer_of("c", _study("model.head"), best, trials, fx).test_line()
    assert line.startswith("Test accuracy: 0.9123; over 3 new seeds 0.9000 (95% interval 0.8500 to 0.9500)")
    assert "not distinguishable from the runner-up (trial 4)" in line
    best["confirmed"] = {"configurations": ["junk", {"trial_id": "9", "test_accuracy_ci95": 0.5,
                                                     "test_accuracy_mean": "x"}], "winner": "9"}
    assert answer.answer_of("c", _study(), best, trials, fx).test_line() == (
        "Test accuracy: 0.9123 (one run; not confirmed with seed repeats).")       # a damaged summary: no interval
    del best["confirmed"]
    assert "(one run; not confirmed with seed repeats)" in answer.answer_of("c", _study(), best, trials, fx).test_line()


def test_the_question_comes_from_the_study_file():
    quick = yamlfile.opening_comment(STUDIES / "quickstart.yaml")
    assert answer.question_text(quick, (), "val_accuracy") == (
        "Quickstart: which small CNN classifies handwritten digits best, and which of its settings matter?")
    gap = answer.question_text(yamlfile.opening_comment(STUDIES / "gap_vs_dense.yaml"), ("model.head",), "val_accuracy")
    assert gap.startswith("does replacing the flatten + dense head by global average pooling reduce overfitting")
    assert gap.endswith("still matter once the head is GAP? (asked of model.head)")
    assert answer.question_text("", (), "val_loss") == "Which of the searched configurations gives the best val_loss?"


def test_the_results_folder_keeps_the_opening_comment(tmp_path):
    source = tmp_path / "s.yaml"
    source.write_text("# Which dropout?\n#   Two values.\nname: s\ndata: {dataset: digits}\n"
                      "model: {dropout: {tune: choice, values: [0.0, 0.5]}}\n")
    study = spec.load(source)
    layout = folder.prepare(tmp_path / "r", study)
    assert yamlfile.opening_comment(layout.spec) == "Which dropout?\nTwo values."
    assert spec.load(layout.spec) == study
    folder.prepare(tmp_path / "r", spec.from_dict(study.to_dict()))         # resumed from a spec: kept
    assert yamlfile.opening_comment(layout.spec) == "Which dropout?\nTwo values."


@pytest.mark.parametrize("column, value, shown", [
    ("val_accuracy", 0.912345678, "0.9123"), ("seconds", 12.3456, "12.3"), ("params", 1234567, "1,234,567"),
    ("flops", 2.5e9, "2,500,000,000"), ("train.learning_rate", 0.000123456, "0.0001235"),
    ("importance", 1.234e-5, "1.23e-05"), ("last_gap", 0.000263, "0.0003"), ("score", None, ""),
    ("score", float("nan"), ""),
    ("model.head", "gap", "gap"), ("n", 7, "7")])
def test_numbers_are_rounded_for_reading(column, value, shown):
    assert numbers.cell(column, value) == shown


def test_tables_are_rounded_for_reading_but_csv_and_json_keep_every_digit(finished_study):
    path, _ = finished_study
    built = tables.build([path])
    # A trial whose seconds have more digits than the tables show (one at exactly x.y00 s would prove nothing).
    k = next(i for i, s in enumerate(built.trials["seconds"].astype(float)) if s != round(s, 1))
    seconds = float(built.trials["seconds"].iloc[k])
    text = pages.render(built, "markdown")
    rows = [line for line in text.splitlines() if line.startswith("|")]   # the trials table comes first
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    row = [cell.strip() for cell in rows[2 + k].strip("|").split("|")]
    assert row[header.index("seconds")] == f"{seconds:.1f}"
    score = float(built.trials["score"].iloc[k])
    assert row[header.index("score")] == f"{score:.4f}"
    assert pd.read_csv(io.StringIO(pages.render(built, "csv")))["seconds"].iloc[k] == seconds
    assert json.loads(pages.render(built, "json"))["trials"][k]["seconds"] == seconds
