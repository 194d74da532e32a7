"""Models for use without hpstudy: `export` writes one of a study's best models as a .keras file that plain
Keras loads (`keras.models.load_model(file)`, hpstudy never imported). It takes raw 0..255 pixels (RGB, or one
grey channel for MNIST-like data), the normalization inside, and the training-only layers (augmentation,
cutout: identity at inference) left out, so it holds only Keras's built-in layers. Imports Keras: the API
imports this module lazily.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from hpstudy import files
from hpstudy.errors import HpstudyError
from hpstudy.models.preprocess import AUGMENT_BLOCK, CUTOUT_LAYER, Cutout, RandomPadCrop
from hpstudy.results import folder, outputs, trials
from hpstudy.text import exception_line
from hpstudy.trained.models import load_best

TRAINING_ONLY = (RandomPadCrop, Cutout)     # hpstudy's layers that are identity at inference


def inference_model(model):
    """`model` (a study's wrapped model) without its training-only layers: Input → normalization → body.

    The layers (and so the weights) are those of `model`, shared, not copied. Compiled with the same
    optimizer settings, the built-in sparse cross-entropy (hpstudy's label-smoothed loss is replaced: it
    would need hpstudy to load) and accuracy.
    """
    inputs = keras.Input(shape=tuple(model.input_shape[1:]), name="image")
    x = inputs
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or _training_only(layer):
            continue
        x = layer(x)
    out = keras.Model(inputs, x, name=model.name)
    # The wrapped model is a chain (preprocess.wrap): the same outputs at inference prove it.
    probe = np.random.default_rng(0).integers(0, 256, (2, *out.input_shape[1:])).astype("float32")
    expected = keras.ops.convert_to_numpy(model(probe, training=False))
    if not np.allclose(keras.ops.convert_to_numpy(out(probe, training=False)), expected, rtol=1e-4, atol=1e-5):
        raise HpstudyError(f"{model.name}: not a chain of preprocessing layers and a body; cannot export it")
    loss = model.loss if isinstance(model.loss, str) else "sparse_categorical_crossentropy"
    optimizer = model.optimizer.__class__.from_config(model.optimizer.get_config()) if model.optimizer else "adam"
    out.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    out.optimizer.build(out.trainable_variables)    # the saved file then matches what loading builds
    return out


def _training_only(layer) -> bool:
    return layer.name in (AUGMENT_BLOCK, CUTOUT_LAYER) or isinstance(layer, TRAINING_ONLY)


def export(path: str | Path, to: str | Path, *, rank: int = 0) -> "Exported":
    """Write the `rank`-th best model of the study in `path` to `to` (a .keras file) for plain Keras."""
    to = Path(to)
    if to.suffix != ".keras":
        raise HpstudyError(f"{to}: the file name must end in .keras (Keras's model format)")
    outputs.check(to, "the model")        # before any work: never onto a study's own best.keras, never through a link
    layout = folder.open_folder(path)
    number = trials.trial_at_rank(layout, rank)
    model = load_best(layout, rank=rank)
    out = inference_model(model)
    custom = sorted(_custom_objects(out.get_config()))
    if custom:
        raise HpstudyError(f"{layout.root}: trial {number}'s model uses {', '.join(custom)}, which plain Keras "
                           "cannot load; cannot export it")
    tmp = None
    try:
        to.parent.mkdir(parents=True, exist_ok=True)
        tmp = files.temporary_beside(to, ".tmp.keras")     # its own new file: a link planted there is never written
        out.save(tmp)
        os.replace(tmp, outputs.check(to, "the model"))
    except OSError as err:
        raise HpstudyError(f"{to}: cannot write the model ({exception_line(err)})") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)       # gone already once renamed into place
    return Exported(file=to, trial_id=number, rank=rank, input_shape=tuple(out.input_shape[1:]),
                    class_names=list(trials.read_best(layout).get("class_names", [])))


@dataclass(frozen=True)
class Exported:
    """What `export` wrote: the file, which trial's model, its input shape and class order."""

    file: Path
    trial_id: str
    rank: int
    input_shape: tuple
    class_names: list


def _custom_objects(config) -> set[str]:
    """Names of registered (non-Keras) classes anywhere in a model's config."""
    found = set()
    if isinstance(config, dict):
        name = config.get("registered_name")
        module = config.get("module")
        if isinstance(name, str) and (">" in name or (isinstance(module, str) and module.startswith("hpstudy"))):
            found.add(name)
        for value in config.values():
            found |= _custom_objects(value)
    elif isinstance(config, (list, tuple)):
        for value in config:
            found |= _custom_objects(value)
    return found
