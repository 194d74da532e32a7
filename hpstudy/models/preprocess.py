"""Normalization and augmentation as Keras layers inside the model.

They run in the training graph (on the accelerator, batch at a time, never a per-image Python
loop) and augmentation is inactive at inference, so a saved model takes raw 0..255 pixels and
needs no preprocessing code (importing this module registers its two layers for loading). Only
``keras`` and ``keras.ops``: every backend runs them.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from hpstudy.errors import ModelError

AUGMENT_BLOCK = "augment"   # the nested model holding the training-only layers
CUTOUT_LAYER = "cutout"


@keras.saving.register_keras_serializable(package="hpstudy")
class RandomPadCrop(keras.layers.Layer):
    """Pad each image by ``padding`` pixels (zeros) and crop it back at a random offset, per image.

    The classic CIFAR augmentation (4-pixel pad, 32×32 crop). Identity at inference.
    """

    def __init__(self, padding: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.padding, self.seed = int(padding), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        """The layer's output for a batch (identity at inference)."""
        if not training or self.padding == 0:
            return images
        p, (height, width) = self.padding, images.shape[1:3]
        padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
        batch = ops.shape(images)[0]
        dy = keras.random.randint((batch, 1), 0, 2 * p + 1, seed=self.seed_generator)
        dx = keras.random.randint((batch, 1), 0, 2 * p + 1, seed=self.seed_generator)
        # A per-image window as two one-hot matrix products: exact, the same ops on every backend, and
        # measured faster than gathers on TensorFlow's CPU kernels (benchmarks/pipeline.md).
        rows = ops.one_hot(ops.arange(height)[None, :] + dy, height + 2 * p, dtype=images.dtype)
        cols = ops.one_hot(ops.arange(width)[None, :] + dx, width + 2 * p, dtype=images.dtype)
        out = ops.einsum("bik,bklc->bilc", rows, padded)
        return ops.einsum("bjl,bilc->bijc", cols, out)

    def compute_output_shape(self, input_shape):
        """The same shape as the input."""
        return input_shape

    def get_config(self):
        """The layer's arguments, for saving and loading."""
        return {**super().get_config(), "padding": self.padding, "seed": self.seed}


@keras.saving.register_keras_serializable(package="hpstudy")
class Cutout(keras.layers.Layer):
    """Zero a ``size``×``size`` square at a random centre of each image (DeVries & Taylor, 2017).

    The square may hang over the border, as in the original. Identity at inference.
    """

    def __init__(self, size: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.size, self.seed = int(size), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        """The layer's output for a batch (identity at inference)."""
        if not training or self.size == 0:
            return images
        height, width = images.shape[1:3]
        batch = ops.shape(images)[0]
        cy = keras.random.randint((batch, 1, 1), 0, height, seed=self.seed_generator)
        cx = keras.random.randint((batch, 1, 1), 0, width, seed=self.seed_generator)
        top, left = cy - self.size // 2, cx - self.size // 2
        rows = ops.arange(height)[None, :, None]
        cols = ops.arange(width)[None, None, :]
        inside = (rows >= top) & (rows < top + self.size) & (cols >= left) & (cols < left + self.size)
        return images * ops.cast(ops.logical_not(inside), images.dtype)[..., None]

    def compute_output_shape(self, input_shape):
        """The same shape as the input."""
        return input_shape

    def get_config(self):
        """The layer's arguments, for saving and loading."""
        return {**super().get_config(), "size": self.size, "seed": self.seed}


def pixel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and variance of uint8 images (N, H, W, C), in chunks (no float copy of all)."""
    total = np.zeros(images.shape[-1])
    squares = np.zeros(images.shape[-1])
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk].reshape(-1, images.shape[-1]).astype(np.float64)
        total += part.sum(axis=0)
        squares += (part * part).sum(axis=0)
    count = max(1, images.size // images.shape[-1])
    mean = total / count
    return mean, np.maximum(squares / count - mean * mean, 1e-6)


def check(values: dict, input_shape: tuple) -> None:
    """Refuse settings that cannot apply to images of ``input_shape`` (a ModelError naming the key)."""
    side = min(input_shape[:2])
    if values["cutout"] > side:
        raise ModelError(f"preprocess.cutout: {values['cutout']} is larger than the {side}-pixel images")
    if values["crop_padding"] > side:
        raise ModelError(f"preprocess.crop_padding: {values['crop_padding']} is larger than the {side}-pixel images")


def wrap(body: keras.Model, values: dict, *, stats: tuple | None = None, seed: int = 0,
         raw_pixels: bool = False) -> keras.Model:
    """``body`` behind the study's preprocessing: augment (training only), normalize, cutout.

    ``values`` are the preprocess section's values for this trial; ``stats`` the training images'
    per-channel (mean, variance), needed when ``standardize`` is on. A ``raw_pixels`` body (an
    ImageNet backbone with its own preprocessing) gets 0..255 pixels: no normalization here.
    """
    input_shape = tuple(body.input_shape[1:])
    check(values, input_shape)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    augment = []
    if values["crop_padding"]:
        augment.append(RandomPadCrop(values["crop_padding"], seed=seed, name="pad_crop"))
    if values["flip"]:
        augment.append(keras.layers.RandomFlip("horizontal", seed=seed + 1, name="flip"))
    if values["translate"]:
        augment.append(keras.layers.RandomTranslation(values["translate"], values["translate"], fill_mode="constant",
                                                      seed=seed + 2, name="translate"))
    if augment:
        x = keras.Sequential(augment, name=AUGMENT_BLOCK)(x)
    if not raw_pixels:
        x = _normalize(x, values["standardize"], stats)
    if values["cutout"]:
        x = Cutout(values["cutout"], seed=seed + 3, name=CUTOUT_LAYER)(x)
    return keras.Model(inputs, body(x), name=body.name)


def _normalize(x, standardize: bool, stats: tuple | None):
    """Pixels / 255, or standardized with the training images' per-channel mean and variance."""
    if not standardize:
        return keras.layers.Rescaling(1.0 / 255, name="rescale")(x)
    if stats is None:
        raise ValueError("standardize needs the training images' per-channel mean and variance")
    mean, variance = stats
    return keras.layers.Normalization(mean=list(mean), variance=list(variance), name="standardize")(x)
