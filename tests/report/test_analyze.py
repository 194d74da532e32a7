"""`hpstudy analyze` and `hpstudy.analyze`: the report's analysis of any tool's trials table. A results folder's
own tables give exactly its report's effects; an Optuna-style CSV works; no Keras is imported."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import hpstudy
from hpstudy.cli import main
from hpstudy.report import analyze as analyze_module
from tests.helpers import SIX, write_study

CONFIRMED = SIX.replace("name: six", "name: confirmed") + "  confirm: {top: 2, seeds: 2}\n"


def _json(argv, capsys):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _foreign(rng, n=40):
    """A trials table as Optuna's trials_dataframe() writes it: number, value, params_*, state; the head is worth
    +0.03 (3 noise sds), one trial failed."""
    head = rng.choice(["dense", "gap"], n)
    table = pd.DataFrame({"number": range(n), "value": 0.8 + 0.03 * (head == "gap") + rng.normal(0, 0.01, n),
                          "datetime_start": "2026-12-05 09:00:00", "params_head": head,
                          "params_lr": 10 ** rng.uniform(-4, -2, n), "params_units": rng.choice([16, 64], n),
                          "user_attrs_note": "x", "state": "COMPLETE"})
    table.loc[3, ["value", "state"]] = [np.nan, "FAIL"]
    return table


def test_a_results_folder_s_tables_give_exactly_the_report_s_effects(finished_study, capsys):
    results, _ = finished_study
    report = _json(["report", str(results), "--format", "json"], capsys)
    analyzed = _json(["analyze", str(results / "trials.csv"), "--objective", "val_accuracy", "--format", "json"],
                     capsys)
    assert analyzed["effects"] == report["effects"] and report["effects"]
    assert analyzed["answer"]["findings"] == report["answer"]["findings"]


@pytest.mark.slow
def test_a_confirmed_study_s_tables_give_exactly_the_report_s_effects_and_noise_floor(tmp_path, capsys):
    # 8 trials of three choices (a float, a boolean, an integer) and 4 seed repeats: the noise floor as well.
    results = hpstudy.run(write_study(tmp_path, CONFIRMED, name="confirmed"), results_dir=tmp_path / "results").path
    report = _json(["report", str(results), "--format", "json"], capsys)
    analyzed = _json(["analyze", str(results / "trials.csv"), "--objective", "val_accuracy", "--repeats",
                      str(results / "repeats.csv"), "--format", "json"], capsys)
    assert len([e for e in report["effects"] if e["outcome"] == "score"]) == 3 and report["noise_floor"] is not None
    assert analyzed["effects"] == report["effects"]
    assert analyzed["noise_floor"] == pytest.approx(report["noise_floor"])
    assert analyzed["answer"]["findings"] == report["answer"]["findings"]
    for words in ("undetermined", "negligible", "too_few_trials", "training_findings"):
        assert analyzed["answer"][words] == report["answer"][words]


def test_an_optuna_style_csv_is_analysed(tmp_path, capsys):
    path = tmp_path / "optuna.csv"
    _foreign(np.random.default_rng(0)).to_csv(path, index=False)
    out = _json(["analyze", str(path), "--objective", "value", "--direction", "max", "--log", "lr", "--question",
                 "head", "--format", "json"], capsys)
    by_name = {}
    for record in out["effects"]:             # a range's first record: q75 vs q25 (then middle vs ends)
        by_name.setdefault(record["hyperparameter"], record)
    assert set(by_name) == {"head", "lr", "units"}          # params_ taken off; datetime, user_attrs left out
    head = by_name["head"]
    # gap, seen in more trials here, is the reference (the most frequent value): dense is 0.03 below it.
    assert (head["value"], head["reference"], head["verdict"]) == ("dense", "gap", "effect")
    assert head["n"] + head["n_reference"] == 39 and head["n_reference"] > head["n"]    # the FAIL row left out
    assert head["ci95"][1] < 0 and abs(head["difference"] + 0.03) < 0.015
    assert by_name["lr"]["value"].startswith("q75 vs q25 (")
    assert out["answer"]["findings"][0].startswith("head dense vs gap: value -0.0")
    capsys.readouterr()
    assert main(["analyze", str(path), "--objective", "value"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("## The answer") and "Finding: head dense vs gap" in text.replace("**", "")
    assert "not in the trials table" in text


def test_the_python_api_returns_the_json_records_and_prints_the_answer(tmp_path):
    table = _foreign(np.random.default_rng(1))
    found = hpstudy.analyze(table, "value", log=["lr"])
    assert found.effects == json.loads(found.render("json"))["effects"]
    assert list(dict.fromkeys(r["hyperparameter"] for r in found.effects)) == ["head", "lr", "units"]
    assert str(found).startswith("Question: ") and "Finding: head " in str(found)
    assert found._repr_markdown_().startswith("## The answer")
    assert "<html" in found.render("html")
    named = hpstudy.analyze(table, "value", hyperparameters=["params_head", "lr"], log=["params_lr"])   # either
    assert list(dict.fromkeys(r["hyperparameter"] for r in named.effects)) == ["head", "lr"]
    # A CSV file and its repeats, by path.
    table.to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"trial_id": ["0", "0", "1", "1"], "seed": [1, 2, 1, 2], "value": [0.80, 0.81, 0.79, 0.80]}).to_csv(
        tmp_path / "r.csv", index=False)
    from_file = hpstudy.analyze(tmp_path / "t.csv", "value", log=["lr"], repeats=tmp_path / "r.csv")
    assert from_file.study.effects.noise_floor == pytest.approx(np.sqrt(0.00005))
    assert [r["difference"] for r in from_file.effects] == pytest.approx([r["difference"] for r in found.effects])


def test_the_direction_decides_the_best_configuration_not_the_differences():
    table = _foreign(np.random.default_rng(2))
    up, down = hpstudy.analyze(table, "value", direction="max"), hpstudy.analyze(table, "value", direction="min")
    assert up.effects == down.effects
    scores = table["value"].dropna()
    assert up.answer.best_trial == str(table.loc[scores.idxmax(), "number"])
    assert down.answer.best_trial == str(table.loc[scores.idxmin(), "number"])
    head = next(e for e in down.study.effects.effects if e.name == "head")
    assert head.table["best"].tolist() == table.dropna(subset=["value"]).groupby("params_head")["value"].min().tolist()
    assert down.study.effects.minimize and not up.study.effects.minimize


def test_the_question_is_ranked_at_equal_budgets_in_the_answer_the_json_and_by_direction():
    # gap is worth +0.03 (3 noise sds): ahead at every budget when higher is better, behind when lower is.
    table = _foreign(np.random.default_rng(3))
    up = hpstudy.analyze(table, "value", question=["head"], log=["lr"], direction="max")
    assert up.answer.budget == ["head gap has the best expected score at every equal budget from 1 to "
                                f"{min(up.study.effects.effects[0].table['count'])} trials per value; at "
                                f"{min(up.study.effects.effects[0].table['count'])} trials per value its 95% band "
                                "clears the others'"]
    assert f"At equal budgets: {up.answer.budget[0]}." in str(up)
    points = json.loads(up.render("json"))["budget"]
    gap = [p for p in points if p["value"] == "gap"]
    assert {p["hyperparameter"] for p in points} == {"head"} and [p["trials"] for p in gap] == list(
        range(1, gap[0]["of"] + 1))
    assert gap[-1]["expected"] == pytest.approx(table.loc[table.params_head == "gap", "value"].max())
    down = hpstudy.analyze(table, "value", question=["head"], log=["lr"], direction="min")
    assert down.answer.budget[0].startswith("head dense has the best expected score at every equal budget")
    assert "The question at equal budgets: head" in up.render("markdown")


def test_text_cells_become_the_values_they_spell():
    table = analyze_module.typed(pd.DataFrame({"a": ["32", "64", None], "b": ["1.0", "2.0", "0.5"],
                                               "c": ["True", "false", None], "d": ["gap", "3", "dense"],
                                               "trial_id": ["01", "02", "03"]}))
    assert str(table["a"].dtype) == "Int64" and table["a"].isna().tolist() == [False, False, True]
    assert table["b"].dtype == float and table["b"].tolist() == [1.0, 2.0, 0.5]
    assert table["c"].tolist()[:2] == [True, False] and pd.isna(table["c"].iloc[2])
    assert table["d"].tolist() == ["gap", "3", "dense"] and table["trial_id"].tolist() == ["01", "02", "03"]


def test_analyze_imports_no_keras(tmp_path):
    path = tmp_path / "t.csv"
    _foreign(np.random.default_rng(3)).to_csv(path, index=False)
    code = ("import sys, pandas, hpstudy\n"
            f"found = hpstudy.analyze(pandas.read_csv({str(path)!r}), 'value', log=['lr'])\n"
            "assert found.effects\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'keras_tuner', 'jax')]\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
