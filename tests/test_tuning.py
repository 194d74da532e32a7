"""The keras-tuner adapter: checks that need Keras, a real search, and resume."""
import csv
import json

import numpy as np
import pytest

import hpstudy
from hpstudy import data, models
from hpstudy.study import spec
from hpstudy.engine import training
from hpstudy.errors import ResultsError, SpecError
from hpstudy.engine import checks
from hpstudy.engine.checks import build_each, validation_builds
from hpstudy.results.layout import Layout
from hpstudy.results.trials import read_trials
from tests.conftest import TINY, write_study

BASE = "name: s\n"


def check(text):
    return checks.check(spec.loads(text, source="studies/s.yaml"))


@pytest.mark.parametrize("text, fragments", [
    (BASE + "data: {dataset: cifar1}\n", ["data.dataset", "did you mean 'cifar10'", "known: cifar10, cinic10, digits, folder, npz"]),
    (BASE + "data: {dataset: cifar10, image_size: 64}\n", ["data.image_size", "applies to cinic10, folder"]),
    (BASE + "model: {builder: plain_cn}\n", ["model.builder", "did you mean 'plain_cnn'"]),
    (BASE + "model: {dropuot: 0.1}\n", ["model.dropuot", "did you mean 'dropout'"]),
    (BASE + "model: {dropout: 1.0}\n", ["model.dropout", "[0, 1)"]),
    (BASE + "model: {dropout: {tune: choice, values: [0.2, 1.5]}}\n", ["model.dropout.values[1]"]),
    (BASE + "model: {head: flat}\n", ["model.head", "allowed: dense, gap"]),
    (BASE + "model: {batch_norm: {tune: int, min_value: 0, max_value: 1}}\n", ["model.batch_norm.tune"]),
    (BASE + "model: {conv_layers: {tune: float, min_value: 1, max_value: 3}}\n", ["model.conv_layers.tune"]),
    (BASE + "search: {tuner: hyperband, options: {factr: 3}}\n", ["search.options.factr", "did you mean 'factor'"]),
    (BASE + "search: {tuner: hyperband, options: {factor: three}}\n", ["search.options.factor", "default 3"]),
    (BASE + "search: {tuner: random, options: {max_epochs: 3}}\n", ["search.options.max_epochs", "random tuner"]),
    (BASE + "search: {tuner: hyperband, max_trials: 5}\n", ["search.max_trials", "hyperband"]),
    (BASE + "search: {tuner: grid}\n", ["search.tuner", "at least one searched value"]),
    (BASE + "search: {tuner: hyperband}\ntrain: {epochs: {tune: choice, values: [2, 4]}}\n",
     ["train.epochs", "hyperband decides"]),
    (BASE + "search: {tuner: bayesian, options: {num_initial_points: two}}\n", ["search.options.num_initial_points"]),
])
def test_check_errors_name_file_and_key(text, fragments):
    with pytest.raises(SpecError) as caught:
        check(text)
    message = str(caught.value)
    assert message.startswith("studies/s.yaml: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_every_optimizer_trains_a_step(name, weight_decay):
    train = {"optimizer": name, "learning_rate": 1e-3, "weight_decay": weight_decay, "momentum": 0.9,
             "nesterov": True}
    model = models.build("plain_cnn", (32, 32, 3), 10, conv_layers=1, filters=4, dense_units=8)
    model.compile(optimizer=training.make_optimizer(train), loss="sparse_categorical_crossentropy")
    assert np.isfinite(model.train_on_batch(np.zeros((2, 32, 32, 3), "uint8"), np.array([0, 1])))
    assert model.optimizer.weight_decay == (weight_decay or model.optimizer.weight_decay)


def test_tuner_options_keras_tuner_refuses_are_a_spec_error(tmp_path):
    text = TINY.format(name="hb").replace("tuner: grid", "tuner: hyperband\n  options: {factor: 1}")
    with pytest.raises(SpecError, match=r"hb.yaml: search.options: the hyperband tuner refused them"):
        hpstudy.run(write_study(tmp_path, text, name="hb"), results_dir=tmp_path)


def test_a_search_whose_trials_all_fail_stops_with_one_line(tmp_path):
    text = TINY.format(name="tiny_cap").replace(
        "tuner: grid", "tuner: grid\n  max_failed_trials: 2\n  options: {max_model_size: 10}")
    with pytest.raises(hpstudy.HpstudyError, match=r"stopped after 2 failed trials in all \(search.max_failed_trials: 2\); "
                                                   r".*Oversized model") as err:
        hpstudy.run(write_study(tmp_path, text, name="tiny_cap"), results_dir=tmp_path)
    assert "\n" not in str(err.value)
    table = hpstudy.load_study(tmp_path / "tiny_cap").trials
    assert list(table.status) == ["FAILED", "FAILED"] and table.message.str.contains("Oversized model").all()


def test_api_overrides_are_checked(tmp_path):
    with pytest.raises(SpecError, match="search.max_trials"):
        hpstudy.run(write_study(tmp_path), results_dir=tmp_path, max_trials=0)


def test_check_fills_builder_defaults():
    study = check(BASE + "model: {dropout: 0.25}\n")
    assert study.model.options["dropout"] == 0.25
    assert study.model.options["head"] == "dense"
    assert study.to_dict()["model"]["kernel_size"] == 3


def test_tuner_options_are_passed_through():
    study = check(BASE + "search: {tuner: bayesian, options: {num_initial_points: 2, alpha: 0.001}}\n")
    assert study.search.options == {"num_initial_points": 2, "alpha": 0.001}


def test_impossible_model_in_the_search_space_is_refused_before_training():
    study = check(BASE + "model: {padding: valid, kernel_size: 7, conv_layers: {tune: choice, values: [2, 3]}}\n")
    with pytest.raises(SpecError, match=r"studies/s.yaml: model.kernel_size: .*\(with model.conv_layers=3\)"):
        build_each(study, (32, 32, 3), 10)


def test_validation_builds_cover_every_value():
    study = check(BASE + "model:\n  conv_layers: {tune: choice, values: [1, 2]}\n"
                  "  batch_norm: {tune: boolean}\n  dropout: {tune: float, min_value: 0.1, max_value: 0.4}\n")
    assert len(validation_builds(study)) == 8
    assert build_each(study, (32, 32, 3), 10) == 8


def test_search_writes_a_complete_results_folder(finished_study):
    folder, _ = finished_study
    layout = Layout(folder)
    for path in (layout.spec, layout.env, layout.table, layout.best_model, layout.best):
        assert path.exists(), path
    env = json.loads(layout.env.read_text())
    assert env["backend"] == "tensorflow" and env["keras"] and env["keras-tuner"] and env["python"]
    table = read_trials(layout)
    assert list(table.trial_id) == ["0", "1"]
    assert set(table["model.dropout"]) == {0.0, 0.5}
    assert (table.status == "COMPLETED").all()
    assert (table.epochs_run == 2).all() and (table.params > 0).all() and (table.seconds > 0).all()


def test_trials_table_numbers_match_each_trials_history(finished_study):
    folder, _ = finished_study
    layout = Layout(folder)
    for row in read_trials(layout).itertuples():
        with (layout.trial(row.trial_id) / "history_0.csv").open() as f:
            history = list(csv.DictReader(f))
        best = history[int(row.best_epoch) - 1]
        assert float(best["val_accuracy"]) == pytest.approx(row.val_accuracy)
        assert float(best["loss"]) == pytest.approx(row.loss)
        assert row.score == pytest.approx(max(float(h["val_accuracy"]) for h in history))


def test_best_model_is_compiled_and_its_test_metrics_are_true(finished_study):
    folder, _ = finished_study
    study = hpstudy.load_study(folder)
    table = study.trials
    assert study.best["trial_id"] == table.loc[table.score.idxmax(), "trial_id"]
    model = hpstudy.load_best(folder)
    stored = study.spec
    dataset = data.load("digits", subset={"train": 12, "validation": 4, "test": 6}, seed=stored.data.seed,
                        validation_split=stored.data.validation_split)
    loss, accuracy = model.evaluate(dataset.test.x, dataset.test.y, verbose=0)
    assert accuracy == pytest.approx(study.best["test_accuracy"], abs=1e-6)
    assert model.predict(dataset.test.x[:3], verbose=0).shape == (3, 10)
    assert study.best_hyperparameters.keys() == {"model.dropout"}
    assert len(study.history(study.best["trial_id"])) == 2


@pytest.mark.slow
def test_resume_runs_only_new_trials_and_refuses_a_changed_study(tmp_path):
    study_path = write_study(tmp_path)
    out = tmp_path / "results"
    hpstudy.run(study_path, results_dir=out, max_trials=1)
    first = out / "tiny" / "tuner" / "trial_0" / "trial.json"
    stamp = first.read_text(), first.stat().st_mtime_ns

    study = hpstudy.run(study_path, results_dir=out)          # the rest of the grid
    assert list(study.trials.trial_id) == ["0", "1"]
    assert (first.read_text(), first.stat().st_mtime_ns) == stamp

    hpstudy.run(study_path, results_dir=out)                  # nothing left: nothing re-run
    assert len(hpstudy.load_study(out / "tiny").trials) == 2
    assert (first.read_text(), first.stat().st_mtime_ns) == stamp

    with pytest.raises(ResultsError, match=r"differs from .*tiny.yaml in train.epochs; run with --overwrite"):
        hpstudy.run(study_path, results_dir=out, epochs=3)
    study = hpstudy.run(study_path, results_dir=out, epochs=3, max_trials=1, overwrite=True)
    assert list(study.trials.trial_id) == ["0"] and study.spec.train.epochs == 3


@pytest.mark.slow
def test_batch_size_and_schedule_are_searched_in_fit(tmp_path):
    text = TINY.format(name="fitted").replace("batch_size: 32", "batch_size: {tune: choice, values: [8, 16]}")
    text = text.replace("epochs: 2", "epochs: 2\n  lr_schedule: step\n  lr_decay_epochs: 1\n  lr_decay_factor: 0.5")
    text = text.replace("dropout: {tune: choice, values: [0.0, 0.5]}", "dropout: 0.0")
    study = hpstudy.run(write_study(tmp_path, text, name="fitted"), results_dir=tmp_path)
    assert set(study.trials["train.batch_size"]) == {8, 16}
    history = study.history("0")
    assert history.learning_rate.tolist() == pytest.approx([1e-3, 5e-4])


@pytest.mark.slow
def test_a_killed_run_resumes_and_reruns_only_the_interrupted_trial(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    # Trial 0 is short; trial 1 has enough epochs that the kill lands inside it.
    text = TINY.format(name="killed").replace("dropout: {tune: choice, values: [0.0, 0.5]}", "dropout: 0.0")
    study_path = write_study(tmp_path, text.replace("epochs: 2", "epochs: {tune: choice, values: [2, 40]}"),
                             name="killed")
    command = [sys.executable, "-m", "hpstudy.cli", "run", str(study_path), "--results-dir", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = tmp_path / "killed" / "trials" / "1" / "history_0.csv"
    deadline = time.time() + 240
    while not history.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    first = next((tmp_path / "killed" / "tuner").glob("trial_*0/trial.json"))   # keras-tuner pads the id
    assert json.loads(first.read_text())["status"] == "COMPLETED"
    stamp = first.stat().st_mtime_ns

    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("trial    1  ")          # only the interrupted trial ran again
    table = hpstudy.load_study(tmp_path / "killed").trials
    assert list(table.trial_id) == ["0", "1"] and (table.status == "COMPLETED").all()
    assert first.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_tensorboard_logs_each_trial_with_hparams(tmp_path):
    text = TINY.format(name="logged").replace("search:", "callbacks: {tensorboard: true}\nsearch:")
    hpstudy.run(write_study(tmp_path, text, name="logged"), results_dir=tmp_path, max_trials=1)
    logs = tmp_path / "logged" / "tensorboard" / "0" / "execution0"
    assert logs.is_dir() and any(logs.rglob("events.out.tfevents.*"))
