"""Checkpoint retention (`engine.retention.Retention`): the checkpoints of ended trials outside the best `keep` are
deleted (pruned trials ranked after the completed ones; running trials, and a search's still-needed ones, kept),
at the paths keras-tuner writes them, without listing tuner/, and each trial end looks at the trials that changed
only. The oracle is keras-tuner's own with hpstudy's StudyOracle; the files are written where a run writes them."""
import keras_tuner as kt
import pytest

from hpstudy import files
from hpstudy.engine.search import adapter
from hpstudy.engine.search.retention import Retention
from hpstudy.results import folder
from hpstudy.results.layout import Layout
from hpstudy.study import spec

STUDY = """
name: kept
data: {dataset: digits}
model: {builder: plain_cnn, dropout: {tune: choice, values: [0.0, 0.5]}}
search: {tuner: random, max_trials: 20, seed: 0}
"""


@pytest.fixture
def layout(tmp_path):
    return folder.prepare(tmp_path / "results" / "kept", spec.loads(STUDY))


@pytest.fixture
def oracle():
    oracle_class = type("Oracle", (adapter.StudyOracle, kt.oracles.RandomSearchOracle), {})
    return oracle_class(objective=kt.Objective("val_accuracy", "max"), max_trials=20)


def add(oracle, layout, tuner_id, status, score=None, *, pruned=False):
    """A trial the oracle holds, with its checkpoint where keras-tuner writes it (pruned.json if `pruned`)."""
    hp = kt.HyperParameters()
    hp.Choice("model.dropout", [0.0, 0.5])
    trial = kt.engine.trial.Trial(hp, trial_id=tuner_id, status=status)
    trial.score = score
    oracle.trials[tuner_id] = trial
    files.write_bytes(layout.checkpoint_of(tuner_id), b"weights")
    if pruned:
        files.write_json(layout.pruned(tuner_id), {"epoch": 1, "rule": "median", "reason": "below"})
    return trial


def kept(layout):
    return sorted(path.parent.name for path in layout.tuner.glob("trial_*/checkpoint.weights.h5"))


def test_the_best_are_kept_the_pruned_after_the_completed_and_running_trials_untouched(oracle, layout):
    add(oracle, layout, "00", "COMPLETED", 0.5)
    add(oracle, layout, "01", "COMPLETED", 0.9, pruned=True)      # the highest score, but pruned: ranked after
    add(oracle, layout, "02", "COMPLETED", 0.7)
    add(oracle, layout, "03", "FAILED")
    add(oracle, layout, "04", "RUNNING")
    add(oracle, layout, "05", "COMPLETED", 0.6)
    retention = Retention(layout, 2)
    assert sorted(retention.prune(oracle)) == ["0", "1", "3"]
    assert kept(layout) == ["trial_02", "trial_04", "trial_05"]
    oracle.trials["04"].status, oracle.trials["04"].score = "COMPLETED", 0.8     # ends, the new best
    assert retention.prune(oracle) == ["5"]
    assert kept(layout) == ["trial_02", "trial_04"]
    assert Retention(layout, "all").prune(oracle) == [] and kept(layout) == ["trial_02", "trial_04"]


def test_a_trial_still_needed_is_kept_until_the_search_is_over(oracle, layout):
    add(oracle, layout, "00", "COMPLETED", 0.9)
    add(oracle, layout, "01", "COMPLETED", 0.5)
    oracle._retry_queue.append("01")            # queued to run again (1.4): its weights may be loaded
    retention = Retention(layout, 1)
    assert retention.prune(oracle) == [] and kept(layout) == ["trial_00", "trial_01"]
    assert retention.prune(oracle, search_over=True) == ["1"] and kept(layout) == ["trial_00"]


def test_a_trial_end_looks_at_the_trials_that_changed_and_never_lists_tuner(oracle, layout, monkeypatch):
    for number in range(8):
        add(oracle, layout, f"{number:02d}", "COMPLETED", 0.5 + number / 100)
    monkeypatch.setattr(Layout, "entries", lambda *a: pytest.fail("tuner/ listed"))
    looked = []
    monkeypatch.setattr(Layout, "checkpoint_of", lambda self, tuner_id, path=Layout.checkpoint_of:
                        looked.append(tuner_id) or path(self, tuner_id))
    retention = Retention(layout, 3)
    assert len(retention.prune(oracle)) == 5 and len(looked) == 5        # the first: every ended trial once
    for number in range(8, 11):                                           # then each a new trial, below the best
        add(oracle, layout, f"{number:02d}", "COMPLETED", 0.1)
        del looked[:]
        assert retention.prune(oracle) == [str(number)] and looked == [f"{number:02d}"]
    add(oracle, layout, "11", "COMPLETED", 0.99)                         # a new best: the third best goes
    del looked[:]
    assert retention.prune(oracle) == ["5"] and looked == ["05"]
    assert kept(layout) == ["trial_06", "trial_07", "trial_11"]


def test_a_trial_that_runs_again_has_its_new_checkpoint_deleted_once_it_ends_below_the_best(oracle, layout):
    add(oracle, layout, "00", "COMPLETED", 0.9)
    add(oracle, layout, "01", "FAILED")
    retention = Retention(layout, 1)
    assert retention.prune(oracle) == ["1"]
    add(oracle, layout, "01", "RUNNING")                 # run again (keras-tuner's retries): weights written anew
    assert retention.prune(oracle) == [] and kept(layout) == ["trial_00", "trial_01"]
    oracle.trials["01"].status, oracle.trials["01"].score = "COMPLETED", 0.4
    assert retention.prune(oracle) == ["1"] and kept(layout) == ["trial_00"]
