"""Model builders: plain Keras functions of plain values, in one registry (see `core`); and what a saved model holds
of hpstudy's own: the preprocessing layers and `wrap` (`preprocess`), the label-smoothed loss (`losses`).

Importing this package registers those layers and that loss with Keras, as `keras.models.load_model` needs.
"""

# importing a builder module registers its builders; importing preprocess and losses registers their Keras objects
from hpstudy.models import allcnn, deep, fastnet, losses, plain, preprocess, resnet, transfer, vgg
from hpstudy.models.core import BUILDERS, RAW_PIXELS, build, builder, describe, options, register

__all__ = ["BUILDERS", "RAW_PIXELS", "build", "builder", "describe", "options", "register",
           "plain", "allcnn", "deep", "vgg", "resnet", "fastnet", "transfer", "preprocess", "losses"]
