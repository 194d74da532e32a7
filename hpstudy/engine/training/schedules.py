"""Learning-rate schedules (`train.lr_schedule`): constant, step decay, cosine decay, or reduced on a plateau.

`schedule` gives a trial's as Keras callbacks holding plain values (keras-tuner deep-copies a trial's callbacks).
"""
from __future__ import annotations

import math

import keras


def schedule(train: dict, epochs: int) -> list[keras.callbacks.Callback]:
    """The learning-rate schedule of one trial, from its resolved `train` values."""
    name = train["lr_schedule"]
    if name == "plateau":
        return [keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=train["lr_decay_factor"], patience=train["lr_patience"], min_lr=train["lr_min"])]
    if name == "step":
        rule: StepDecay | CosineDecay = StepDecay(train["learning_rate"], train["lr_decay_factor"],
                                                  train["lr_decay_epochs"])
    elif name == "cosine":
        rule = CosineDecay(train["learning_rate"], train["lr_min"], epochs)
    else:
        return []
    return [keras.callbacks.LearningRateScheduler(rule)]


class StepDecay:
    """Multiply the rate by `factor` every `every` epochs."""

    def __init__(self, base: float, factor: float, every: int):
        self.base, self.factor, self.every = base, factor, every

    def __call__(self, epoch: int, lr: float = 0.0) -> float:
        return self.base * self.factor ** (epoch // self.every)


class CosineDecay:
    """Cosine from `base` at epoch 0 down to `floor` at the last epoch."""

    def __init__(self, base: float, floor: float, epochs: int):
        self.base, self.floor, self.epochs = base, floor, max(1, epochs)

    def __call__(self, epoch: int, lr: float = 0.0) -> float:
        progress = min(1.0, epoch / self.epochs)
        return self.floor + (self.base - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))
