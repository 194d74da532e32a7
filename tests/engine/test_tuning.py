"""The keras-tuner adapter: checks that need Keras, a real search, and resume."""
import csv
import json

import keras
import numpy as np
import pytest

import hpstudy
from hpstudy import cli, data, models
from hpstudy.engine.search import checks
from hpstudy.engine.search.checks import build_each, validation_builds
from hpstudy.engine.training.compile import compile_model
from hpstudy.errors import HpstudyError, ResultsError, SpecError
from hpstudy.models import facts
from hpstudy.results.layout import Layout
from hpstudy.results.trials import read_repeats, read_trials
from hpstudy.study import spec
from tests.helpers import HPSTUDY_COMMAND, TINY, epochs_study, write_study

BASE = "name: s\n"


def check(text):
    return checks.check(spec.loads(text, source="studies/s.yaml"))


@pytest.mark.parametrize("text, fragments", [
    (BASE + "data: {dataset: cifar1}\n",
     ["data.dataset", "did you mean 'cifar10'",
      "known: cifar10, cifar100, cinic10, digits, fashion_mnist, folder, mnist, npz"]),
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
    (BASE + "search: {tuner: hyperband}\n", ["search.tuner", "nothing is searched here (one configuration)"]),
    (BASE + "search: {tuner: grid, max_trials: 2}\n", ["search.max_trials", "one configuration, trained in one"]),
    (BASE + "search: {tuner: hyperband}\ntrain: {epochs: {tune: choice, values: [2, 4]}}\n",
     ["train.epochs", "hyperband decides"]),
    (BASE + "search: {tuner: bayesian, options: {num_initial_points: two}}\n", ["search.options.num_initial_points"]),
    (BASE + "search: {checkpoint_epoch: last}\ncallbacks: {early_stopping: {patience: 2}}\n",
     ["search.checkpoint_epoch", "restore_best_weights: false"]),
])
def test_check_errors_name_file_and_key(text, fragments):
    with pytest.raises(SpecError) as caught:
        check(text)
    message = str(caught.value)
    assert message.startswith("studies/s.yaml: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# The class each optimizer name compiles to, and the momentum and nesterov it keeps (Adam and AdamW take neither).
OPTIMIZERS = {"adam": ("Adam", None, None), "adamw": ("AdamW", None, None), "sgd": ("SGD", 0.8, True),
              "rmsprop": ("RMSprop", 0.8, None)}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_every_optimizer_compiles_as_set_and_trains_a_step(name, weight_decay):
    # Momentum and nesterov differ from Keras's defaults (0.0, False), so a setting that is dropped shows.
    train = {"optimizer": name, "learning_rate": 3e-3, "weight_decay": weight_decay, "momentum": 0.8,
             "nesterov": True, "label_smoothing": 0.0}
    model = models.build("plain_cnn", (32, 32, 3), 10, conv_layers=1, filters=4, dense_units=8)
    compile_model(model, train)
    optimizer = model.optimizer
    cls, momentum, nesterov = OPTIMIZERS[name]
    assert type(optimizer).__name__ == cls and type(optimizer).__module__.startswith("keras")
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(3e-3)
    assert optimizer.weight_decay == weight_decay          # AdamW's own default is 0.004: 0.0 must reach it too
    assert getattr(optimizer, "momentum", None) == momentum and getattr(optimizer, "nesterov", None) == nesterov
    assert np.isfinite(model.train_on_batch(np.zeros((2, 32, 32, 3), "uint8"), np.array([0, 1]))[0])


def test_tuner_options_keras_tuner_refuses_are_a_spec_error(tmp_path):
    text = TINY.format(name="hb").replace("tuner: grid", "tuner: hyperband\n  options: {factor: 1}")
    with pytest.raises(SpecError, match=r"hb.yaml: search.options: the hyperband tuner refused them"):
        hpstudy.run(write_study(tmp_path, text, name="hb"), results_dir=tmp_path)


def test_a_search_whose_trials_all_fail_stops_with_one_line(tmp_path):
    text = TINY.format(name="tiny_cap").replace(
        "tuner: grid", "tuner: grid\n  max_failed_trials: 2\n  options: {max_model_size: 10}")
    stopped = r"stopped after 2 failed trials in all \(search.max_failed_trials: 2\); .*Oversized model"
    with pytest.raises(hpstudy.HpstudyError, match=stopped) as err:
        hpstudy.run(write_study(tmp_path, text, name="tiny_cap"), results_dir=tmp_path)
    assert "\n" not in str(err.value)
    table = hpstudy.load_study(tmp_path / "tiny_cap").trials
    assert list(table.status) == ["FAILED", "FAILED"] and table.message.str.contains("Oversized model").all()


def test_api_overrides_are_checked(tmp_path):
    with pytest.raises(HpstudyError, match="--max-trials: expected a positive integer, got '0'"):
        hpstudy.run(write_study(tmp_path), results_dir=tmp_path, max_trials=0)     # the command line's words


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


# One fixed configuration: nothing searched, batch norm so that its moving statistics are not trainable.
ONE = TINY.replace("dropout: {{tune: choice, values: [0.0, 0.5]}}", "batch_norm: true").replace("epochs: 2",
                                                                                             "epochs: 1")


@pytest.mark.slow
def test_one_fixed_configuration_is_one_trial_confirmed_resumed_and_reported(tmp_path, capsys):
    text = ONE.format(name="baseline") + "  confirm: {top: 1, seeds: 2}\n"
    path = write_study(tmp_path, text, name="baseline")
    assert not check(text).tunables()
    assert cli.main(["validate", str(path)]) == 0
    assert "searched: none (one configuration, trained in one trial)" in capsys.readouterr().out
    study = hpstudy.run(path, results_dir=tmp_path / "results")
    assert list(study.trials.trial_id) == ["0"] and len(read_repeats(study.layout)) == 2
    row = study.trials.iloc[0]
    best = hpstudy.load_best(study.path)
    assert row.trainable_params == facts.trainable_params(best) == row.params - 2 * 4    # 4 filters' statistics
    trial = study.layout.tuner_trial("0") / "trial.json"
    stamp = trial.stat().st_mtime_ns
    again = hpstudy.run(path, results_dir=tmp_path / "results")         # finished: no second trial
    assert len(again.trials) == 1 and len(read_repeats(again.layout)) == 2 and trial.stat().st_mtime_ns == stamp
    capsys.readouterr()
    for form, name in (("markdown", "report.md"), ("html", "report.html")):
        assert cli.main(["report", str(study.path), "--format", form, "--output", str(tmp_path / name),
                         "--best", "0"]) == 0
        text = (tmp_path / name).read_text()
        assert "What val_accuracy does this one configuration reach (nothing searched: a baseline)?" in text
        assert "Nothing searched:" in text and "one configuration (a baseline), so there are no effects and no" in text
        assert "no tuned hyperparameters" in text and "seeds" in text


# Three epochs at a rate too high for them: the validation loss is best at epoch 2, not at the last.
LAST = ONE.replace("epochs: 1", "epochs: 3\n  learning_rate: 0.3").replace("batch_size: 32", "batch_size: 16").replace(
    "subset: {{train: 12, validation: 4, test: 6}}", "subset: {{train: 60, validation: 30, test: 6}}").replace(
    "batch_norm: true", "dropout: 0.0") + "  objective: val_loss\n  checkpoint_epoch: last\n"


@pytest.mark.slow
def test_checkpoint_epoch_last_keeps_and_evaluates_the_last_epochs_weights(tmp_path):
    from hpstudy.engine.search.hypermodel import load_data
    from hpstudy.trained import evaluate, models as results_models
    study = hpstudy.run(write_study(tmp_path, LAST.format(name="last"), name="last"), results_dir=tmp_path / "r")
    row, best = study.trials.iloc[0], study.best
    assert row.best_epoch < row.epochs_run == 3         # the case where the two differ
    assert (best["checkpoint_epoch"], best["weights_epoch"], best["best_epoch"]) == ("last", 3, row.best_epoch)
    # Still ranked by the objective at the best epoch.
    assert best["score"] == pytest.approx(row.val_loss) != pytest.approx(row.last_val_loss, abs=1e-5)
    validation = load_data(study.spec).validation
    for model in (hpstudy.load_best(study.path), results_models.trial_model(study.layout, "0")):
        scores = model.evaluate(validation.x, validation.y, verbose=0, return_dict=True)
        assert scores["loss"] == pytest.approx(row.last_val_loss, abs=1e-5)
        assert scores["accuracy"] == pytest.approx(row.last_val_accuracy, abs=1e-6)
    evaluated = evaluate.evaluate(study.path, tmp_path / "figures", top=1).models[0]
    assert (evaluated.checkpoint_epoch, evaluated.weights_epoch) == ("last", 3)
    assert evaluated.test_loss == pytest.approx(best["test_loss"], abs=1e-5)


@pytest.mark.parametrize("tuner", ["random", "bayesian"])
def test_one_fixed_configuration_is_one_trial_with_any_tuner(tmp_path, tuner):
    text = ONE.format(name=tuner).replace("tuner: grid", f"tuner: {tuner}")
    study = hpstudy.run(write_study(tmp_path, text, name=tuner), results_dir=tmp_path)
    assert list(study.trials.trial_id) == ["0"] and list(study.trials.status) == ["COMPLETED"]


@pytest.mark.slow
def test_a_killed_run_resumes_and_reruns_only_the_interrupted_trial(tmp_path):
    import os
    import signal
    import subprocess
    import time

    # Trial 0 is short; trial 1 has enough epochs that the kill lands inside it.
    study_path = epochs_study(tmp_path, "killed", [2, 40])
    command = [*HPSTUDY_COMMAND, "run", str(study_path), "--results-dir", str(tmp_path)]
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
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    # A first value that is not 0, protobuf's default for a number left unset.
    text = TINY.format(name="logged").replace("search:", "callbacks: {tensorboard: true}\nsearch:").replace(
        "values: [0.0, 0.5]", "values: [0.25, 0.5]")
    study = hpstudy.run(write_study(tmp_path, text, name="logged"), results_dir=tmp_path, max_trials=1)
    logs = tmp_path / "logged" / "tensorboard" / "0" / "execution0"
    hparams = {}
    for path in logs.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    hparams[data.WhichOneof("data")] = data
    start = hparams["session_start_info"].session_start_info
    assert {name: value.number_value for name, value in start.hparams.items()} == {"model.dropout": 0.25}
    assert study.trials["model.dropout"].tolist() == [0.25] and start.group_name == "0"
    assert hparams["session_end_info"].session_end_info.status == api_pb2.STATUS_SUCCESS
    # Keras's own scalars beside them, per epoch, for training and validation.
    assert all(any((logs / split).glob("events.out.tfevents.*")) for split in ("train", "validation"))
