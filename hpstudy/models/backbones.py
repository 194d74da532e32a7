"""The ImageNet backbones of `transfer`: keras.applications models, their preprocessing, weights and freezing."""
from __future__ import annotations

import os
import tempfile
from typing import NamedTuple, Optional, Union

import keras
import numpy as np

from hpstudy.errors import ModelError
from hpstudy.text import exception_line

_GCS = "https://storage.googleapis.com/tensorflow/keras-applications/"
_MOBILENET_SIZES = (96, 128, 160, 192, 224)   # the input sizes MobileNetV2 has ImageNet weights for


class Backbone(NamedTuple):
    """One keras.applications backbone: its constructor, input size and preprocessing."""
    constructor: str     # the keras.applications function
    preprocessing: str   # "caffe": RGB->BGR minus the ImageNet mean; "tf": to [-1, 1]; "builtin": in the backbone
    min_size: int        # the smallest input keras.applications accepts
    default_size: int    # input_size when the study gives none
    weights_url: str     # where keras.applications fetches the ImageNet weights without the top


BACKBONES: dict[str, Backbone] = {
    "vgg16": Backbone("VGG16", "caffe", 32, 32, _GCS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "resnet50": Backbone("ResNet50", "caffe", 32, 32,
                         _GCS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "resnet50v2": Backbone("ResNet50V2", "tf", 32, 32,
                           _GCS + "resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "xception": Backbone("Xception", "tf", 71, 71,
                         _GCS + "xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "efficientnetb2": Backbone("EfficientNetB2", "builtin", 32, 32,
                               "https://storage.googleapis.com/keras-applications/efficientnetb2_notop.h5"),
    # 96: the smallest size with its own weights (at other sizes keras loads the 224 weights, with a warning).
    "mobilenetv2": Backbone("MobileNetV2", "tf", 32, 96,
                            _GCS + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"),
}
CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]


def imagenet_preprocessing(x, backbone: str):
    """`keras.applications.<backbone>.preprocess_input` of 0..255 RGB pixels, as built-in (saveable) layers."""
    # float32 keeps the pixel arithmetic exact under mixed precision; the backbone casts to its own dtype.
    mode = BACKBONES[backbone].preprocessing
    if mode == "caffe":
        # A frozen 1x1 conv with the anti-diagonal kernel swaps R and B; no built-in layer reorders channels.
        to_bgr = keras.layers.Conv2D(3, 1, use_bias=False, trainable=False, dtype="float32", name="rgb_to_bgr")
        x = to_bgr(x)
        to_bgr.set_weights([np.eye(3, dtype="float32")[::-1].reshape(1, 1, 3, 3)])
        return keras.layers.Normalization(mean=CAFFE_MEAN_BGR, variance=[1.0] * 3, dtype="float32",
                                          name="imagenet_mean")(x)
    if mode == "tf":
        return keras.layers.Rescaling(1 / 127.5, offset=-1.0, dtype="float32", name="to_unit_range")(x)
    # EfficientNet's own first layers take 0..255 pixels: x/255, then a Normalization whose ImageNet mean and
    # variance come with the weights (with weights: null it is left at mean 0, variance 1: just x/255).
    return x


def weights_file(backbone: str, size: int) -> tuple[str, str]:
    """(file name, URL) of the ImageNet weights keras.applications loads for `backbone` at `size` pixels."""
    rows = size if size in _MOBILENET_SIZES else 224
    url = BACKBONES[backbone].weights_url.format(rows=rows)
    return url.rsplit("/", 1)[1], url


def weights_folder() -> str:
    """The folder keras.applications looks for (and downloads) weights in: keras.utils.get_file's rule."""
    try:   # the Keras home Keras computed at import: $KERAS_HOME, else ~/.keras, or /tmp/.keras if ~ is read-only
        from keras.src.backend.config import keras_home
        home = keras_home()
    except ImportError:   # a private function; where it is gone, the same rule from here
        user = os.path.expanduser("~")
        home = os.environ.get("KERAS_HOME") or os.path.join(user if os.access(user, os.W_OK) else "/tmp", ".keras")
    home = os.path.expanduser(home)
    if not os.access(home, os.W_OK):   # get_file falls back to a temporary folder where it cannot write
        home = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return os.path.join(home, "models")


def load_backbone(backbone: str, weights: Optional[str], size: int) -> keras.Model:
    """The keras.applications model without its top, named "backbone"; a ModelError if its weights are missing."""
    make = getattr(keras.applications, BACKBONES[backbone].constructor)
    try:
        model = make(include_top=False, weights=weights, input_shape=(size, size, 3))
    except Exception as error:   # keras.utils.get_file raises a bare Exception when the download fails
        if weights is None:
            raise
        name, url = weights_file(backbone, size)
        # keras.utils.get_file says "<url> -- <why>" on its first line, the traceback of the cause after it.
        reason = exception_line(str(error).splitlines()[0].split(" -- ")[-1] if str(error) else error)
        raise ModelError(f"model.weights: cannot load the ImageNet weights of {backbone} ({reason}); "
                         f"download {name} from {url} into {weights_folder()}/, or set weights: null to train "
                         f"the whole backbone from scratch") from error
    # Renamed afterwards: EfficientNet derives its weights file name from the `name` argument.
    model.name = "backbone"
    return model


def freeze(backbone: keras.Model, trainable_layers: Union[int, str], count: str = "layers") -> None:
    """Freeze all but the last `trainable_layers` layers of `backbone`; "all" freezes nothing.

    `count` says which layers are counted: "layers" counts every layer, as the Keras idiom
    `for layer in base.layers[-N:]: layer.trainable = True` does (its input layer, poolings, activations and
    additions included, so the last N may hold no weights at all); "weighted_layers" counts only the layers
    that have trainable weights (conv, dense, batch norm), so N is always N layers that learn.
    """
    if trainable_layers == "all":
        return
    if isinstance(trainable_layers, str):
        raise ValueError(f"trainable_layers is a count or 'all', not {trainable_layers!r}")
    layers = backbone.layers if count == "layers" else [layer for layer in backbone.layers if layer.trainable_weights]
    for layer in layers[:max(0, len(layers) - trainable_layers)]:
        layer.trainable = False
