"""Model builders: plain Keras functions of plain values, in one registry (see `core`)."""

# importing a builder module registers its builders
from hpstudy.models import allcnn, deep, fastnet, plain, resnet, transfer, vgg
from hpstudy.models.core import BUILDERS, RAW_PIXELS, build, builder, describe, options, register

__all__ = ["BUILDERS", "RAW_PIXELS", "build", "builder", "describe", "options", "register",
           "plain", "allcnn", "deep", "vgg", "resnet", "fastnet", "transfer"]
