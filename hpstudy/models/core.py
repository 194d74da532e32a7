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
from typing import Callable, Literal

import keras

BUILDERS: dict[str, Callable[..., keras.Model]] = {}
RAW_PIXELS: set[str] = set()     # builders that take raw 0..255 pixels (see `register`)

Initializer = Literal["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"]
Activation = Literal["relu", "elu", "gelu", "selu", "silu", "tanh", "leaky_relu"]


def register(name: str, *, raw_pixels: bool = False):
    """Decorator adding a builder to BUILDERS under `name`; a name registered twice is an error.

    `raw_pixels`: the builder takes 0..255 pixels and normalizes them itself (ImageNet backbones, whose
    own preprocessing is part of the model), so the study's `preprocess.standardize` does not apply.
    """
    def add(builder):
        if name in BUILDERS:
            raise ValueError(f"model builder {name!r} is already registered")
        BUILDERS[name] = builder
        if raw_pixels:
            RAW_PIXELS.add(name)
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


def pixels(input_shape) -> keras.KerasTensor:
    """The builder's input: normalized pixels."""
    return keras.Input(shape=input_shape, name="pixels")


def classifier(x, num_classes: int):
    """The softmax layer every builder ends with."""
    # float32 output keeps the softmax stable under mixed precision.
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)




def describe(name: str) -> tuple[str, list[dict]]:
    """A builder's docstring and its options (name, default, what is allowed), read from its signature."""
    from hpstudy.values import allowed

    def as_yaml(value):   # defaults as a study file writes them: true, false, null
        return {True: "true", False: "false"}[value] if isinstance(value, bool) else "null" if value is None else value

    rows = [{"option": option, "default": as_yaml(default), "allowed": allowed(ann)}
            for option, (ann, default) in options(name).items()]
    return inspect.cleandoc(BUILDERS[name].__doc__ or ""), rows
