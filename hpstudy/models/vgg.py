"""`vgg`: VGG-style blocks of two 3x3 convolutions, pooling and growing dropout (seed 003)."""
from __future__ import annotations

from typing import Annotated

import keras

from hpstudy.errors import ModelError
from hpstudy.models.core import Activation, Head, Initializer, Units, classifier, head_layers, pixels, register
from hpstudy.study.schema import Fraction, Range

MAX_FILTERS = 512   # VGG stops doubling at 512 filters (its last two stages are both 512 wide)


@register("vgg")
def vgg(
    input_shape: tuple,
    num_classes: int,
    *,
    blocks: Annotated[int, Range(1, 8)] = 2,
    filters: Annotated[int, Range(1, 1024)] = 32,
    batch_norm: bool = True,
    dropout: Fraction = 0.25,
    dropout_growth: Annotated[float, Range(0.0, 0.5)] = 0.1,
    head: Head = "dense",
    dense_units: Units = 128,
    dense_dropout: Fraction = 0.0,
    kernel_initializer: Initializer = "he_uniform",
    activation: Activation = "relu",
) -> keras.Model:
    """VGG-style blocks of two 3x3 convs, batch norm, max-pooling and growing dropout.

    Block b (from 0) has two 'same'-padded 3x3 convolutions of `filters` * 2**b filters (at most 512),
    batch norm after them, a 2x2 max-pool and dropout of `dropout` + b * `dropout_growth`. The head is
    `dense` (flatten, a `dense_units` layer, `dense_dropout`) or `gap` (global average pooling).
    The defaults follow what seed 003 says of its model ("2 blocks", "32 and 64 filters", "(3,3) size filters",
    ReLU, "He uniform", "padding", "a Batch Normalization layer", a pooling that "downscales the image by 2",
    "more dropout to the second block than to the first", a Dense ReLU layer); the rest is hpstudy's choice, as
    the seed does not give it: max-pooling, the dropout rates 0.25 and 0.35, the 128 dense units (591,658
    parameters for 32x32x3 and 10 classes). The classic three-block VGG with dropout 0.2/0.3/0.4 is
    `blocks: 3, dropout: 0.2`.
    """
    inputs = x = pixels(input_shape)
    side = size = min(input_shape[:2])
    for block in range(blocks):
        rate = dropout + block * dropout_growth
        if rate >= 1:
            raise ModelError(f"model.dropout_growth: block {block + 1}'s dropout would be {rate:g}, which drops "
                             f"everything; lower dropout or dropout_growth, or use fewer blocks")
        if size < 2:
            raise ModelError(f"model.blocks: {blocks} blocks pool the {side}-pixel images down to "
                             f"nothing (the feature map is 1x1 before pooling in block {block + 1}); "
                             f"use at most {block} blocks")
        width = min(filters * 2 ** block, max(filters, MAX_FILTERS))
        for _ in range(2):
            x = keras.layers.Conv2D(width, 3, padding="same", activation=activation,
                                    kernel_initializer=kernel_initializer)(x)
        if batch_norm:
            # Once per block, after both convolutions' activations, as in seed 003.
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.MaxPooling2D(2)(x)
        size //= 2
        if rate:
            x = keras.layers.Dropout(rate)(x)
    x = head_layers(x, head, dense_units, dense_dropout, activation, kernel_initializer)
    return keras.Model(inputs, classifier(x, num_classes, kernel_initializer), name="vgg")
