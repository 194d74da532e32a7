"""`plain_cnn`: stacked conv layers, the CIFAR10ModelTester search space."""
from __future__ import annotations

from typing import Annotated, Literal

import keras

from hpstudy.errors import ModelError
from hpstudy.models.core import Activation, Initializer, classifier, pixels, register
from hpstudy.values import Fraction, Range


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
    head: Literal["dense", "gap"] = "dense",
    dense_units: Annotated[int, Range(1, 16384)] = 128,
    kernel_initializer: Initializer = "glorot_uniform",
    activation: Activation = "relu",
) -> keras.Model:
    """Stacked conv layers, the CIFAR10ModelTester search space.

    Each of the `conv_layers` layers is `convs_per_layer` convolutions (`filters`, times
    `filters_growth` per layer) with optional batch norm, then pooling and dropout. The head is
    `dense` (flatten, a `dense_units` layer, dropout) or `gap` (global average pooling).
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
            x = keras.layers.Conv2D(width, kernel_size, padding=padding, kernel_initializer=kernel_initializer,
                                    use_bias=not batch_norm)(x)
            if batch_norm:
                x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation(activation)(x)
            size = size if padding == "same" else size - kernel_size + 1
        if pooling != "none":
            if size < 2:
                raise ModelError(f"model.conv_layers: {conv_layers} layers pool the image down to nothing "
                                 f"(the feature map is {size}x{size} before pooling in layer {layer + 1})")
            pool = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
            x = pool(2)(x)
            size //= 2
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    if head == "gap":
        x = keras.layers.GlobalAveragePooling2D()(x)
    else:
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(dense_units, activation=activation, kernel_initializer=kernel_initializer)(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier(x, num_classes), name="plain_cnn")
