"""`transfer`: an ImageNet backbone from keras.applications with a fresh classifier head."""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

import keras

from hpstudy.errors import ModelError
from hpstudy.models.backbones import BACKBONES, freeze, imagenet_preprocessing, load_backbone
from hpstudy.models.core import classifier, pixels, register
from hpstudy.study.schema import Fraction, Range


@register("transfer", raw_pixels=True)
def transfer(
    input_shape: tuple,
    num_classes: int,
    *,
    backbone: Literal["vgg16", "resnet50", "xception", "efficientnetb2", "mobilenetv2"] = "resnet50",
    weights: Optional[Literal["imagenet"]] = "imagenet",
    input_size: Optional[Annotated[int, Range(1, 1024)]] = None,
    trainable_layers: Optional[Union[Annotated[int, Range(0, 10000)], Literal["all"]]] = None,
    dense_units: Annotated[int, Range(0, 16384)] = 0,
    dropout: Fraction = 0.0,
) -> keras.Model:
    """ImageNet backbone (VGG16, ResNet50, Xception, EfficientNetB2, MobileNetV2) with a fresh head.

    Takes raw 0..255 pixels: resizes them to `input_size` (default: 32, or 71 for xception, 96 for mobilenetv2)
    and applies the backbone's own ImageNet preprocessing inside the model. `weights: null` starts the backbone
    from random weights. `trainable_layers`: how many of the backbone's last layers with trainable weights (conv,
    dense, batch norm) train; 0 freezes it, "all" trains everything; null (the default) is 0 with ImageNet
    weights and "all" with `weights: null` (so that it trains from scratch). Frozen batch norm layers run in
    inference mode, keeping the statistics they were loaded with; trainable ones re-estimate them from the batches
    in training. A number larger than the backbone's layers with weights trains them all, like "all": searched
    values must share one type, so search frozen against fully trained as `{tune: choice, values: [0, 4, 1000]}`.
    The head: global average pooling, an optional ReLU layer of `dense_units` (0: none), `dropout`, softmax.
    The backbone is the layer named "backbone".
    """
    spec = BACKBONES[backbone]
    size = input_size or spec.default_size
    if size < spec.min_size:
        raise ModelError(f"model.input_size: {backbone} needs at least {spec.min_size}x{spec.min_size} pixels; "
                         f"got {size}; use input_size >= {spec.min_size}")
    channels = input_shape[-1]
    if channels not in (1, 3):
        raise ModelError(f"model.backbone: ImageNet backbones take RGB or grayscale images; these have {channels} "
                         f"channels; use another model builder")
    if trainable_layers is None:
        trainable_layers = 0 if weights else "all"
    inputs = x = pixels(input_shape)
    if tuple(input_shape[:2]) != (size, size):
        x = keras.layers.Resizing(size, size, dtype="float32", name="resize")(x)
    if channels == 1:
        x = keras.layers.Concatenate(dtype="float32", name="gray_to_rgb")([x, x, x])
    x = imagenet_preprocessing(x, backbone)
    base = load_backbone(backbone, weights, size)
    freeze(base, trainable_layers)
    # The Keras transfer-learning recipe calls a (partly) frozen backbone in inference mode. Keras 3 overrides this
    # `training=False` with fit's training=True (keras-team/keras#20285): what keeps a batch norm layer's statistics
    # is its being frozen (a layer with trainable=False always runs in inference mode).
    x = base(x) if trainable_layers == "all" else base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dense_units:
        x = keras.layers.Dense(dense_units, activation="relu", name="head_dense")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, classifier(x, num_classes), name=f"transfer_{backbone}")
