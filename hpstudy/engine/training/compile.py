"""What a trial compiles with: the optimizer and the loss named by its `train` values, and how it runs
(precision, XLA, steps per compiled call)."""
from __future__ import annotations

import keras

from hpstudy.models.losses import SmoothedSparseCrossentropy
from hpstudy.study.spec import TrainSpec


def make_optimizer(train: dict, learning_rate: float | None = None) -> keras.optimizers.Optimizer:
    """The optimizer named by a trial's resolved `train` values (at `learning_rate` if given)."""
    common = {"learning_rate": learning_rate or train["learning_rate"], "weight_decay": train["weight_decay"]}
    name = train["optimizer"]
    if name == "sgd":
        return keras.optimizers.SGD(momentum=train["momentum"], nesterov=train["nesterov"], **common)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(momentum=train["momentum"], **common)
    return (keras.optimizers.AdamW if name == "adamw" else keras.optimizers.Adam)(**common)


def make_loss(train: dict):
    """Sparse categorical cross-entropy, with label smoothing when `train.label_smoothing` is set."""
    if train["label_smoothing"]:
        return SmoothedSparseCrossentropy(train["label_smoothing"])
    # The built-in by name when it is enough: a saved model then needs nothing from hpstudy to load.
    return "sparse_categorical_crossentropy"


def compile_model(model: keras.Model, train: dict, learning_rate: float | None = None) -> keras.Model:
    """Compile `model` for a trial: its optimizer, loss, the accuracy metric, XLA and steps per execution.

    A `mixed_float16` model (see `set_precision`) gets a loss-scaling optimizer.
    """
    optimizer = make_optimizer(train, learning_rate)
    if model.dtype_policy.name == "mixed_float16":
        # Keras would wrap it itself, but then saves the inner optimizer: the model would load without loss
        # scaling (and its optimizer state) in a process whose global policy is float32.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    steps = train.get("steps_per_execution", TrainSpec.steps_per_execution)
    if keras.backend.backend() == "torch":
        # Keras's torch trainer refuses more than one step per call; it only changes speed, not the training,
        # so the same study file runs unchanged there.
        steps = 1
    model.compile(optimizer=optimizer, loss=make_loss(train), metrics=["accuracy"],
                  jit_compile=train.get("jit_compile", TrainSpec.jit_compile), steps_per_execution=steps)
    return model


def set_precision(precision: str) -> None:
    """Make `precision` (float32, mixed_float16, mixed_bfloat16) Keras's global dtype policy.

    Layers take the policy when they are created, so call this before building; float32 resets it, so one
    study's policy never leaks into the next built in the same process.
    """
    keras.config.set_dtype_policy(precision)


def unfreeze_backbone(model: keras.Model) -> bool:
    """Make every layer but batch norm of the layer named "backbone" inside `model` trainable (fine-tuning).

    Returns False when `model` has no backbone. Recompile the model after.
    """
    backbone = _find(model, "backbone")
    if backbone is None:
        return False
    # Layer by layer: under the TensorFlow backend `backbone.trainable = True` is a no-op while the backbone's
    # own flag is already True (AutoTrackable skips re-assigning an identical value), as it is after freezing.
    # Batch norm stays frozen (a frozen BatchNormalization runs in inference mode): fine-tuning on a small new
    # dataset would otherwise replace the pretrained statistics the other layers were trained with.
    for layer in backbone.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = True
    return True


def has_backbone(model: keras.Model) -> bool:
    """Whether `model` holds a layer named "backbone" (a pretrained network a fine-tune phase unfreezes)."""
    return _find(model, "backbone") is not None


def _find(model: keras.Model, name: str):
    """The layer called `name` anywhere inside `model` (nested models included), or None."""
    for layer in model.layers:
        if layer.name == name:
            return layer
        if isinstance(layer, keras.Model) and (found := _find(layer, name)) is not None:
            return found
    return None
