"""hpstudy's own loss, which a compiled saved model may hold: cross-entropy of integer labels with label smoothing.

Registered with Keras under `hpstudy>SmoothedSparseCrossentropy` (importing `hpstudy.models` registers it).
Only ``keras`` and ``keras.ops``: every backend runs it.
"""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hpstudy")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels smoothed towards uniform (Keras's sparse loss has no label_smoothing)."""

    def __init__(self, label_smoothing: float = 0.1, name: str = "sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        """The mean label-smoothed cross-entropy of a batch."""
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        one_hot = ops.one_hot(labels, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        """The loss's arguments, for saving and loading."""
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
