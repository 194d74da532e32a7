"""The reference architectures (vgg, all_cnn, lenet5, deep_cnn): they train, and their sizes match the seeds."""
import keras
import numpy as np
import pytest

from hpstudy import models
from hpstudy.errors import ModelError
from tests.helpers import layers_of, trainable

FAMILIES = ("vgg", "all_cnn", "lenet5", "deep_cnn")


@pytest.mark.parametrize("name, options", [
    ("vgg", {"blocks": 3, "head": "gap", "batch_norm": False}),
    ("all_cnn", {"pooling": "max", "filters": 8, "batch_norm": True}),
    ("lenet5", {"pooling": "avg", "activation": "tanh", "dropout": 0.2}),
    ("deep_cnn", {"variant": "simple", "head": "gap"}),
    ("deep_cnn", {"batch_norm": False, "dense_units": 64}),
])
def test_variants_train_one_step(name, options):
    model = models.build(name, (32, 32, 3), 10, **options)
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8").astype("float32")
    assert np.isfinite(model.train_on_batch(x, np.array([3, 7])))
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("name, shape, options, expected", [
    # Springenberg et al.'s All-CNN-C, "~1.3M" in seed 004: 3*9*96+96 + 2*(96*9*96+96) + 96*9*192+192
    # + 3*(192*9*192+192) + 192*192+192 + 192*10+10. Max-pooling (YGNet) has no weights of its own.
    ("all_cnn", (32, 32, 3), {}, 1_369_738),
    ("all_cnn", (32, 32, 3), {"pooling": "max"}, 1_369_738),
    # LeNet-5 on 32x32x1 is the well-known 61,706; three input channels add 2 * 6 * 5*5 = 300 weights to conv1.
    ("lenet5", (32, 32, 1), {}, 61_706),
    ("lenet5", (32, 32, 3), {}, 61_706 + 300),
    # Seed 004's modified LeNet-5 ("~395k"): 3*25*32+32 + 32*25*64+64 + 1600*200+200 + 200*100+100 + 100*10+10.
    ("lenet5", (32, 32, 3), {"conv1_filters": 32, "conv2_filters": 64, "dense1_units": 200, "dense2_units": 100,
                             "dropout": 0.2}, 395_006),
    # Seed 003: 3*9*32+32 + 32*9*32+32 + 32*9*64+64 + 64*9*64+64 + 8*8*64*128+128 + 128*10+10, plus batch norm's
    # gammas and betas (2 * (32 + 64)); its moving statistics are not trainable.
    ("vgg", (32, 32, 3), {}, 591_466),
    # Seed 001's deep net as PyTorch counts it: eight convs with biases (3*9*20+20 + 20*9*24+24 + ... + 64*9*72+72
    # = 138,848) and five linear layers (1152*256+256 + 256*64+64 + 64*32+32 + 32*16+16 + 16*10+10 = 314,394);
    # its BatchNorm has affine=False, so no trainable weights.
    ("deep_cnn", (32, 32, 3), {}, 138_848 + 314_394),
    # Seed 001's simple net: 3*25*8+8 + 8*9*16+16 + 576*128+128 + 128*32+32 + 32*10+10.
    ("deep_cnn", (32, 32, 3), {"variant": "simple", "batch_norm": False, "dense_units": 128, "dropout": 0}, 80_090),
])
def test_trainable_parameters_match_the_references(name, shape, options, expected):
    assert trainable(models.build(name, shape, 10, **options)) == expected


def test_all_cnn_pooling_max_replaces_the_strided_convs():
    strided = models.build("all_cnn", (32, 32, 3), 10)
    pooled = models.build("all_cnn", (32, 32, 3), 10, pooling="max")
    assert [c.strides for c in layers_of(strided, keras.layers.Conv2D)].count((2, 2)) == 2
    assert not layers_of(strided, keras.layers.MaxPooling2D)
    assert len(layers_of(pooled, keras.layers.MaxPooling2D)) == 2
    assert all(c.strides == (1, 1) for c in layers_of(pooled, keras.layers.Conv2D))
    assert [d.rate for d in layers_of(strided, keras.layers.Dropout)] == [0.2, 0.5, 0.5]
    assert not layers_of(strided, keras.layers.Dense)       # convolutions only, up to the softmax


def test_vgg_blocks_pool_and_grow_dropout():
    model = models.build("vgg", (32, 32, 3), 10, blocks=3, dropout=0.2)
    assert len(layers_of(model, keras.layers.MaxPooling2D)) == 3
    assert [d.rate for d in layers_of(model, keras.layers.Dropout)] == pytest.approx([0.2, 0.3, 0.4])
    assert [c.filters for c in layers_of(model, keras.layers.Conv2D)] == [32, 32, 64, 64, 128, 128]
    assert len(layers_of(model, keras.layers.BatchNormalization)) == 3
    assert isinstance(layers_of(model, keras.layers.Conv2D)[0].kernel_initializer, keras.initializers.HeUniform)


def test_deep_cnn_variants():
    deep = models.build("deep_cnn", (32, 32, 3), 10)
    assert [c.filters for c in layers_of(deep, keras.layers.Conv2D)] == [20, 24, 32, 40, 48, 56, 64, 72]
    assert len(layers_of(deep, keras.layers.BatchNormalization)) == 3      # after conv1, conv5 and fc1
    assert [d.rate for d in layers_of(deep, keras.layers.Dropout)] == [0.3, 0.1]
    assert [d.units for d in layers_of(deep, keras.layers.Dense)] == [256, 64, 32, 16, 10]
    simple = models.build("deep_cnn", (32, 32, 3), 10, variant="simple", batch_norm=False)
    assert [c.filters for c in layers_of(simple, keras.layers.Conv2D)] == [8, 16]
    assert not layers_of(simple, keras.layers.BatchNormalization)
    gap = models.build("deep_cnn", (32, 32, 3), 10, head="gap")
    assert layers_of(gap, keras.layers.GlobalAveragePooling2D) and not layers_of(gap, keras.layers.Flatten)
    assert len(layers_of(gap, keras.layers.Dense)) == 1


@pytest.mark.parametrize("name, shape, options, message", [
    ("vgg", (32, 32, 3), {"blocks": 6}, "model.blocks: 6 blocks pool the 32-pixel images down to nothing.*at most 5"),
    ("vgg", (32, 32, 3), {"blocks": 4, "dropout": 0.5, "dropout_growth": 0.2}, "model.dropout_growth: block 4"),
    ("all_cnn", (8, 8, 3), {}, "model.builder: all_cnn needs images of at least 9x9 pixels, not 8x8"),
    ("lenet5", (15, 15, 1), {}, "model.builder: lenet5 needs images of at least 16x16 pixels, not 15x15"),
    ("deep_cnn", (24, 24, 3), {}, "model.variant: the deep variant's unpadded convolutions"),
    ("deep_cnn", (10, 10, 3), {"variant": "simple"}, "model.variant: the simple variant's"),
])
def test_impossible_options_are_model_errors(name, shape, options, message):
    with pytest.raises(ModelError, match=message):
        models.build(name, shape, 10, **options)


@pytest.mark.parametrize("name, side", [("vgg", 4), ("all_cnn", 9), ("lenet5", 16), ("deep_cnn", 26)])
def test_smallest_allowed_images_build(name, side):
    assert models.build(name, (side, side, 1), 10).output_shape == (None, 10)


@pytest.mark.parametrize("name", FAMILIES)
def test_options_summary_and_output(name):
    assert models.options(name)
    summary = models.BUILDERS[name].__doc__.splitlines()[0]
    assert summary.endswith(".") and len(summary) <= 100
    model = models.build(name, (32, 32, 3), 10)
    assert not layers_of(model, (keras.layers.Rescaling, keras.layers.Normalization))
    assert model.layers[-1].name == "predictions" and model.layers[-1].dtype_policy.name == "float32"


@pytest.mark.parametrize("variant, params, dense, batch_norms, dropouts", [
    # Seed 001's two nets, each from `variant` alone: a search over the variant compares them as the seed had them.
    ("simple", 80_090, [128, 32, 10], 0, []),
    ("deep", 138_848 + 314_394, [256, 64, 32, 16, 10], 3, [0.3, 0.1]),
])
def test_deep_cnn_variant_alone_is_the_seed_net(variant, params, dense, batch_norms, dropouts):
    assert all(models.options("deep_cnn")[key][1] is None for key in ("batch_norm", "dense_units", "dropout"))
    model = models.build("deep_cnn", (32, 32, 3), 10, variant=variant)
    assert trainable(model) == params
    assert [d.units for d in layers_of(model, keras.layers.Dense)] == dense
    assert len(layers_of(model, keras.layers.BatchNormalization)) == batch_norms
    assert [d.rate for d in layers_of(model, keras.layers.Dropout)] == dropouts


# Seed 001 prints each of its three batch norms as "BatchNorm2d(20, eps=1e-05, momentum=0.1, affine=False,
# track_running_stats=True)" (and 48, then BatchNorm1d(256)): PyTorch's momentum 0.1 is Keras's 0.9.
SEED_BN = {"bn_epsilon": 1e-5, "bn_momentum": 0.9, "bn_affine": False}


def test_deep_cnn_batch_norm_takes_the_seeds_settings():
    seed = models.build("deep_cnn", (32, 32, 3), 10, **SEED_BN)
    norms = layers_of(seed, keras.layers.BatchNormalization)
    assert [n.epsilon for n in norms] == pytest.approx([1e-5] * 3) and [n.momentum for n in norms] == [0.9] * 3
    assert not any(n.center or n.scale for n in norms)
    # affine=False: no gamma or beta; the seed's printed layers count 138,848 + 314,394 (see above), and each norm
    # keeps a moving mean and variance of its 20, 48 and 256 channels, not trained.
    assert trainable(seed) == 138_848 + 314_394 == seed.count_params() - 2 * (20 + 48 + 256)
    default = layers_of(models.build("deep_cnn", (32, 32, 3), 10), keras.layers.BatchNormalization)
    assert [(n.epsilon, n.momentum, n.center) for n in default] == [(1e-3, 0.99, False)] * 3    # Keras's; affine=False
    affine = models.build("deep_cnn", (32, 32, 3), 10, bn_affine=True)
    assert trainable(affine) == 138_848 + 314_394 + 2 * (20 + 48 + 256)      # a gamma and a beta per channel


def test_deep_cnn_explicit_values_override_the_variants_seed_values():
    simple = models.build("deep_cnn", (32, 32, 3), 10, variant="simple", batch_norm=True, dropout=0.5)
    assert len(layers_of(simple, keras.layers.BatchNormalization)) == 3     # after conv1, conv2 and fc1
    assert [d.rate for d in layers_of(simple, keras.layers.Dropout)] == [0.5]
    deep = models.build("deep_cnn", (32, 32, 3), 10, batch_norm=False, dense_units=128, dropout=0)
    assert not layers_of(deep, keras.layers.BatchNormalization)
    assert [d.units for d in layers_of(deep, keras.layers.Dense)] == [128, 32, 16, 8, 10]
    assert [d.rate for d in layers_of(deep, keras.layers.Dropout)] == [0.1]
