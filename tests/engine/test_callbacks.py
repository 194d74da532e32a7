"""Learning-rate schedules, the study callbacks (deep-copyable, as keras-tuner needs) and the trial recorder."""
import copy
import csv
import json

import keras
import numpy as np
import pytest

from hpstudy.engine.training import callbacks, schedules
from hpstudy.results.layout import Layout
from hpstudy.study import spec

TRAIN = {"learning_rate": 0.1, "lr_schedule": "constant", "lr_decay_factor": 0.5, "lr_decay_epochs": 2,
         "lr_patience": 3, "lr_min": 0.001}


def test_step_decay():
    rule = schedules.StepDecay(0.1, 0.5, 2)
    assert [rule(e) for e in range(5)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_cosine_decay_runs_from_base_to_floor():
    rule = schedules.CosineDecay(0.1, 0.001, 10)
    assert rule(0) == pytest.approx(0.1)
    assert rule(5) == pytest.approx(0.0505)
    assert rule(10) == pytest.approx(0.001)


@pytest.mark.parametrize("name, kind", [("constant", None), ("step", keras.callbacks.LearningRateScheduler),
                                        ("cosine", keras.callbacks.LearningRateScheduler),
                                        ("plateau", keras.callbacks.ReduceLROnPlateau)])
def test_schedule_by_name(name, kind):
    made = schedules.schedule({**TRAIN, "lr_schedule": name}, epochs=10)
    assert [type(c) for c in made] == ([kind] if kind else [])


def test_study_callbacks_survive_deepcopy(tmp_path):
    cfg = spec.CallbacksSpec(early_stopping=spec.EarlyStopping(patience=2), terminate_on_nan=True, tensorboard=True)
    made = callbacks.study_callbacks(cfg, tmp_path)
    assert {type(c).__name__ for c in made} == {"EarlyStopping", "StopOnNonFiniteLoss", "TensorBoard"}
    copied = copy.deepcopy(made)
    assert copied[0].patience == 2


def test_step_schedule_changes_the_optimizer_rate():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    history = model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=3, verbose=0,
                        callbacks=schedules.schedule({**TRAIN, "lr_schedule": "step"}, epochs=3))
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05])


def test_trial_recorder_writes_history_and_record(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    for _ in range(2):   # two executions of one trial
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=3, verbose=0,
                  validation_data=(np.zeros((2, 2)), np.zeros((2, 1))),
                  callbacks=[copy.deepcopy(callbacks.TrialRecorder(Layout(tmp_path), "0"))])
    folder = Layout(tmp_path).trial("0")
    record = json.loads((folder / "execution_1.json").read_text())
    assert record["epochs_run"] == 3 and record["params"] == 3 and record["seconds"] > 0
    with (folder / "history_0.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]      # counted from 1, as Keras prints them
    assert {"loss", "val_loss", "seconds"} <= set(rows[0])
