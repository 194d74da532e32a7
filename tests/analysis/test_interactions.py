"""The question's interactions (analysis.interactions): stratified contrasts "A | B=b", the interaction "A * B"
with its interval and verdict, "too few trials" for a thin stratum, their own Holm family, and where the report,
its JSON and its answer show them. Synthetic tables with known truth; no Keras; seconds."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from hpstudy.analysis import effects, interactions
from hpstudy.report import answer, pages, tables

NAMES = ["model.head", "model.dropout", "train.batch_size"]
QUESTION = ("model.head", "model.dropout")


def _crossed(seed=0, n=48, swing=0.02, sd=0.004, lr=False):
    """Dropout 0.5 vs 0.2: +swing with dense, -swing with gap; batch size irrelevant (a learning rate too)."""
    rng = np.random.default_rng(seed)
    head = np.tile(["dense", "gap"], n // 2)
    dropout = np.tile([0.2, 0.2, 0.5, 0.5], n // 4)
    table = pd.DataFrame({"trial_id": [str(i) for i in range(n)], "status": "COMPLETED", "model.head": head,
                          "model.dropout": dropout, "train.batch_size": rng.choice([32, 64], n)})
    sign = np.where(head == "dense", 1.0, -1.0) * np.where(dropout == 0.5, 0.5, -0.5)
    table["score"] = 0.8 + swing * sign + rng.normal(0, sd, n)
    if lr:
        table["train.learning_rate"] = 10 ** rng.uniform(-4, -2, n)
    return table


def _fx(table, names=NAMES, question=QUESTION, **kw):
    return effects.effects(table, names, "val_accuracy", question=question, with_importance=False, **kw)


def test_an_interaction_is_shown_with_each_stratum_s_effect_and_its_own_interval():
    fx = _fx(_crossed())
    by_name = {(c.hyperparameter, c.value): c for c in fx.interactions}
    dense, gap = by_name[("model.dropout | model.head=dense", 0.5)], by_name[("model.dropout | model.head=gap", 0.5)]
    assert dense.difference == pytest.approx(0.02, abs=0.005) and gap.difference == pytest.approx(-0.02, abs=0.005)
    assert dense.verdict == gap.verdict == "effect" and dense.reference == 0.2 and dense.n == 12
    product = by_name[("model.dropout * model.head", "0.5 vs 0.2 with gap")]
    assert product.reference == "with dense" and product.difference == pytest.approx(-0.04, abs=0.006)
    assert product.ci95[0] < product.difference < product.ci95[1] < 0 and product.verdict == "effect"
    assert {c.hyperparameter for c in fx.interactions} == {
        "model.dropout | model.head=dense", "model.dropout | model.head=gap", "model.head | model.dropout=0.2",
        "model.head | model.dropout=0.5", "model.dropout * model.head"}
    # The main-effects model sees no dropout effect: the two strata cancel.
    assert next(c for c in fx.main_contrasts() if c.hyperparameter == "model.dropout").verdict != "effect"
    [dependence] = fx.dependences
    assert dependence.sentence.startswith("model.dropout 0.5 vs 0.2 depends on model.head: +0.0")
    assert " with dense, -0.0" in dependence.sentence and dependence.sentence.endswith(": effect)")
    assert fx.contrasts()[-len(fx.interactions):] == fx.interactions


def test_without_an_interaction_the_strata_agree_and_nothing_is_found():
    fx = _fx(_crossed(swing=0.0))
    product = next(c for c in fx.interactions if " * " in c.hyperparameter)
    assert product.ci95[0] < 0 < product.ci95[1] and product.verdict != "effect"


def test_a_thin_stratum_has_too_few_trials():
    table = _crossed()
    table = table[~((table["model.head"] == "gap") & (table.index >= 8))].reset_index(drop=True)   # 4 gap trials
    fx = _fx(table)
    thin = [c for c in fx.interactions if c.hyperparameter == "model.dropout | model.head=gap"]
    assert thin and all(c.verdict == "too few trials" and "with model.head=gap" in c.note for c in thin)
    product = next(c for c in fx.interactions if " * " in c.hyperparameter)
    assert product.verdict == "too few trials" and product.note.startswith("n=")
    assert "too few trials with gap" in fx.dependences[0].sentence


def test_one_question_hyperparameter_has_no_interactions():
    assert _fx(_crossed(), question=("model.head",)).interactions == []
    assert _fx(_crossed(), question=()).dependences == []


def test_a_range_s_slope_is_compared_across_a_choice_but_never_stratified_by():
    fx = _fx(_crossed(swing=0.0, lr=True), names=[*NAMES, "train.learning_rate"],
             question=("model.head", "train.learning_rate"), ranges={"train.learning_rate": "log"})
    names = {c.hyperparameter for c in fx.interactions}
    assert names == {"train.learning_rate | model.head=dense", "train.learning_rate | model.head=gap",
                     "train.learning_rate * model.head"}
    product = next(c for c in fx.interactions if " * " in c.hyperparameter)
    assert product.value == "per 10x with gap" and product.ci95[0] < 0 < product.ci95[1]


def test_the_interactions_are_a_family_of_their_own_at_its_share():
    c = interactions.Contrast("a | b=x", "y", "z", 0.01, (0.001, 0.019), 10, 10, "effect", p_value=0.0004)
    held = interactions.family([c, interactions.dataclasses.replace(c, p_value=0.01)], None)
    assert [h.p_value for h in held] == [0.0004, 0.01]
    assert held[0].p_family == pytest.approx(0.0008 / interactions.SHARE) and held[0].verdict == "effect"
    assert held[1].verdict == "undetermined"        # its own interval excludes zero, but not after the family


def test_the_report_its_json_and_its_answer_show_an_interaction():
    table = _crossed()
    fx = _fx(table)
    study = SimpleNamespace(tunables=lambda: [SimpleNamespace(name=n) for n in NAMES], question=QUESTION)
    said = answer.answer_of("s", study, {}, table, fx)
    assert any(line.startswith("Finding: model.dropout 0.5 vs 0.2 depends on model.head") for line in said.lines())
    report = tables.Report(table, [tables.StudyReport("s", "s", "val_accuracy", fx, said, table)])
    section = next(s for s in tables.sections(report.studies[0])
                   if s.title == "Interactions among the question's hyperparameters")
    assert "model.dropout | model.head=gap" in set(section.table["hyperparameter"])
    main = next(s for s in tables.sections(report.studies[0]) if s.title.startswith("Effects, adjusted"))
    assert not main.table["hyperparameter"].str.contains(r"\|").any()
    records = json.loads(pages.render(report, "json"))["effects"]
    assert {"model.dropout | model.head=dense", "model.dropout * model.head"} <= {r["hyperparameter"] for r in records}
    assert "Interactions among the question" in pages.render(report, "markdown")
