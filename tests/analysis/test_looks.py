"""The stopping rule of `search.until: answered` over repeated looks (analysis.looks): Pocock's level per look,
and verdicts that hold at it."""
import pytest
from scipy import stats

from hpstudy.analysis import looks, statistics
from hpstudy.analysis.adjusted import Contrast
from hpstudy.analysis.effects import Effect
from hpstudy.engine.search.answered import Answered
from hpstudy.results.layout import Layout


@pytest.mark.parametrize("k, constant", [(2, 2.178), (4, 2.361), (5, 2.413), (10, 2.555)])
def test_each_look_is_held_to_pococks_boundary(k, constant):
    # Pocock's constants for a two-sided 5% test over k equally spaced looks (Jennison & Turnbull, table 2.1).
    assert looks.look_level(1) == statistics.LEVEL
    assert stats.norm.isf((1 - looks.look_level(k)) / 2) == pytest.approx(constant, abs=0.012)


def _effect(*contrasts):
    return Effect("model.head", False, None, None, list(contrasts), "model.head ...")


def _contrast(ci95, verdict, p_family, dof=None):
    return Contrast("model.head", "dense", "gap", sum(ci95) / 2, ci95, 8, 8, verdict, p_family=p_family, dof=dof)


def test_a_verdict_is_decisive_at_a_look_only_if_it_holds_at_that_looks_level():
    # 6 looks: 1.4% each (Pocock), where 95% would take 5%.
    assert looks.verdict_at(_effect(_contrast((0.01, 0.05), "effect", 0.02)), 0.01, 1) == "effect"
    assert looks.verdict_at(_effect(_contrast((0.01, 0.05), "effect", 0.02)), 0.01, 6) == "undetermined"
    assert looks.verdict_at(_effect(_contrast((0.01, 0.05), "effect", 0.01)), 0.01, 6) == "effect"
    # Negligible: the interval widened to 98.6% (x1.25) must still lie inside +-0.01.
    assert looks.verdict_at(_effect(_contrast((-0.008, 0.008), "negligible", 0.9)), 0.01, 1) == "negligible"
    assert looks.verdict_at(_effect(_contrast((-0.008, 0.008), "negligible", 0.9)), 0.01, 6) == "undetermined"
    assert looks.verdict_at(_effect(_contrast((-0.007, 0.007), "negligible", 0.9)), 0.01, 6) == "negligible"
    assert looks.verdict_at(_effect(_contrast((-0.03, 0.05), "undetermined", 0.5)), 0.01, 6) == "undetermined"


def test_an_interval_from_a_fit_is_widened_on_its_own_degrees_of_freedom():
    # A t interval on 4 dof widens by the t quantiles' ratio, more than the normal one: 98.6% / 95% is 1.50
    # against 1.25, so an interval of +-0.0078 stays inside +-0.01 read as normal, not read as t on 4 dof.
    normal, t4 = looks.widened((-1.0, 1.0), 6), looks.widened((-1.0, 1.0), 6, dof=4)
    assert t4[1] == pytest.approx(stats.t.isf((1 - looks.look_level(6)) / 2, 4) / stats.t.isf(0.025, 4))
    assert t4[1] > normal[1] + 0.05
    assert looks.widened((-1.0, 1.0), 6, dof=10_000)[1] == pytest.approx(normal[1], abs=1e-3)
    assert looks.verdict_at(_effect(_contrast((-0.0078, 0.0078), "negligible", 0.9)), 0.01, 6) == "negligible"
    assert looks.verdict_at(_effect(_contrast((-0.0078, 0.0078), "negligible", 0.9, dof=4)), 0.01, 6) == (
        "undetermined")


def test_the_last_line_says_which_verdict_missed_the_looks_level(tmp_path):
    rule = Answered(Layout(tmp_path), study=None, looks=6)
    rule.verdicts = {"model.head": "effect", "model.conv_layers": "negligible"}
    rule.held = {"model.head": "undetermined", "model.conv_layers": "negligible"}
    rule.sentences = {"model.head": "model.head dense vs gap: +0.03", "model.conv_layers": "model.conv_layers ..."}
    assert not rule.answered()
    assert rule.stopped_line(24, None) == (
        "search stopped: search.max_trials (24) spent with the question not answered (model.head dense vs gap: "
        "+0.03 (decisive at 95%, not at the 98.6% each of 6 looks needs)); more trials may settle it")
