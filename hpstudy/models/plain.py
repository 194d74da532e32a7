"""`plain_cnn`: stacked conv layers, the CIFAR10ModelTester search space."""
from __future__ import annotations

from typing import Annotated, Literal

import keras

from hpstudy.errors import ModelError
from hpstudy.models.core import (
    Activation,
    Head,
    Initializer,
    Units,
    classifier,
    conv_block,
    head_layers,
    pixels,
    pool,
    register,
)
from hpstudy.study.schema import Fraction, Range


@register("plain_cnn")
def plain_cnn(
    input_shape: tuple,
    num_classes: int,
    *,
    conv_layers: Annotated[int, Range(1, 32)] = 2,
    convs_per_layer: Annotated[int, Range(1, 8)] = 1,
    filters: Annotated[int, Range(1, 2048)] = 32,
    filters_growth: Annotated[float, Range(1.0, 4.0)] = 2.0,
    kernel_size: Annotated[int, Range(1, 15)] = 3,
    padding: Literal["same", "valid"] = "same",
    pooling: Literal["max", "avg", "none"] = "max",
    batch_norm: bool = False,
    dropout: Fraction = 0.0,
    head: Head = "dense",
    dense_units: Units = 128,
    kernel_initializer: Initializer = "glorot_uniform",
    activation: Activation = "relu",
) -> keras.Model:
    """Stacked conv layers, the CIFAR10ModelTester search space.

    Each of the `conv_layers` layers is `convs_per_layer` convolutions (`filters`, times
    `filters_growth` per layer) with optional batch norm, then pooling and dropout. The head is
    `dense` (flatten, a `dense_units` layer, dropout) or `gap` (global average pooling). The
    CIFAR10ModelTester project names only what it varied ("Gradually added convolutional layers, experimented with
    filter sizes.", dropout, batch normalization, global average pooling); these options and their defaults are
    hpstudy's.
    """
    inputs = x = pixels(input_shape)
    size = min(input_shape[:2])
    for layer in range(conv_layers):
        width = min(2048, round(filters * filters_growth ** layer))
        for _ in range(convs_per_layer):
            if kernel_size > size:
                raise ModelError(
                    f"model.kernel_size: a {kernel_size}x{kernel_size} kernel is larger than the {size}x{size} "
                    f"feature map it meets in conv layer {layer + 1}; use fewer conv_layers or a smaller kernel")
            x = conv_block(x, width, kernel_size, padding=padding, batch_norm=batch_norm, activation=activation,
                           initializer=kernel_initializer)
            size = size if padding == "same" else size - kernel_size + 1
        if pooling != "none":
            if size < 2:
                raise ModelError(f"model.conv_layers: {conv_layers} layers pool the image down to nothing "
                                 f"(the feature map is {size}x{size} before pooling in layer {layer + 1})")
            x = pool(pooling)(x)
            size //= 2
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    x = head_layers(x, head, dense_units, dropout, activation, kernel_initializer)
    return keras.Model(inputs, classifier(x, num_classes, kernel_initializer), name="plain_cnn")
