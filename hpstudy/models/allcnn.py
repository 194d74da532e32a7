"""`all_cnn` (Springenberg et al. 2015) and `lenet5` (LeCun et al. 1998), the two nets of seed 004."""
from __future__ import annotations

from typing import Annotated, Any, Literal

import keras

from hpstudy.errors import ModelError
from hpstudy.models.core import Activation, Initializer, Units, classifier, conv_block, pixels, pool, register
from hpstudy.study.schema import Fraction, Range

Width = Annotated[int, Range(1, 2048)]


def _size(input_shape: tuple) -> str:
    return f"{input_shape[0]}x{input_shape[1]}"


@register("all_cnn")
def all_cnn(
    input_shape: tuple,
    num_classes: int,
    *,
    pooling: Literal["strided", "max"] = "strided",
    filters: Width = 96,
    input_dropout: Fraction = 0.2,
    dropout: Fraction = 0.5,
    batch_norm: bool = False,
    kernel_initializer: Initializer = "glorot_uniform",
    activation: Activation = "relu",
) -> keras.Model:
    """All-CNN-C (Springenberg et al. 2015): convolutions only, global average pooling, softmax.

    Two stages of three 3x3 convs (`filters`, then twice as many) that halve the feature map at their
    end: with `strided` (the paper) the third conv has stride 2; with `max` it has stride 1 and a 3x3 stride-2
    max-pool follows (the paper's ConvPool-CNN-C: hpstudy's reading of seed 004's YGNet, which says only "I've
    used max-pooling instead of making it a fully convolutional network"). Then a 3x3
    'valid' conv and a 1x1 conv of 2 * `filters`, a 1x1 conv to one map per class, global average
    pooling and softmax. Dropout: `input_dropout` on the input, `dropout` after each halving.
    The defaults are the paper's model: 1,369,738 parameters for 32x32x3 and 10 classes, with either pooling.
    """
    side = min(input_shape[:2])
    if -(-side // 4) < 3:   # two 'same' halvings, then the 3x3 'valid' conv
        raise ModelError(f"model.builder: all_cnn needs images of at least 9x9 pixels, not {_size(input_shape)} "
                         f"(it halves them twice before a 3x3 'valid' conv); use plain_cnn for smaller images")
    conv: dict[str, Any] = dict(batch_norm=batch_norm, activation=activation, initializer=kernel_initializer)
    inputs = x = pixels(input_shape)
    if input_dropout:
        x = keras.layers.Dropout(input_dropout)(x)
    for width in (filters, 2 * filters):
        x = conv_block(x, width, 3, **conv)
        x = conv_block(x, width, 3, **conv)
        if pooling == "strided":
            x = conv_block(x, width, 3, strides=2, **conv)
        else:
            # 'same' padding keeps the strided net's feature-map sizes (32, 16, 8), so the parameters match.
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same")(conv_block(x, width, 3, **conv))
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    x = conv_block(x, 2 * filters, 3, padding="valid", **conv)
    x = conv_block(x, 2 * filters, 1, **conv)
    # One map per class, averaged: these are the logits. The paper's ReLU here is left out (as in YGNet and most
    # reimplementations): it would clip negative logits to zero.
    x = keras.layers.Conv2D(num_classes, 1, kernel_initializer=kernel_initializer)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    # No dense layer (so not `classifier`); float32 like it, for a stable softmax under mixed precision.
    outputs = keras.layers.Activation("softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="all_cnn")


@register("lenet5")
def lenet5(
    input_shape: tuple,
    num_classes: int,
    *,
    conv1_filters: Width = 6,
    conv2_filters: Width = 16,
    dense1_units: Units = 120,
    dense2_units: Units = 84,
    pooling: Literal["max", "avg"] = "max",
    dropout: Fraction = 0.0,
    kernel_initializer: Initializer = "glorot_uniform",
    activation: Activation = "relu",
) -> keras.Model:
    """LeNet-5 (LeCun et al. 1998): two 5x5 convs with 2x2 pooling, dense 120 and 84, softmax.

    The convolutions are unpadded, so 32x32 images need no padding (the smallest is 16x16); `dropout`
    follows each convolution's activation. The defaults are LeCun's widths with ReLU and max-pooling (hpstudy's
    choice): 62,006 parameters for 32x32x3 and 10 classes (61,706 for 32x32x1). The 1998 net is
    `activation: tanh, pooling: avg`. Seed 004 says only "LeNet-5 has around ~395k learnable parameters.";
    `conv1_filters: 32, conv2_filters: 64, dense1_units: 200, dense2_units: 100, dropout: 0.2` is hpstudy's
    choice of widths with that count (395,006).
    """
    side = min(input_shape[:2])
    if (side - 4) // 2 - 4 < 2:
        raise ModelError(f"model.builder: lenet5 needs images of at least 16x16 pixels, not {_size(input_shape)} "
                         f"(two unpadded 5x5 convs and 2x2 poolings); use plain_cnn for smaller images")
    inputs = x = pixels(input_shape)
    for filters in (conv1_filters, conv2_filters):
        x = keras.layers.Conv2D(filters, 5, activation=activation, kernel_initializer=kernel_initializer)(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
        x = pool(pooling)(x)
    x = keras.layers.Flatten()(x)
    for units in (dense1_units, dense2_units):
        x = keras.layers.Dense(units, activation=activation, kernel_initializer=kernel_initializer)(x)
    return keras.Model(inputs, classifier(x, num_classes, kernel_initializer), name="lenet5")
