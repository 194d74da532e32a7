"""Model builders: plain Keras functions of plain values, in one registry (`register` says what a builder is).
"""
from __future__ import annotations

import inspect
import typing
from typing import Annotated, Callable, Literal, Optional, Sequence, Union

import keras

from hpstudy.errors import ModelError
from hpstudy.study.schema import Range, allowed, close_match

BUILDERS: dict[str, Callable[..., keras.Model]] = {}
RAW_PIXELS: set[str] = set()     # builders that take raw 0..255 pixels (see `register`)

Initializer = Literal["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"]
Activation = Literal["relu", "elu", "gelu", "selu", "silu", "tanh", "leaky_relu"]
Head = Literal["dense", "gap"]
Units = Annotated[int, Range(1, 16384)]     # a hidden dense layer's width


def register(name: str, *, raw_pixels: bool = False):
    """Decorator adding a builder to BUILDERS under `name`; a name registered twice is an error.

    A builder is called as `builder(input_shape, num_classes, **options)` and returns an uncompiled
    `keras.Model` that takes normalized pixels; `hpstudy.models.preprocess.wrap` puts the study's augmentation
    and normalization in front of it, so a saved model takes raw 0..255 pixels and needs no
    preprocessing code. Its keyword-only parameters are the `model:` keys of a study
    file: their annotations (types, `Range`s, `Literal` choices) and defaults are what the study file
    is checked against, so a builder's signature is its documentation.

    Args:
        name: the builder's name, as a study file's `model.builder` gives it.
        raw_pixels: the builder takes 0..255 pixels and normalizes them itself (ImageNet backbones, whose own
            preprocessing is part of the model), so the study's `preprocess.standardize` does not apply.

    Returns:
        The decorator, which registers the builder and returns it unchanged; registering it raises ValueError
        when `name` is already registered.
    """
    def add(builder):
        """Register `builder` under `name` (a second registration of a name is an error)."""
        if name in BUILDERS:
            raise ValueError(f"model builder {name!r} is already registered")
        BUILDERS[name] = builder
        if raw_pixels:
            RAW_PIXELS.add(name)
        return builder
    return add


def builder(name: str) -> Callable[..., keras.Model]:
    """The registered builder `name`.

    Args:
        name: a registered builder's name.

    Returns:
        The builder function.

    Raises:
        ModelError: `name` is not registered (the message lists the known ones and the closest match).
    """
    if name not in BUILDERS:
        known = sorted(BUILDERS)
        raise ModelError(f"unknown builder {name!r}{close_match(name, known)}; known: {', '.join(known)}")
    return BUILDERS[name]


def options(name: str) -> dict[str, tuple[object, object]]:
    """A builder's study-file options: name -> (annotation, default), from its signature."""
    hints = typing.get_type_hints(BUILDERS[name], include_extras=True)
    return {p.name: (hints[p.name], p.default)
            for p in inspect.signature(BUILDERS[name]).parameters.values() if p.kind is p.KEYWORD_ONLY}


def build(name: str, input_shape: tuple, num_classes: int, **values) -> keras.Model:
    """Build the uncompiled model `name` for images of `input_shape` and `num_classes` classes.

    Args:
        name: a registered builder's name (an unknown one is a KeyError: `builder(name)` checks it first).
        input_shape: one image's shape, (height, width, channels).
        num_classes: the number of classes the softmax output has.
        **values: the builder's options (its keyword-only parameters; left out: their defaults).

    Returns:
        The uncompiled `keras.Model`, taking normalized pixels.

    Raises:
        ModelError: the options cannot build a model (the message names the option).
    """
    return BUILDERS[name](tuple(input_shape), num_classes, **values)


def pixels(input_shape) -> keras.KerasTensor:
    """The builder's input: normalized pixels."""
    return keras.Input(shape=input_shape, name="pixels")


def classifier(x, num_classes: int, initializer: str):
    """The softmax layer every builder ends with, its kernel drawn from the builder's `kernel_initializer`."""
    # float32 output keeps the softmax stable under mixed precision.
    return keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=initializer, dtype="float32",
                              name="predictions")(x)


def conv_block(x, filters: int, kernel_size: int, *, strides: int = 1, padding: str = "same", batch_norm: bool,
               activation: Optional[str], initializer: str, name: Optional[str] = None):
    """A convolution, optional batch norm, then `activation` (None: none).

    Given a `name`, the layers are named `<name>_conv`, `<name>_bn` and `<name>_<activation>`.
    """
    # Batch norm's own shift makes the convolution's bias redundant.
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=not batch_norm,
                            kernel_initializer=initializer, name=name and f"{name}_conv")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=name and f"{name}_bn")(x)
    return keras.layers.Activation(activation, name=name and f"{name}_{activation}")(x) if activation else x


def pool(kind: Literal["max", "avg"], size: int = 2) -> keras.layers.Layer:
    """A `size`x`size` max- or average-pooling layer."""
    return (keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D)(size)


def head_layers(x, kind: str, units: Union[int, Sequence[int]], dropout: Union[float, Sequence[float]],
                activation: str, initializer: str, normalize: Optional[Callable] = None):
    """What goes between the features and `classifier`: `gap` (global average pooling) or `dense`.

    `dense`: flatten, then a dense layer per `units`, each followed by its `dropout` (one rate: the same for
    all); `normalize`, if given, goes between the first dense layer and its activation.
    """
    if kind == "gap":
        return keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Flatten()(x)
    units = [units] if isinstance(units, int) else list(units)
    rates = [dropout] * len(units) if isinstance(dropout, (int, float)) else list(dropout)
    for index, (width, rate) in enumerate(zip(units, rates)):
        norm = normalize if index == 0 else None
        x = keras.layers.Dense(width, activation=None if norm else activation, kernel_initializer=initializer)(x)
        if norm:
            x = keras.layers.Activation(activation)(norm(x))
        if rate:
            x = keras.layers.Dropout(rate)(x)
    return x


def describe(name: str) -> tuple[str, list[dict]]:
    """A builder's docstring and its options (name, default, what is allowed), read from its signature."""
    def as_yaml(value):   # defaults as a study file writes them: true, false, null
        """A default as a study file would write it."""
        return {True: "true", False: "false"}[value] if isinstance(value, bool) else "null" if value is None else value

    rows = [{"option": option, "default": as_yaml(default), "allowed": allowed(ann)}
            for option, (ann, default) in options(name).items()]
    return inspect.cleandoc(BUILDERS[name].__doc__ or ""), rows
