"""Several accelerators for one trial (`train.distribution: mirrored`): data parallelism, per backend."""
from __future__ import annotations

import keras


def check(distribution: str | None) -> str | None:
    """Why `distribution` cannot run under this Keras backend, or None when it can."""
    backend = keras.backend.backend()
    if distribution == "mirrored" and backend not in ("tensorflow", "jax"):
        return f"mirrored needs the tensorflow or jax backend; KERAS_BACKEND is {backend}"
    return None


def strategy_arguments(distribution: str | None) -> dict:
    """What the tuner needs for `distribution`: under TensorFlow, the strategy keras-tuner builds and fits each
    trial's model in (under JAX, `before_build` sets Keras's distribution instead)."""
    if distribution != "mirrored" or keras.backend.backend() != "tensorflow":
        return {}
    # TensorFlow-only code: keras-tuner builds and fits each trial's model inside this strategy's scope.
    import tensorflow as tf
    return {"distribution_strategy": tf.distribute.MirroredStrategy()}


def before_build(distribution: str | None) -> None:
    """Under JAX, make Keras's distribution data-parallel for the model about to be built. Set anew for each
    model: the keras.backend.clear_session that keras-tuner calls before each build resets it."""
    if distribution == "mirrored" and keras.backend.backend() == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
