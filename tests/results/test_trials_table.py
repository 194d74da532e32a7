"""The trials table a run keeps in memory (`results.trials_table.TrialsTable`): after every trial end trials.csv is
byte for byte what `trials.write_table` writes from every file, while only the trials that changed are read again;
a damaged record is the same error; a resumed process reads every trial file once. The folders are written as a
run writes them (keras-tuner's records, hpstudy's execution records and histories, through `results.files`)."""
import json
from types import SimpleNamespace

import keras_tuner as kt
import pandas as pd
import pytest

from hpstudy import files
from hpstudy.engine.search.distributed.roles import Role
from hpstudy.engine.search.tuner import StudyTuner
from hpstudy.errors import ResultsError
from hpstudy.results import folder, trials, trials_table
from hpstudy.results.layout import Layout, trial_number
from hpstudy.results.trials_table import TrialsTable
from hpstudy.study import spec
from hpstudy.text import csv_text

STUDY = """
name: table
data: {dataset: digits}
model:
  builder: plain_cnn
  conv_layers: {tune: int, min_value: 1, max_value: 3}
  dropout: {tune: choice, values: [0.0, 0.5]}
search: {tuner: random, max_trials: 20, seed: 0}
"""


def record(layout, tuner_id, status, *, score=None, values=None, message=None):
    """keras-tuner's record of a trial, written as StudyOracle._save_trial writes it."""
    hp = kt.HyperParameters()
    hp.Int("model.conv_layers", 1, 3)
    hp.Choice("model.dropout", [0.0, 0.5])
    hp.values.update(values if values is not None else {"model.conv_layers": 2, "model.dropout": 0.5})
    trial = kt.engine.trial.Trial(hp, trial_id=tuner_id, status=status, message=message)
    if score is not None:
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
            trial.metrics.register(name, direction="min" if "loss" in name else "max")
            trial.metrics.update(name, score if "accuracy" in name else 1 - score, step=1)
        trial.score, trial.best_step = score, 1
    files.write_text(layout.record_of(tuner_id), json.dumps(trial.get_state()))


def executed(layout, tuner_id, epochs=2, score=0.5):
    """A trial's history and execution record, as TrialRecorder writes them."""
    number = trial_number(tuner_id)
    rows = [{"epoch": e + 1, "accuracy": score, "loss": 1 - score, "val_accuracy": score, "val_loss": 1 - score,
             "seconds": 1.0 + e} for e in range(epochs)]
    files.write_text(layout.history(number), csv_text(pd.DataFrame(rows)))
    files.write_json(layout.execution(number), {"execution": 0, "epochs_run": epochs, "seconds": 2.5, "params": 99,
                                                "trainable_params": 99, "flops": 1234, "history": "history_0.csv",
                                                "worker": None, "last": {"val_accuracy": score, "loss": 1 - score}})


def end(layout, tuner_id, score, status="COMPLETED", **kwargs):
    executed(layout, tuner_id, score=score)
    record(layout, tuner_id, status, score=score if status == "COMPLETED" else None, **kwargs)


@pytest.fixture
def layout(tmp_path):
    return folder.prepare(tmp_path / "results" / "table", spec.loads(STUDY))


def same_as_write_table(layout, table: pd.DataFrame) -> None:
    """trials.csv as the kept table wrote it equals, byte for byte, what write_table writes from every file."""
    kept = layout.table.read_bytes()
    assert kept == csv_text(table).encode()
    rebuilt = trials.write_table(layout)
    assert layout.table.read_bytes() == kept
    pd.testing.assert_frame_equal(table, rebuilt)


def test_the_kept_table_writes_what_write_table_writes_after_each_trial_end(layout):
    table = TrialsTable(layout)
    same_as_write_table(layout, table.write())                            # no trial yet
    known = ["00"]
    record(layout, "00", "RUNNING")                                       # created: the oracle knows it, running
    executed(layout, "00", epochs=1)
    same_as_write_table(layout, table.write(known=known))
    end(layout, "00", 0.61)                                               # it ends
    same_as_write_table(layout, table.write(["00"], known=known))
    known += ["01", "02", "03"]
    end(layout, "01", 0.72, values={"model.conv_layers": None, "model.dropout": 0.0})   # an inactive integer
    end(layout, "02", 0.1, status="FAILED", message="Traceback ...\nValueError: boom")
    files.write_text(layout.failure("2"), "Traceback ...\nValueError: boom")
    record(layout, "03", "RUNNING")                                       # running beside them (a worker's)
    same_as_write_table(layout, table.write(["01", "02"], known=known))
    end(layout, "03", 0.1)                                                # ended, though not said to have: read
    same_as_write_table(layout, table.write([], known=known))             # again since it was running
    files.write_json(layout.pruned("1"), {"epoch": 1, "rule": "median", "reason": "below the median",
                                          "objective": "val_accuracy", "value": 0.72, "threshold": 0.8,
                                          "compared": ["0"]})
    end(layout, "00", 0.66)                                               # rewritten: a new score
    same_as_write_table(layout, table.write(["00", "01"], known=known))  # and trial 1 now PRUNED
    assert list(table.table().status) == ["COMPLETED", "PRUNED", "FAILED", "COMPLETED"]
    files.write_json(layout.best, {"results_format": 3, "trial_id": "0", "objective": "val_accuracy", "score": 0.66,
                                   "best_epoch": 2, "hyperparameters": {}, "test_loss": 0.4, "test_accuracy": 0.7,
                                   "class_names": [str(c) for c in range(10)]})
    same_as_write_table(layout, written := table.write(known=known))      # best.json: test metrics, `trained`
    assert written.test_accuracy.tolist()[0] == 0.7
    assert [None if value is pd.NA else value for value in written.trained] == [True, True, None, False]
    end(layout, "01", 0.2, status="FAILED", message="Traceback ...\nValueError: late")   # PRUNED -> FAILED
    same_as_write_table(layout, table.write(["01"], known=known))


@pytest.mark.parametrize("damage, why", [(b'{"trial_id": "01", "hyperpa', "is corrupt (not valid JSON"),
                                         (b'{"trial_id": "01", "status": "COMPLETED", "score": [1]}', "score")])
def test_a_damaged_record_is_the_error_write_table_gives(layout, damage, why):
    end(layout, "00", 0.6)
    end(layout, "01", 0.7)
    table = TrialsTable(layout)
    table.write(["00", "01"], known=["00", "01"])
    files.write_bytes(layout.record_of("01"), damage)
    with pytest.raises(ResultsError) as kept:
        table.write(["01"], known=["00", "01"])
    with pytest.raises(ResultsError) as rebuilt:
        trials.write_table(layout)
    assert str(kept.value) == str(rebuilt.value) and why in str(kept.value)
    assert str(layout.record_of("01")) in str(kept.value)


def test_a_resumed_process_reads_every_trial_file_once_then_only_what_changed(layout, monkeypatch):
    for number in range(6):
        end(layout, f"{number:02d}", 0.5 + number / 100)
    reads, listings, parses = [], [], []
    monkeypatch.setattr(trials, "read_tuner_trial", lambda path, read=trials.read_tuner_trial: reads.append(path)
                        or read(path))
    monkeypatch.setattr(Layout, "tuner_trials", lambda self, listed=Layout.tuner_trials: listings.append(1)
                        or listed(self))
    monkeypatch.setattr(trials_table, "study_of", lambda layout, parse=trials_table.study_of: parses.append(1)
                        or parse(layout))
    known = [f"{number:02d}" for number in range(6)]
    table = TrialsTable(layout)
    first = table.update(known=known)               # the process's first: every trial file, one listing
    assert (len(reads), len(listings), len(parses)) == (6, 1, 1) and len(first) == 6
    for number in range(6, 9):                      # then each trial end reads its own record only
        known.append(f"{number:02d}")
        end(layout, known[-1], 0.6)
        before = len(reads)
        written = table.write([known[-1]], known=known)
        assert reads[before:] == [layout.record_of(known[-1])]
    assert (len(listings), len(parses)) == (1, 1)
    monkeypatch.undo()
    same_as_write_table(layout, written)


def test_a_worker_writes_no_table_and_deletes_no_checkpoint(layout):
    used = []
    tuner = SimpleNamespace(role=Role("worker", "127.0.0.1", 7940, worker_id="w1"), layout=layout,
                            progress=SimpleNamespace(trial_end=lambda *a: None),
                            retention=SimpleNamespace(prune=lambda *a, **k: used.append("retention")),
                            trials_table=SimpleNamespace(write=lambda *a, **k: used.append("table")),
                            oracle=SimpleNamespace(trials={}))
    ended = SimpleNamespace(trial_id="00", status="COMPLETED", hyperparameters=kt.HyperParameters(), score=0.5,
                            message=None)
    StudyTuner._record_ended(tuner, [ended])
    assert used == [] and not layout.table.exists()
    tuner.role = Role("chief", "127.0.0.1", 7940)
    StudyTuner._record_ended(tuner, [ended])
    tuner.role = None
    StudyTuner._record_ended(tuner, [ended])
    assert used == ["retention", "table"] * 2
