"""Several accelerators for one trial (`train.distribution: mirrored`): data parallelism, per backend."""
from __future__ import annotations

import keras


def check(distribution: str | None) -> str | None:
    """Why `distribution` cannot run under this Keras backend, or None when it can."""
    backend = keras.backend.backend()
    if distribution == "mirrored" and backend not in ("tensorflow", "jax"):
        return f"mirrored needs the tensorflow or jax backend; KERAS_BACKEND is {backend}"
    return None


def tuner_arguments(distribution: str | None) -> dict:
    """What the tuner needs for `distribution`; under JAX, Keras's global distribution is set here instead."""
    if distribution != "mirrored":
        return {}
    if keras.backend.backend() == "tensorflow":
        # TensorFlow-only code: keras-tuner builds and fits each trial's model inside this strategy's scope.
        import tensorflow as tf
        return {"distribution_strategy": tf.distribute.MirroredStrategy()}
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    return {}
