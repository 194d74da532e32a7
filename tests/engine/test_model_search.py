"""The model family as a hyperparameter, label smoothing, model facts and `hpstudy list models`."""
import json

import keras
import numpy as np
import pytest

import hpstudy
from hpstudy import cli, models
from hpstudy.engine.search import checks
from hpstudy.engine.search.checks import build_each, validation_builds
from hpstudy.engine.search.hypermodel import SpecHyperModel
from hpstudy.engine.training.compile import make_loss
from hpstudy.errors import SpecError
from hpstudy.models import facts, preprocess
from hpstudy.models.losses import SmoothedSparseCrossentropy
from hpstudy.study import spec
from tests.helpers import write_study

FAMILIES = """
name: {name}
data:
  dataset: digits
  subset: {{train: 12, validation: 4, test: 6}}
model:
  builder: {{tune: choice, values: [plain_cnn, lenet5]}}
  plain_cnn:
    conv_layers: 1
    filters: 4
    dense_units: 8
    dropout: {{tune: choice, values: [0.0, 0.5]}}
  lenet5: {{}}
train: {{epochs: 1, batch_size: 32, label_smoothing: 0.1}}
search: {{tuner: grid, seed: 1}}
"""


def check(text):
    return checks.check(spec.loads(text, source="s.yaml"))


def test_a_searched_builder_keeps_each_builders_options_apart():
    study = check(FAMILIES.format(name="f"))
    assert [t.name for t in study.tunables()] == ["model.builder", "model.plain_cnn.dropout"]
    assert study.model.options_of("lenet5")["activation"] == models.options("lenet5")["activation"][1]
    assert "conv_layers" not in study.model.options_of("lenet5")
    assert validation_builds(study) == [("plain_cnn", {"model.plain_cnn.dropout": 0.0}),
                                               ("plain_cnn", {"model.plain_cnn.dropout": 0.5}), ("lenet5", {})]


@pytest.mark.parametrize("model, fragment", [
    ("{builder: {tune: choice, values: [plain_cnn, vgg]}, dropout: 0.1}",
     "s.yaml: model.dropout: with a searched builder, options go under the name of the builder"),
    ("{builder: {tune: choice, values: [plain_cnn, vgg]}, vgg: 3}", "s.yaml: model.vgg: must be a mapping"),
    ("{builder: {tune: boolean}}", "s.yaml: model.builder.tune"),
    ("{builder: {tune: choice, values: [plain_cnn, vgq]}}", "s.yaml: model.builder.values: unknown builder 'vgq' "
                                                            "(did you mean 'vgg'?)"),
    ("{builder: {tune: choice, values: [plain_cnn, vgg]}, vgg: {blokcs: 2}}",
     "s.yaml: model.vgg.blokcs: unknown key (did you mean 'blocks'?)"),
    ("{builder: 7}", "s.yaml: model.builder: must be the name of a model builder"),
])
def test_searched_builder_errors(model, fragment):
    with pytest.raises(SpecError) as caught:
        check(f"name: s\nmodel: {model}\n")
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_model_errors_of_a_searched_builder_name_its_section():
    study = check("name: s\nmodel:\n  builder: {tune: choice, values: [plain_cnn, lenet5]}\n"
                  "  plain_cnn: {conv_layers: 6, kernel_size: 1}\n")
    with pytest.raises(SpecError, match=r"s.yaml: model.plain_cnn.conv_layers: 6 layers pool"):
        build_each(study, (32, 32, 3), 10)


@pytest.mark.slow
def test_family_search_end_to_end_leaves_inactive_options_blank(tmp_path):
    path = write_study(tmp_path, FAMILIES.format(name="fam"), name="fam")
    study = hpstudy.run(path, results_dir=tmp_path / "results")
    trials = study.trials.set_index("model.builder")
    assert sorted(trials.index) == ["lenet5", "plain_cnn", "plain_cnn"]
    assert np.isnan(trials.loc["lenet5", "model.plain_cnn.dropout"])
    assert sorted(trials.loc["plain_cnn", "model.plain_cnn.dropout"]) == [0.0, 0.5]
    for trial_id, row in study.trials.set_index("trial_id").iterrows():
        folder = study.layout.trial(trial_id)
        assert "Total params" in (folder / "summary.txt").read_text()
        assert row.flops > 0 and row.params > 0
        record = json.loads((folder / "execution_0.json").read_text())
        assert (record["flops"], record["params"], record["trainable_params"]) == (row.flops, row.params,
                                                                                   row.trainable_params)
        assert row.trainable_params == row.params       # neither net has batch norm or frozen layers
    best = hpstudy.load_best(study.path)
    assert isinstance(best.loss, SmoothedSparseCrossentropy)
    assert facts.flops(best) == study.trials.set_index("trial_id").loc[study.best["trial_id"], "flops"]


def test_flops_counted_by_hand():
    body = models.build("plain_cnn", (8, 8, 3), 10, conv_layers=1, filters=4, dense_units=8)
    # conv 3x3x3->4 at 8x8 positions, dense 64->8, dense 8->10; two FLOPs per multiply-add
    expected = 2 * (8 * 8 * 3 * 3 * 3 * 4 + 64 * 8 + 8 * 10)
    assert facts.flops(body) == expected
    off = {"standardize": False, "flip": True, "crop_padding": 2, "translate": 0.0, "cutout": 0}
    assert facts.flops(preprocess.wrap(body, off)) == expected, "nested models are counted through"


@pytest.mark.parametrize("name, options, params, trainable", [
    # Seed 001's deep net: its three batch norms (affine=False) hold 2 * (20 + 48 + 256) moving statistics only.
    ("deep_cnn", {}, 453_890, 453_242),
    # Seed 001's ResNet-18 (torchvision's): the seed's 11,181,642 are the trainable ones, 2 * 4,800 statistics more.
    ("resnet", {"depth": 18, "stem": "imagenet"}, 11_191_242, 11_181_642),
])
def test_params_count_every_weight_and_trainable_params_what_trains(name, options, params, trainable):
    off = {"standardize": False, "flip": True, "crop_padding": 0, "translate": 0.0, "cutout": 0}
    model = preprocess.wrap(models.build(name, (32, 32, 3), 10, **options), off)   # as a trial's recorder sees it
    assert (model.count_params(), facts.trainable_params(model)) == (params, trainable)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_label_smoothing_matches_the_dense_formula(smoothing):
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    labels = np.array([0, 1])
    targets = np.eye(3)[labels] * (1 - smoothing) + smoothing / 3
    expected = -(targets * np.log(probs)).sum(axis=1).mean()
    loss = SmoothedSparseCrossentropy(smoothing)(labels, probs)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert make_loss({"label_smoothing": 0.0}) == "sparse_categorical_crossentropy"
    restored = keras.losses.deserialize(keras.losses.serialize(SmoothedSparseCrossentropy(0.2)))
    assert restored.label_smoothing == 0.2


def test_list_models_reads_every_builder_signature(capsys):
    assert cli.main(["list", "models"]) == 0
    out = capsys.readouterr().out
    for name in models.BUILDERS:
        assert f"{name}\n{'=' * len(name)}\n" in out
        for option in models.options(name):
            assert option in out
    assert "conv_layers         2               an integer in [1, 32]" in out
    assert cli.main(["list", "models", "vgq"]) == 2
    assert "did you mean 'vgg'" in capsys.readouterr().err


@pytest.mark.slow
def test_transfer_with_a_fine_tune_phase_end_to_end(tmp_path):
    path = write_study(tmp_path, """
        name: ft
        data: {dataset: digits, subset: {train: 6, validation: 3, test: 3}}
        model: {builder: transfer, backbone: mobilenetv2, weights: null, input_size: 32, trainable_layers: 0}
        train: {epochs: 5, batch_size: 32, fine_tune_epochs: 2, fine_tune_learning_rate: 1.0e-4}
        search: {tuner: random, max_trials: 1}
        callbacks: {early_stopping: {patience: 0, min_delta: 100, restore_best_weights: false}}
    """, name="ft")
    study = hpstudy.run(path, results_dir=tmp_path / "results")
    trial = study.trials.iloc[0]
    # Early stopping ends the first phase after 2 of 5 epochs; the fine-tune phase continues from there.
    assert trial.status == "COMPLETED" and trial.epochs_run == 4
    history = study.history(trial.trial_id)
    assert list(history.epoch) == [1, 2, 3, 4]         # counted from 1
    assert [p.name for p in study.layout.trial(trial.trial_id).glob("execution_*.json")] == ["execution_0.json"]


def test_fine_tune_with_hyperband_is_refused():
    with pytest.raises(SpecError, match="s.yaml: train.fine_tune_epochs: hyperband"):
        check("name: s\nmodel: {builder: transfer, weights: null}\ntrain: {fine_tune_epochs: 2}\n"
              "search: {tuner: hyperband}\n")


def test_every_builders_options_are_in_the_search_space_but_only_the_chosen_are_active():
    import keras_tuner as kt
    study = check(FAMILIES.format(name="f").replace("lenet5: {}",
                                                    "lenet5: {dropout: {tune: choice, values: [0.1, 0.2]}}"))
    hypermodel = SpecHyperModel(study, (32, 32, 3), 10)
    hp = kt.HyperParameters()
    hp.values["model.builder"] = "lenet5"
    values = hypermodel.values(hp)
    assert values["builder"] == "lenet5" and values["model"]["dropout"] == 0.1
    assert {"model.builder", "model.plain_cnn.dropout", "model.lenet5.dropout"} <= {h.name for h in hp.space}
    assert not hp.is_active("model.plain_cnn.dropout") and hp.is_active("model.lenet5.dropout")


def test_fine_tune_without_a_backbone_is_refused():
    study = check("name: s\nmodel: {builder: plain_cnn}\ntrain: {fine_tune_epochs: 2}\n")
    with pytest.raises(SpecError, match="s.yaml: train.fine_tune_epochs: a fine-tune phase unfreezes"):
        build_each(study, (32, 32, 3), 10)


def test_a_builder_key_inside_a_builders_options_is_refused():
    with pytest.raises(SpecError, match="s.yaml: model.vgg.builder: unknown key"):
        check("name: s\nmodel: {builder: {tune: choice, values: [plain_cnn, vgg]}, vgg: {builder: x}}\n")
