"""`resnet`: residual networks for 32x32 images, trained from scratch (He et al. 2016)."""
from __future__ import annotations

from typing import Annotated, Literal

import keras

from hpstudy.models.core import Initializer, classifier, conv_block, pixels, register
from hpstudy.study.schema import Fraction, Range

# depth -> (blocks per stage, stage widths). 18/34 are the ImageNet ResNets (as torchvision's, with the ImageNet
# stem); 6n+2 are the CIFAR ResNets of the paper's section 4.2: three stages of n blocks, 16-32-64.
STAGES: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    18: ((2, 2, 2, 2), (64, 128, 256, 512)),
    34: ((3, 4, 6, 3), (64, 128, 256, 512)),
    **{6 * n + 2: ((n, n, n), (16, 32, 64)) for n in (3, 5, 7, 9, 18)},   # 20, 32, 44, 56, 110
}


@register("resnet")
def resnet(
    input_shape: tuple,
    num_classes: int,
    *,
    depth: Literal[20, 32, 44, 56, 110, 18, 34] = 20,
    width: Annotated[float, Range(0.125, 16.0)] = 1.0,
    stem: Literal["cifar", "imagenet"] = "cifar",
    dropout: Fraction = 0.0,
    kernel_initializer: Initializer = "he_normal",
) -> keras.Model:
    """ResNet from scratch: CIFAR ResNet-20/32/44/56/110 or ResNet-18/34, with a CIFAR or ImageNet stem.

    The stem is a 3x3 stride-1 conv (`cifar`, no max-pool) or, as in torchvision, a 7x7 stride-2 conv and a 3x3
    stride-2 max-pool (`imagenet`: a 32x32 image reaches the first stage at 8x8). Then stages of basic blocks
    (two 3x3 convs with batch norm) that halve the feature map and double the filters from the second stage on,
    global average pooling, `dropout`, softmax. `depth` 20-110: three stages of (depth-2)/6 blocks, 16-32-64
    filters; 18 and 34: four stages of [2,2,2,2] / [3,4,6,3] blocks, 64-128-256-512 filters. `width` multiplies
    every filter count. Where a block changes shape, its shortcut is a 1x1 conv projection with batch norm
    (option B of the paper). torchvision's resnet18 is `depth: 18, stem: imagenet`: 11,181,642 parameters for 10
    classes (with the CIFAR stem, 11,173,962); seed 001 says only "ResNet18", "The famous build-in architecture",
    and reading it as torchvision's is hpstudy's choice.
    """
    blocks, widths = STAGES[depth]
    widths = tuple(max(1, round(width * w)) for w in widths)
    inputs = pixels(input_shape)
    if stem == "imagenet":
        x = conv_bn(inputs, widths[0], 7, 2, kernel_initializer, "stem", "relu")
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    else:
        x = conv_bn(inputs, widths[0], 3, 1, kernel_initializer, "stem", "relu")
    for stage, (count, filters) in enumerate(zip(blocks, widths), start=1):
        for block in range(1, count + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            x = basic_block(x, filters, strides, kernel_initializer, f"stage{stage}_block{block}")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, classifier(x, num_classes, kernel_initializer), name=f"resnet{depth}")


def conv_bn(x, filters: int, kernel_size: int, strides: int, initializer: str, name: str, activation=None):
    """Conv (no bias: batch norm's beta replaces it), batch norm, then `activation` if given."""
    return conv_block(x, filters, kernel_size, strides=strides, batch_norm=True, activation=activation,
                      initializer=initializer, name=name)


def basic_block(x, filters: int, strides: int, initializer: str, name: str):
    """Two 3x3 conv-BN layers plus the shortcut, then ReLU (the original post-activation block)."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        # Option B, a projection only where the shape changes: option A's zero-padded identity has no built-in
        # Keras layer for the channel padding, and B is slightly better in the paper's ImageNet comparison.
        shortcut = conv_bn(x, filters, 1, strides, initializer, f"{name}_proj")
    x = conv_bn(x, filters, 3, strides, initializer, f"{name}_1", "relu")
    x = conv_bn(x, filters, 3, 1, initializer, f"{name}_2")
    x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)
