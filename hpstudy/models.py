"""Model builders: plain Keras functions of plain values, in one registry.

A builder is called as `builder(input_shape, num_classes, **options)` and returns an uncompiled
`keras.Model` that takes normalized pixels; `hpstudy.preprocess.wrap` puts the study's augmentation
and normalization in front of it, so a saved model takes raw 0..255 pixels and needs no
preprocessing code. Its keyword-only parameters are the `model:` keys of a study
file: their annotations (types, `Range`s, `Literal` choices) and defaults are what the study file
is checked against, so a builder's signature is its documentation.
"""
from __future__ import annotations

import inspect
import typing
from typing import Annotated, Callable, Literal

import keras

from hpstudy.errors import ModelError
from hpstudy.values import Fraction, Range

BUILDERS: dict[str, Callable[..., keras.Model]] = {}

Initializer = Literal["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"]
Activation = Literal["relu", "elu", "gelu", "selu", "silu", "tanh", "leaky_relu"]


def register(name: str):
    """Decorator adding a builder to BUILDERS under `name`; a name registered twice is an error."""
    def add(builder):
        if name in BUILDERS:
            raise ValueError(f"model builder {name!r} is already registered")
        BUILDERS[name] = builder
        return builder
    return add


def options(name: str) -> dict[str, tuple[object, object]]:
    """A builder's study-file options: name -> (annotation, default), from its signature."""
    hints = typing.get_type_hints(BUILDERS[name], include_extras=True)
    return {p.name: (hints[p.name], p.default)
            for p in inspect.signature(BUILDERS[name]).parameters.values() if p.kind is p.KEYWORD_ONLY}


def build(name: str, input_shape: tuple, num_classes: int, **values) -> keras.Model:
    """Build the uncompiled model `name` for images of `input_shape` and `num_classes` classes."""
    return BUILDERS[name](tuple(input_shape), num_classes, **values)


def _pixels(input_shape) -> keras.KerasTensor:
    """The builder's input: normalized pixels."""
    return keras.Input(shape=input_shape, name="pixels")


def _classifier(x, num_classes: int):
    # float32 output keeps the softmax stable under mixed precision.
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)


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
    inputs = x = _pixels(input_shape)
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
    return keras.Model(inputs, _classifier(x, num_classes), name="plain_cnn")
