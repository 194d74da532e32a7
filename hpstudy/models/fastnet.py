"""`resnet9`: the ResNet-9-style fast CIFAR-10 net of the DAWNBench speed runs (Myrtle.ai, Page 2018)."""
from __future__ import annotations

from typing import Annotated, Literal

import keras

from hpstudy.models.core import Initializer, classifier, conv_block, pixels, register
from hpstudy.study.schema import Fraction, Range

# The original multiplies its logits by 0.125 (softer early softmax at its high learning rates); here the pooled
# features are scaled instead, which is the same up to the classifier's bias.
FEATURE_SCALE = 0.125


@register("resnet9")
def resnet9(
    input_shape: tuple,
    num_classes: int,
    *,
    width: Annotated[float, Range(0.125, 8.0)] = 1.0,
    pooling: Literal["max", "avg"] = "max",
    dropout: Fraction = 0.0,
    kernel_initializer: Initializer = "he_uniform",
) -> keras.Model:
    """ResNet-9 (Myrtle.ai's DAWNBench net): few, wide layers, so fast per image on a GPU.

    A 64-filter conv, then three stages: 128 filters, max-pool and a residual pair of convs; 256 filters and
    max-pool; 512 filters, max-pool and a residual pair. Then global `pooling` (max, as in the original, or
    avg), the features scaled by 0.125, `dropout`, softmax. Every conv is 3x3 without bias, with batch norm and
    ReLU; `width` multiplies every filter count. 6,573,130 parameters for 10 classes at width 1.
    """
    def conv(x, filters: int, name: str):
        """Convolution, batch norm and activation."""
        return conv_block(x, max(1, round(width * filters)), 3, batch_norm=True, activation="relu",
                          initializer=kernel_initializer, name=name)

    def residual(x, filters: int, name: str):
        """Two conv blocks added to their input."""
        y = conv(conv(x, filters, f"{name}_1"), filters, f"{name}_2")
        return keras.layers.Add(name=f"{name}_add")([x, y])

    inputs = pixels(input_shape)
    x = conv(inputs, 64, "prep")
    for stage, (filters, has_residual) in enumerate([(128, True), (256, False), (512, True)], start=1):
        x = conv(x, filters, f"stage{stage}")
        x = keras.layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
        if has_residual:
            x = residual(x, filters, f"stage{stage}_res")
    x = (keras.layers.GlobalMaxPooling2D if pooling == "max" else keras.layers.GlobalAveragePooling2D)(name="pool")(x)
    x = keras.layers.Rescaling(FEATURE_SCALE, name="feature_scale")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, classifier(x, num_classes, kernel_initializer), name="resnet9")
