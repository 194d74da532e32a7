"""`resnet` (from scratch) and `transfer` (ImageNet backbones): build, train a step, save, load, freeze."""
import importlib
import re
import socket
from pathlib import Path

import keras
import numpy as np
import pytest

from hpstudy import models
from hpstudy.engine.training.compile import unfreeze_backbone
from hpstudy.errors import ModelError, SpecError
from hpstudy.models.backbones import (
    BACKBONES,
    freeze,
    imagenet_preprocessing,
    load_backbone,
    weights_file,
    weights_folder,
)
from hpstudy.study.schema import Failer, check_value
from tests.helpers import trainable

RAW = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")   # uint8-range pixels
GCS = "https://storage.googleapis.com"     # where keras.applications downloads ImageNet weights from


@pytest.fixture
def no_weights_reachable(tmp_path, monkeypatch):
    """What a machine with no cached weights and no network sees, online or not: Keras's cache is an empty folder
    and every weights URL of keras.applications points at a local port where connections are refused."""
    # Keras reads KERAS_HOME once, at import: its cache is pointed at the folder directly, so that weights cached
    # in ~/.keras cannot make a call succeed; the environment variable names the folder in the message.
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for proxy in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))            # bound and never listening: nothing else takes the port meanwhile
    unreachable = f"http://127.0.0.1:{refusing.getsockname()[1]}"
    for name in ("vgg16", "resnet", "xception", "efficientnet", "mobilenet_v2"):
        module = importlib.import_module(f"keras.src.applications.{name}")
        for attr, value in list(vars(module).items()):
            if isinstance(value, str) and value.startswith(GCS):
                monkeypatch.setattr(module, attr, unreachable + value[len(GCS):])
    yield unreachable
    refusing.close()


def write_imagenet_weights(folder: Path, backbone: str, size: int) -> list:
    """`backbone`'s keras.applications model at `size` pixels with seeded random weights, saved in `folder` under
    the name keras.applications reads and in the format of the published files (Keras 2's HDF5 weights);
    returns the weights written."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    make = getattr(keras.applications, BACKBONES[backbone].constructor)
    model = make(include_top=False, weights=None, input_shape=(size, size, 3))
    rng = np.random.default_rng(7)
    model.set_weights([rng.uniform(0.1, 1.0, w.shape).astype(w.dtype) for w in model.get_weights()])
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / weights_file(backbone, size)[0], "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return model.get_weights()


def train_step(model) -> float:
    # For one step, tracing a TensorFlow graph costs far more than it saves; JAX is slower still op by op.
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  run_eagerly=keras.backend.backend() == "tensorflow")
    return float(model.train_on_batch(RAW, np.arange(4)))


# ---------------------------------------------------------------- resnet
@pytest.mark.parametrize("depth, stem", [(20, "cifar"), (18, "cifar"), (20, "imagenet")])
def test_resnet_trains_one_step(depth, stem):
    model = models.build("resnet", (32, 32, 3), 10, depth=depth, stem=stem, dropout=0.2)
    assert np.isfinite(train_step(model))
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("depth, params", [
    # Option B (1x1 projections) adds 2,752 to the paper's option-A counts: 269,722 (0.27M) and 853,018 (0.85M).
    (20, 272_474), (56, 855_770),
    (18, 11_173_962),   # the usual CIFAR ResNet-18 (11.17M), projections included
])
def test_resnet_parameter_counts(depth, params):
    assert trainable(models.build("resnet", (32, 32, 3), 10, depth=depth)) == params


def test_resnet18_imagenet_stem_is_torchvisions():
    # Seed 001's ResNet-18 is torchvision's: a 7x7 stride-2 conv (7680 weights more than the 3x3 one) and a
    # 3x3 stride-2 max-pool, so 32x32 images reach the first stage at 8x8.
    model = models.build("resnet", (32, 32, 3), 10, depth=18, stem="imagenet")
    assert trainable(model) == 11_181_642 == 11_173_962 + (7 * 7 - 3 * 3) * 3 * 64
    stem = model.get_layer("stem_conv")
    assert (stem.kernel_size, stem.strides) == ((7, 7), (2, 2))
    assert model.get_layer("stem_pool").pool_size == (3, 3) and model.get_layer("stem_pool").strides == (2, 2)
    assert model.get_layer("stage1_block1_1_conv").input.shape[1:3] == (8, 8)
    assert models.options("resnet")["stem"][1] == "cifar"


def test_resnet_width_scales_filters():
    model = models.build("resnet", (32, 32, 3), 10, depth=20, width=2)
    assert model.get_layer("stem_conv").filters == 32
    assert model.get_layer("stage3_block3_2_conv").filters == 128


# ---------------------------------------------------------------- transfer
# A frozen backbone keeps the big ones fast: no gradients flow through it.
@pytest.mark.parametrize("backbone, trainable_layers", [
    ("vgg16", 4), ("mobilenetv2", "all"), ("resnet50", 1), ("resnet50v2", 1), ("xception", 0), ("efficientnetb2", 0),
])
def test_transfer_trains_one_step_from_scratch(backbone, trainable_layers):
    spec = BACKBONES[backbone]
    model = models.build("transfer", (32, 32, 3), 10, backbone=backbone, weights=None,
                         input_size=spec.min_size, trainable_layers=trainable_layers, dense_units=8, dropout=0.2)
    assert np.isfinite(train_step(model))
    assert model.output_shape == (None, 10)
    assert model.get_layer("backbone").input_shape[1:3] == (spec.min_size, spec.min_size)


@pytest.mark.parametrize("backbone, module", [
    ("vgg16", "vgg16"), ("resnet50", "resnet50"), ("resnet50v2", "resnet_v2"), ("xception", "xception"),
    ("efficientnetb2", "efficientnet"), ("mobilenetv2", "mobilenet_v2"),
])
def test_in_model_preprocessing_matches_keras(backbone, module):
    x = np.random.default_rng(1).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    inputs = keras.Input((8, 8, 3))
    ours = keras.Model(inputs, imagenet_preprocessing(inputs, backbone))(x)
    expected = getattr(keras.applications, module).preprocess_input(x.copy())
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_efficientnet_normalizes_inside_its_own_model():
    # Its preprocess_input does nothing: the model itself starts with x/255 and a (weights-loaded) normalization.
    base = keras.applications.EfficientNetB2(include_top=False, weights=None, input_shape=(32, 32, 3))
    rescale, normalize = base.layers[1:3]
    assert isinstance(rescale, keras.layers.Rescaling) and rescale.scale == pytest.approx(1 / 255)
    assert isinstance(normalize, keras.layers.Normalization)


VGG16_CONVS = [f"block{b}_conv{c}" for b, n in enumerate((2, 2, 3, 3, 3), 1) for c in range(1, n + 1)]
VGG16_PARAMS = 14_714_688


# What the last N layers train, layer by layer, as the transfer docstring and the README list it: (count, N, the
# backbone layers that learn, their trainable parameters). VGG16 has 19 layers (its input layer included), 13 with
# weights; 20 is more than either.
@pytest.mark.parametrize("count, trainable_layers, learning, params", [
    ("layers", 0, [], 0),
    ("layers", 1, [], 0),                                       # block5_pool: the Keras idiom's "last layer"
    ("layers", 4, ["block5_conv1", "block5_conv2", "block5_conv3"], 7_079_424),
    ("layers", 20, VGG16_CONVS, VGG16_PARAMS),
    ("layers", "all", VGG16_CONVS, VGG16_PARAMS),
    ("weighted_layers", 0, [], 0),
    ("weighted_layers", 1, ["block5_conv3"], 2_359_808),
    ("weighted_layers", 4, ["block4_conv3", "block5_conv1", "block5_conv2", "block5_conv3"], 9_439_232),
    ("weighted_layers", 20, VGG16_CONVS, VGG16_PARAMS),
    ("weighted_layers", "all", VGG16_CONVS, VGG16_PARAMS),
])
def test_vgg16_last_n_layers_layer_by_layer(count, trainable_layers, learning, params):
    model = models.build("transfer", (32, 32, 3), 10, backbone="vgg16", weights=None,
                         trainable_layers=trainable_layers, trainable_count=count)
    backbone = model.get_layer("backbone")
    assert len(backbone.layers) == 19
    assert [layer.name for layer in backbone.layers if layer.trainable and layer.trainable_weights] == learning
    assert trainable(backbone) == params
    assert trainable(model) == params + 512 * 10 + 10          # and the classifier
    if count == "layers" and trainable_layers != "all":     # the idiom: exactly base.layers[-N:] keep trainable
        flagged = [layer.name for layer in backbone.layers if layer.trainable]
        assert flagged == [layer.name for layer in backbone.layers[max(0, len(backbone.layers) - trainable_layers):]]


def test_trainable_count_defaults_to_the_keras_idiom():
    assert models.options("transfer")["trainable_count"][1] == "layers"


@pytest.fixture(scope="module")
def resnet50():
    """One transfer ResNet50 at 32x32 (no weights); each test freezes its backbone afresh."""
    return models.build("transfer", (32, 32, 3), 10, backbone="resnet50", weights=None, trainable_layers=0)


def refreeze(model, trainable_layers, count):
    backbone = model.get_layer("backbone")
    for layer in backbone.layers:
        layer.trainable = True
    freeze(backbone, trainable_layers, count)
    return backbone


RESNET50_LAST = ["conv5_block3_2_conv", "conv5_block3_2_bn", "conv5_block3_3_conv", "conv5_block3_3_bn"]


# ResNet50: 175 layers, 106 with weights (53 convs and 53 batch norms); the last 4 are conv, batch norm, add, ReLU.
@pytest.mark.parametrize("count, trainable_layers, learning, params", [
    ("layers", 0, [], 0),
    ("layers", 1, [], 0),                                       # conv5_block3_out, a ReLU
    ("layers", 4, RESNET50_LAST[2:], 1_050_624 + 4_096),        # and conv5_block3_add, conv5_block3_out
    ("layers", 176, 106, 23_534_592),
    ("weighted_layers", 1, RESNET50_LAST[3:], 4_096),
    ("weighted_layers", 4, RESNET50_LAST, 2_359_808 + 1_024 + 1_050_624 + 4_096),
    ("weighted_layers", 107, 106, 23_534_592),
    ("weighted_layers", "all", 106, 23_534_592),
])
def test_resnet50_last_n_layers_layer_by_layer(resnet50, count, trainable_layers, learning, params):
    backbone = refreeze(resnet50, trainable_layers, count)
    assert len(backbone.layers) == 175
    names = [layer.name for layer in backbone.layers if layer.trainable and layer.trainable_weights]
    assert (len(names) if isinstance(learning, int) else names) == learning
    assert trainable(backbone) == params
    if count == "layers" and trainable_layers in (1, 4):
        flagged = [layer.name for layer in backbone.layers if layer.trainable]
        assert flagged == [layer.name for layer in backbone.layers[-trainable_layers:]]


@pytest.mark.parametrize("count, trainable_layers, inference", [
    ("layers", 1, True),                # nothing with weights trains: every batch norm keeps its statistics
    ("layers", 4, False),               # conv5_block3_3_bn trains: it normalizes by the batch in training
])
def test_a_trainable_batch_norm_among_the_last_n_normalizes_by_the_batch(resnet50, count, trainable_layers,
                                                                        inference):
    # The backbone is called with training=False, which Keras 3 overrides with fit's training=True: what keeps a
    # batch norm's statistics is its being frozen, as in the Keras idiom without training=False.
    backbone = refreeze(resnet50, trainable_layers, count)
    before = [keras.ops.convert_to_numpy(w) for w in backbone.non_trainable_weights]
    frozen_output = resnet50(RAW, training=False)
    same = np.allclose(resnet50(RAW, training=True), frozen_output, atol=1e-6)
    assert same == inference
    after = [keras.ops.convert_to_numpy(w) for w in backbone.non_trainable_weights]
    moved = any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert moved == (not inference)     # only a trainable batch norm re-estimates its moving statistics


@pytest.mark.parametrize("trainable_layers, inference", [(0, True), ("all", False), (1000, False)])
def test_only_frozen_batch_norm_stays_in_inference_mode(trainable_layers, inference):
    # Frozen batch norm keeps its statistics under training=True; Keras 3 overrides the backbone's training=False
    # (keras-team/keras#20285), so trainable batch norm normalizes by the batch, whatever the count says.
    model = models.build("transfer", (32, 32, 3), 10, backbone="mobilenetv2", weights=None,
                         input_size=32, trainable_layers=trainable_layers)
    same = np.allclose(model(RAW, training=True), model(RAW, training=False), atol=1e-6)
    assert same == inference


def test_trainable_layers_default_trains_from_scratch_all_and_imagenet_none(no_weights_reachable):
    assert models.options("transfer")["trainable_layers"][1] is None
    scratch = models.build("transfer", (32, 32, 3), 10, backbone="mobilenetv2", weights=None, input_size=32)
    backbone = scratch.get_layer("backbone")
    assert all(layer.trainable for layer in backbone.layers)
    assert not np.allclose(scratch(RAW, training=True), scratch(RAW, training=False), atol=1e-6)   # batch norm trains
    write_imagenet_weights(Path(weights_folder()), "mobilenetv2", 96)
    pretrained = models.build("transfer", (32, 32, 3), 10, backbone="mobilenetv2", weights="imagenet", input_size=96)
    assert len(pretrained.trainable_weights) == 2                                       # only the classifier


def test_imagenet_weights_are_loaded_from_the_file_keras_applications_reads(tmp_path, no_weights_reachable):
    # MobileNetV2: keras.applications checks no hash of its weights file, so a file written here in the published
    # format is what it loads. The other backbones' files carry an md5 only the published file has (a file that
    # differs is fetched again), so their loading is the same call with another constructor and file name.
    assert weights_folder() == f"{tmp_path}/models"
    written = write_imagenet_weights(tmp_path / "models", "mobilenetv2", 96)
    backbone = load_backbone("mobilenetv2", "imagenet", 96)
    assert backbone.name == "backbone" and backbone.input_shape == (None, 96, 96, 3)
    loaded = backbone.get_weights()
    assert len(loaded) == len(written) and all(np.array_equal(a, b) for a, b in zip(loaded, written))


def test_more_trainable_layers_than_the_backbone_has_train_them_all():
    # The way to search frozen against fully trained: choices must share one type, so not [0, "all"].
    many = models.build("transfer", (32, 32, 3), 10, backbone="vgg16", weights=None, trainable_layers=1000)
    assert all(layer.trainable for layer in many.get_layer("backbone").layers)
    assert len(many.trainable_weights) == 2 * 13 + 2                       # 13 convs, and the classifier
    annotation, fail = models.options("transfer")["trainable_layers"][0], Failer("study.yaml")
    assert check_value(fail, "model.trainable_layers", {"tune": "choice", "values": [0, 4, 1000]}, annotation, True)
    with pytest.raises(SpecError, match="share one type"):
        check_value(fail, "model.trainable_layers", {"tune": "choice", "values": [0, "all"]}, annotation, True)


def test_unfreeze_makes_the_whole_backbone_trainable():
    model = models.build("transfer", (32, 32, 3), 10, backbone="vgg16", weights=None, trainable_layers=1)
    assert unfreeze_backbone(model)
    assert len(model.trainable_weights) == 28
    assert not unfreeze_backbone(models.build("resnet", (32, 32, 3), 10))


@pytest.mark.parametrize("name, options", [
    ("transfer", {"backbone": "vgg16", "input_size": 40, "trainable_layers": 4, "dense_units": 8}),
    ("transfer", {"backbone": "mobilenetv2", "input_size": 32, "trainable_layers": 1}),
    ("resnet", {"depth": 20, "dropout": 0.5}),
])
def test_saved_model_loads_in_safe_mode_and_predicts_the_same(tmp_path, name, options):
    model = models.build(name, (32, 32, 3), 10, **({"weights": None} if name == "transfer" else {}), **options)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(RAW, training=False), model(RAW, training=False), atol=1e-5)
    assert len(loaded.trainable_weights) == len(model.trainable_weights)
    if name == "transfer":   # frozen batch norm still runs in inference mode once loaded (no dropout in these heads)
        np.testing.assert_allclose(loaded(RAW, training=True), model(RAW, training=False), atol=1e-5)


def test_grayscale_images_are_repeated_to_rgb():
    model = models.build("transfer", (8, 8, 1), 3, backbone="mobilenetv2", weights=None, input_size=32)
    assert model(RAW[:, :8, :8, :1]).shape == (4, 3)


@pytest.mark.parametrize("backbone, size, minimum", [("xception", 70, 71), ("vgg16", 16, 32)])
def test_input_size_below_the_backbone_minimum_is_a_model_error(backbone, size, minimum):
    with pytest.raises(ModelError, match=f"model.input_size: {backbone} needs at least {minimum}x{minimum}"):
        models.build("transfer", (32, 32, 3), 10, backbone=backbone, weights=None, input_size=size)


def test_transfer_takes_raw_pixels_and_resnet_does_not():
    assert "transfer" in models.RAW_PIXELS and "resnet" not in models.RAW_PIXELS
    assert models.options("transfer")["weights"][1] == "imagenet"


def test_mobilenet_weights_file_follows_the_input_size():
    # keras.applications has MobileNetV2 weights for 96..224 pixels and loads the 224 ones at other sizes.
    assert weights_file("mobilenetv2", 128)[0] == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5"
    assert weights_file("mobilenetv2", 32)[0].endswith("_1.0_224_no_top.h5")


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_missing_imagenet_weights_name_the_file_to_place(backbone, tmp_path, no_weights_reachable):
    size = BACKBONES[backbone].default_size
    name, url = weights_file(backbone, size)
    with pytest.raises(ModelError, match=re.escape(f"download {name} from {url} into {tmp_path}/models/")) as caught:
        models.build("transfer", (32, 32, 3), 10, backbone=backbone)
    # keras.applications itself tried the file the message names, at the address it was given instead of GCS.
    assert f"URL fetch failure on {no_weights_reachable}{url[len(GCS):]}" in str(caught.value.__cause__)
    assert re.search(rf"cannot load the ImageNet weights of {backbone} \(.*Connection refused\); ", str(caught.value))
    assert "weights: null" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("home, folder", [
    ("home", "{tmp}/home/models"),             # the folder Keras computed at import, not $KERAS_HOME now
    ("missing", "/tmp/.keras/models"),         # keras.utils.get_file falls back to /tmp where it cannot write
])
def test_weights_error_names_the_folder_keras_downloads_to(home, folder, tmp_path, monkeypatch):
    (tmp_path / "home").mkdir()
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path / home))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "elsewhere"))

    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- no network")
    monkeypatch.setattr(keras.applications, "VGG16", offline)
    with pytest.raises(ModelError, match=re.escape(f"into {folder.format(tmp=tmp_path)}/, or set weights: null")):
        models.build("transfer", (32, 32, 3), 10, backbone="vgg16")
