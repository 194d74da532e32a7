"""`transfer`: an ImageNet backbone from keras.applications with a fresh classifier head."""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

import keras

from hpstudy.errors import ModelError
from hpstudy.models.backbones import BACKBONES, freeze, imagenet_preprocessing, load_backbone
from hpstudy.models.core import Initializer, classifier, pixels, register
from hpstudy.study.schema import Fraction, Range


@register("transfer", raw_pixels=True)
def transfer(
    input_shape: tuple,
    num_classes: int,
    *,
    backbone: Literal["vgg16", "resnet50", "resnet50v2", "xception", "efficientnetb2", "mobilenetv2"] = "resnet50",
    weights: Optional[Literal["imagenet"]] = "imagenet",
    input_size: Optional[Annotated[int, Range(1, 1024)]] = None,
    trainable_layers: Optional[Union[Annotated[int, Range(0, 10000)], Literal["all"]]] = None,
    trainable_count: Literal["layers", "weighted_layers"] = "layers",
    dense_units: Annotated[int, Range(0, 16384)] = 0,
    dropout: Fraction = 0.0,
    kernel_initializer: Initializer = "glorot_uniform",
) -> keras.Model:
    """ImageNet backbone (VGG16, ResNet50, ResNet50V2, Xception, EfficientNetB2, MobileNetV2) with a fresh head.

    Takes raw 0..255 pixels: resizes them to `input_size` (default: 32, or 71 for xception, 96 for mobilenetv2)
    and applies the backbone's own ImageNet preprocessing inside the model. `weights: null` starts the backbone
    from random weights. `trainable_layers`: how many of the backbone's last layers train (the rest are frozen);
    0 freezes it, "all" trains everything; null (the default) is 0 with ImageNet weights and "all" with
    `weights: null` (so that it trains from scratch). `trainable_count` says what is counted: `layers` (the
    default) every layer, its input layer included, as the Keras idiom `for layer in base.layers[-N:]:
    layer.trainable = True` does; `weighted_layers` only those with weights. The backbone parameters that train:

      VGG16 (19 layers, 13 with weights)
        layers N=1: block5_pool (no weights): 0, the backbone is in effect frozen
        layers N=4: block5_conv1, block5_conv2, block5_conv3 (and block5_pool): 7,079,424
        weighted_layers N=1: block5_conv3: 2,359,808
        weighted_layers N=4: block4_conv3, block5_conv1, block5_conv2, block5_conv3: 9,439,232
      ResNet50 (175 layers, 106 with weights)
        layers N=1: conv5_block3_out (a ReLU): 0, the backbone is in effect frozen
        layers N=4: conv5_block3_3_conv 1,050,624, conv5_block3_3_bn 4,096 (and conv5_block3_add,
          conv5_block3_out): 1,054,720
        weighted_layers N=1: conv5_block3_3_bn: 4,096
        weighted_layers N=4: conv5_block3_2_conv 2,359,808, conv5_block3_2_bn 1,024, conv5_block3_3_conv
          1,050,624, conv5_block3_3_bn 4,096: 3,415,552

    Frozen batch norm layers run in inference mode, keeping the statistics they were loaded with; a trainable one
    (ResNet50's conv5_block3_3_bn at N=4) learns its scale and shift and normalizes by the batch in training. A
    number larger than the layers counted trains them all, like "all" (searched values share one type: search
    frozen against fully trained as `{tune: choice, values: [0, 4, 1000]}`). The head: global average pooling, an
    optional ReLU layer of `dense_units` (0: none), `dropout`, softmax, its dense layers started from
    `kernel_initializer`. The backbone is the layer named "backbone".
    """
    size, channels = _checked_input(backbone, input_size, input_shape)
    if trainable_layers is None:
        trainable_layers = 0 if weights else "all"
    inputs = x = pixels(input_shape)
    if tuple(input_shape[:2]) != (size, size):
        x = keras.layers.Resizing(size, size, dtype="float32", name="resize")(x)
    if channels == 1:
        x = keras.layers.Concatenate(dtype="float32", name="gray_to_rgb")([x, x, x])
    x = imagenet_preprocessing(x, backbone)
    base = load_backbone(backbone, weights, size)
    freeze(base, trainable_layers, trainable_count)
    # The Keras transfer-learning recipe calls a (partly) frozen backbone in inference mode. Keras 3 overrides this
    # `training=False` with fit's training=True (keras-team/keras#20285): what keeps a batch norm layer's statistics
    # is its being frozen (a layer with trainable=False always runs in inference mode).
    x = base(x) if trainable_layers == "all" else base(x, training=False)
    return keras.Model(inputs, _head(x, num_classes, dense_units, dropout, kernel_initializer),
                       name=f"transfer_{backbone}")


def _head(x, num_classes: int, dense_units: int, dropout: float, initializer: str):
    """Global average pooling, a ReLU layer of `dense_units` (if any), `dropout` (if any), the classifier."""
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dense_units:
        x = keras.layers.Dense(dense_units, activation="relu", kernel_initializer=initializer, name="head_dense")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return classifier(x, num_classes, initializer)


def _checked_input(backbone: str, input_size, input_shape: tuple) -> tuple[int, int]:
    """(the side the backbone gets, the images' channels); a ModelError when the backbone cannot take them."""
    spec = BACKBONES[backbone]
    size = input_size or spec.default_size
    if size < spec.min_size:
        raise ModelError(f"model.input_size: {backbone} needs at least {spec.min_size}x{spec.min_size} pixels; "
                         f"got {size}; use input_size >= {spec.min_size}")
    channels = input_shape[-1]
    if channels not in (1, 3):
        raise ModelError(f"model.backbone: ImageNet backbones take RGB or grayscale images; these have {channels} "
                         f"channels; use another model builder")
    return size, channels
