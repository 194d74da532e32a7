"""`deep_cnn`: seed 001's CIFAR-10 nets, from two convs and three dense layers to eight convs with batch norm."""
from __future__ import annotations

import functools
from typing import Annotated, Literal, Optional

import keras

from hpstudy.errors import ModelError
from hpstudy.models.core import Activation, Head, Initializer, Units, classifier, head_layers, pixels, pool, register
from hpstudy.study.schema import Fraction, OpenFraction, Range

# The seed's feature extractors: (filters, kernel) convolutions and "max"/"avg" 2x2 poolings. The convolutions
# are unpadded, like its PyTorch Conv2d layers.
FEATURES: dict[str, list[tuple[int, int] | Literal["max", "avg"]]] = {
    "simple": [(8, 5), "max", (16, 3), "avg"],
    "deep": [(20, 3), (24, 3), (32, 3), (40, 3), "max", (48, 3), (56, 3), (64, 3), (72, 3)],
}
# The seed's hidden dense layers as fractions of the first one (simple: 128, 32; deep: 256, 64, 32, 16).
TAPER = {"simple": (1, 1 / 4), "deep": (1, 1 / 4, 1 / 8, 1 / 16)}
# The seed's (batch_norm, dense_units, dropout) for each variant: what those options left at null mean.
SEED = {"simple": (False, 128, 0.0), "deep": (True, 256, 0.3)}


def _normalize(x, epsilon: float, momentum: float, affine: bool):
    # affine=False (the seed's): no learned scale and shift; the layer before keeps its bias.
    return keras.layers.BatchNormalization(epsilon=epsilon, momentum=momentum, center=affine, scale=affine)(x)


def _features(x, variant: str, side: int, normalize, kernel_initializer: str, activation: str):
    """The variant's convolutions and poolings; batch norm after the first convolution of each stage."""
    size, stage_start = side, True
    for step in FEATURES[variant]:
        need = 2 if isinstance(step, str) else step[1]
        if size < need:
            raise ModelError(f"model.variant: the {variant} variant's unpadded convolutions and poolings shrink "
                             f"{side}-pixel images to nothing (a {size}x{size} map meets a {need}x{need} "
                             f"{'pooling' if isinstance(step, str) else 'kernel'}); it needs larger images")
        if isinstance(step, str):
            x = pool(step)(x)
            size, stage_start = size // 2, True
            continue
        x = keras.layers.Conv2D(step[0], step[1], kernel_initializer=kernel_initializer)(x)
        if normalize is not None and stage_start:
            x = normalize(x)
        x = keras.layers.Activation(activation)(x)
        size, stage_start = size - step[1] + 1, False
    return x


@register("deep_cnn")
def deep_cnn(
    input_shape: tuple,
    num_classes: int,
    *,
    variant: Literal["deep", "simple"] = "deep",
    batch_norm: Optional[bool] = None,
    head: Head = "dense",
    dense_units: Optional[Units] = None,
    dropout: Optional[Fraction] = None,
    dropout_late: Fraction = 0.1,
    bn_epsilon: Annotated[float, Range(0.0, 1.0, min_open=True)] = 1e-3,
    bn_momentum: OpenFraction = 0.99,
    bn_affine: bool = False,
    kernel_initializer: Initializer = "glorot_uniform",
    activation: Activation = "relu",
) -> keras.Model:
    """Seed 001's nets: eight unpadded 3x3 convs with batch norm (`deep`) or two convs (`simple`).

    `deep`: convs of 20, 24, 32, 40 filters, a 2x2 max-pool, convs of 48, 56, 64, 72 filters, then
    hidden dense layers of `dense_units` and 1/4, 1/8, 1/16 of it. `simple`: a 5x5 conv of 8 filters,
    max-pool, a 3x3 conv of 16, average pool, dense layers of `dense_units` and 1/4 of it. `batch_norm`
    follows the first conv of each stage and the first dense layer; `dropout` follows the first dense layer,
    `dropout_late` the deep head's third one (places read from the order of the seed's printout, which shows
    no activations: ReLU, the default `activation`, after each conv and hidden dense layer is hpstudy's choice).
    `head: gap` puts global average pooling in place of the dense layers (seed 002's next step).
    Batch norm's settings: `bn_epsilon` (default Keras's 1e-3; the seed prints PyTorch's eps=1e-05),
    `bn_momentum` in Keras's convention, the weight of the old moving average (default Keras's 0.99; PyTorch's
    momentum is the weight of the new batch, so the seed's momentum=0.1 is 0.9 here), `bn_affine` (default false,
    the seed's affine=False: no learned scale and shift; true adds them, Keras's center and scale).
    `batch_norm`, `dense_units` and `dropout` left at null take the seed's values for the variant, so each
    variant alone is the seed's printed net: `deep` batch_norm true, dense_units 256, dropout 0.3 (453,242
    trainable parameters, as its printed layers count); `simple` batch_norm false, dense_units 128, dropout 0
    (80,090). The seed reports "Accuracy on testing data is 69%." and "54%." for them.
    """
    seed_batch_norm, seed_dense_units, seed_dropout = SEED[variant]
    batch_norm = seed_batch_norm if batch_norm is None else batch_norm
    dense_units = seed_dense_units if dense_units is None else dense_units
    dropout = seed_dropout if dropout is None else dropout
    normalize = (functools.partial(_normalize, epsilon=bn_epsilon, momentum=bn_momentum, affine=bn_affine)
                 if batch_norm else None)
    inputs = x = pixels(input_shape)
    x = _features(x, variant, min(input_shape[:2]), normalize, kernel_initializer, activation)
    widths = [max(1, round(dense_units * fraction)) for fraction in TAPER[variant]]
    rates = [dropout if index == 0 else dropout_late if index == 2 else 0.0 for index in range(len(widths))]
    x = head_layers(x, head, widths, rates, activation, kernel_initializer, normalize=normalize)
    return keras.Model(inputs, classifier(x, num_classes, kernel_initializer), name="deep_cnn")
