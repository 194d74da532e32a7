"""Facts about a built model for the trials table: parameters, FLOPs per image, the summary text."""
from __future__ import annotations

import math

import keras

_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def trainable_params(model: keras.Model) -> int:
    """The number of trainable weights of `model`: what training changes. `model.count_params()` counts every
    weight, the batch norm moving statistics and frozen layers included."""
    return int(sum(math.prod(weight.shape) for weight in model.trainable_weights))


def flops(model: keras.Model) -> int:
    """Floating-point operations of one forward pass of one image (2 per multiply-add).

    Counted from each layer's weights and output shape: convolutions (plain, depthwise, separable)
    and dense layers, which are nearly all of a CNN's arithmetic; nested models are counted through.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += flops(layer)
            continue
        total += 2 * _multiply_adds(layer)
    return int(total)


def _multiply_adds(layer) -> int:
    if not layer.built or not getattr(layer, "weights", None):
        return 0
    try:
        out = layer.output.shape
    except (AttributeError, ValueError):   # a layer used more than once has no single output
        return 0
    positions = math.prod(d for d in out[1:-1] if d)   # output pixels (1 for a dense layer on a vector)
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise, pointwise = layer.depthwise_kernel.shape, layer.pointwise_kernel.shape
        return positions * (math.prod(depthwise) + math.prod(pointwise))
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return positions * math.prod(layer.kernel.shape)
    if isinstance(layer, (*_CONVS, keras.layers.Dense)):
        return positions * math.prod(layer.kernel.shape)
    return 0


def summary(model: keras.Model) -> str:
    """Keras's model summary (nested models expanded) as text."""
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), expand_nested=True)
    return "\n".join(lines) + "\n"
