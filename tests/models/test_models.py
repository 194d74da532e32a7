"""Every builder builds on 32x32x3 input and takes a training step; options come from its signature."""
import typing

import keras
import numpy as np
import pytest

from hpstudy import models
from hpstudy.errors import ModelError
from tests.helpers import layers_of


@pytest.mark.parametrize("name", sorted(models.BUILDERS))
def test_builder_builds_and_trains_one_step(name):
    # No ImageNet download here; a frozen backbone keeps the step fast (weights: null alone trains all of it).
    offline = {"weights": None, "trainable_layers": 0} if "weights" in models.options(name) else {}
    model = models.build(name, (32, 32, 3), 10, **offline)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    loss = model.train_on_batch(x, np.arange(4))
    assert np.isfinite(loss)
    assert model.output_shape == (None, 10)


# Options that make each builder create every kind of layer it has (a projection shortcut, a dense head, ...).
EVERY_LAYER = {"plain_cnn": {"convs_per_layer": 2, "batch_norm": True}, "vgg": {"blocks": 2},
               "all_cnn": {"pooling": "max", "filters": 8}, "lenet5": {}, "deep_cnn": {}, "resnet": {"depth": 20},
               "resnet9": {"width": 0.125},
               "transfer": {"backbone": "vgg16", "weights": None, "trainable_layers": 0, "dense_units": 8}}


def test_every_builder_is_listed_for_the_initializer_check():
    assert sorted(EVERY_LAYER) == sorted(models.BUILDERS)
    assert all("kernel_initializer" in models.options(name) for name in models.BUILDERS)


@pytest.mark.parametrize("name", sorted(EVERY_LAYER))
def test_kernel_initializer_reaches_every_layer_the_builder_creates(name):
    # lecun_uniform is no builder's default: a layer left at Keras's own default (glorot_uniform) would show.
    model = models.build(name, (32, 32, 3), 10, **EVERY_LAYER[name], kernel_initializer="lecun_uniform")
    # The transfer backbone's layers are keras.applications' (their weights are loaded), and its frozen RGB-to-BGR
    # conv is set to a fixed permutation: neither starts from an initializer the study chooses.
    layers = [layer for layer in model.layers if layer.name not in ("backbone", "rgb_to_bgr")]
    kernels = [layer for layer in layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    # The softmax classifier included (all_cnn has none: its last 1x1 conv gives the logits).
    assert len(kernels) >= 2 and (kernels[-1].name == "predictions") == (name != "all_cnn")
    for layer in kernels:
        assert keras.initializers.serialize(layer.kernel_initializer)["class_name"] == "LecunUniform", layer.name
    assert not [layer.name for layer in layers if hasattr(layer, "kernel_initializer") and layer not in kernels]


@pytest.mark.parametrize("options", [
    {"conv_layers": 3, "convs_per_layer": 2, "batch_norm": True, "head": "gap", "dropout": 0.3},
    {"padding": "valid", "pooling": "avg", "kernel_initializer": "he_uniform", "activation": "elu"},
    {"pooling": "none", "conv_layers": 1, "kernel_size": 5, "filters": 6, "dense_units": 12},
])
def test_plain_cnn_options_reach_its_layers(options):
    model = models.build("plain_cnn", (32, 32, 3), 10, **options)
    o = {name: default for name, (_, default) in models.options("plain_cnn").items()} | options
    initializer = type(keras.initializers.get(o["kernel_initializer"])).__name__
    convs = layers_of(model, keras.layers.Conv2D)
    assert len(convs) == o["conv_layers"] * o["convs_per_layer"]
    for index, conv in enumerate(convs):
        config = conv.get_config()
        assert config["kernel_size"] == (o["kernel_size"],) * 2 and config["padding"] == o["padding"]
        assert config["kernel_initializer"]["class_name"] == initializer
        assert config["use_bias"] is not o["batch_norm"]
        assert conv.filters == round(o["filters"] * o["filters_growth"] ** (index // o["convs_per_layer"]))
    activations = layers_of(model, keras.layers.Activation)
    assert [layer.get_config()["activation"] for layer in activations] == [o["activation"]] * len(convs)
    assert len(layers_of(model, keras.layers.BatchNormalization)) == (len(convs) if o["batch_norm"] else 0)
    pools = layers_of(model, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    kind = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D, "none": None}[o["pooling"]]
    assert [type(layer) for layer in pools] == ([kind] * o["conv_layers"] if kind else [])
    dense = layers_of(model, keras.layers.Dense)
    if o["head"] == "gap":
        assert len(layers_of(model, keras.layers.GlobalAveragePooling2D)) == 1 and len(dense) == 1
    else:
        assert len(layers_of(model, keras.layers.Flatten)) == 1 and len(dense) == 2
        hidden = dense[0].get_config()
        assert hidden["units"] == o["dense_units"] and hidden["activation"] == o["activation"]
    assert all(layer.get_config()["kernel_initializer"]["class_name"] == initializer for layer in dense)
    dropouts = [layer.rate for layer in layers_of(model, keras.layers.Dropout)]
    assert dropouts == ([o["dropout"]] * (o["conv_layers"] + (o["head"] == "dense")) if o["dropout"] else [])
    assert model.output_shape == (None, 10)


def test_kernel_larger_than_feature_map_is_a_model_error():
    with pytest.raises(ModelError, match="model.kernel_size: a 7x7 kernel is larger than the 3x3 feature map"):
        models.build("plain_cnn", (32, 32, 3), 10, conv_layers=3, kernel_size=7, padding="valid")
    with pytest.raises(ModelError, match="model.conv_layers"):
        models.build("plain_cnn", (32, 32, 3), 10, conv_layers=6, kernel_size=1)


def test_options_are_read_from_the_signature():
    opts = models.options("plain_cnn")
    assert opts["head"][1] == "dense"
    assert typing.get_args(opts["head"][0]) == ("dense", "gap")
    assert "input_shape" not in opts and "num_classes" not in opts


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        models.register("plain_cnn")(lambda input_shape, num_classes: None)


def test_builders_leave_normalization_to_preprocess():
    model = models.build("plain_cnn", (32, 32, 3), 10)
    assert not any(isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)) for layer in model.layers)


def test_dense_widths_share_one_annotation():
    from hpstudy.models.core import Units
    widths = {"plain_cnn": ["dense_units"], "vgg": ["dense_units"], "lenet5": ["dense1_units", "dense2_units"]}
    for name, keys in widths.items():
        assert all(models.options(name)[key][0] == Units for key in keys)
    assert models.options("deep_cnn")["dense_units"][0] == typing.Optional[Units]


def test_shared_building_blocks():
    from hpstudy.models.core import conv_block, head_layers, pool
    assert isinstance(pool("max"), keras.layers.MaxPooling2D) and isinstance(pool("avg"), keras.layers.AveragePooling2D)
    inputs = keras.Input((8, 8, 3))
    x = conv_block(inputs, 4, 3, batch_norm=True, activation="relu", initializer="he_normal", name="c")
    model = keras.Model(inputs, head_layers(x, "dense", [8, 4], [0.5, 0.0], "relu", "glorot_uniform"))
    assert [layer.name for layer in model.layers[1:4]] == ["c_conv", "c_bn", "c_relu"]
    assert not model.get_layer("c_conv").use_bias                     # batch norm's shift replaces the bias
    assert [type(layer).__name__ for layer in model.layers[4:]] == ["Flatten", "Dense", "Dropout", "Dense"]
    gap = keras.Model(inputs, head_layers(inputs, "gap", 8, 0.5, "relu", "glorot_uniform"))
    assert isinstance(gap.layers[-1], keras.layers.GlobalAveragePooling2D) and gap.output_shape == (None, 3)
