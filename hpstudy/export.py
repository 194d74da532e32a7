"""Models for use without hpstudy, and predictions on image files.

`export` writes one of a study's best models as a .keras file that plain Keras loads
(`keras.models.load_model(file)`, hpstudy never imported): it takes raw 0..255 RGB pixels, the
normalization inside, and the training-only layers (augmentation, cutout: identity at inference)
left out, so it holds only Keras's built-in layers. `predict` classifies image files of any size.

Keras is imported only by the functions that need a model (Pillow alone reads images).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpstudy import api, results
from hpstudy.errors import HpstudyError, ResultsError

AUGMENT_BLOCK = "augment"       # as in hpstudy.preprocess (not imported: it imports Keras)
CUTOUT_LAYER = "cutout"
TRAINING_ONLY = ("RandomPadCrop", "Cutout")     # hpstudy's layers that are identity at inference


# ---------------------------------------------------------------- export
def inference_model(model):
    """`model` (a study's wrapped model) without its training-only layers: Input → normalization → body.

    The layers (and so the weights) are those of `model`, shared, not copied. Compiled with the same
    optimizer settings, the built-in sparse cross-entropy (hpstudy's label-smoothed loss is replaced: it
    would need hpstudy to load) and accuracy.
    """
    keras = api.import_quietly("keras")
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
    return layer.name in (AUGMENT_BLOCK, CUTOUT_LAYER) or type(layer).__name__ in TRAINING_ONLY


def export(path: str | Path, to: str | Path, *, rank: int = 0) -> "Exported":
    """Write the `rank`-th best model of the study in `path` to `to` (a .keras file) for plain Keras."""
    to = Path(to)
    if to.suffix != ".keras":
        raise HpstudyError(f"{to}: the file name must end in .keras (Keras's model format)")
    layout = results.open_folder(path)
    number = api.trial_at_rank(layout, rank)
    model = api.load_best(layout.root, rank=rank)
    out = inference_model(model)
    custom = sorted(_custom_objects(out.get_config()))
    if custom:
        raise HpstudyError(f"{layout.root}: trial {number}'s model uses {', '.join(custom)}, which plain Keras "
                           "cannot load; cannot export it")
    tmp = to.with_name(f".{to.stem}.tmp.keras")
    try:
        to.parent.mkdir(parents=True, exist_ok=True)
        out.save(tmp)
        os.replace(tmp, to)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise HpstudyError(f"{to}: cannot write the model ({err.strerror or err})") from None
    return Exported(file=to, trial_id=number, rank=rank, input_shape=tuple(out.input_shape[1:]),
                    class_names=list(results.read_best(layout).get("class_names", [])))


@dataclass(frozen=True)
class Exported:
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


# ---------------------------------------------------------------- predict
def read_image(file: str | Path):
    """An image file (any format and size Pillow reads) as an RGB Pillow image; an HpstudyError naming the
    file if it cannot be read."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(file) as image:
            image.load()
            return image.convert("RGB")
    except UnidentifiedImageError:
        raise HpstudyError(f"{file}: cannot read the image (not an image format Pillow reads)") from None
    except (OSError, ValueError, SyntaxError) as err:
        reason = getattr(err, "strerror", None) or " ".join(str(err).split()) or type(err).__name__
        raise HpstudyError(f"{file}: cannot read the image ({reason})") from None


def to_array(image, input_shape: tuple) -> np.ndarray:
    """An RGB Pillow image resized (bilinear) to the model's (height, width, 3) input as uint8 pixels."""
    from PIL import Image
    height, width = int(input_shape[0]), int(input_shape[1])
    if image.size != (width, height):
        image = image.resize((width, height), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


@dataclass(frozen=True)
class Prediction:
    file: str
    top: list       # (class name, probability), most probable first


def predict(path: str | Path, files: list, *, top: int = 3, rank: int = 0) -> list[Prediction]:
    """The `top` most probable classes of each image file, by the `rank`-th best model of a study.

    Every file is read before the model is loaded: an unreadable one fails at once, naming it.
    """
    layout = results.open_folder(path)
    images = [read_image(f) for f in files]
    class_names = results.read_best(layout).get("class_names")
    model = api.load_best(layout.root, rank=rank)
    if not class_names:
        raise ResultsError(f"{layout.best}: no class names; run the study until a trial completes")
    batch = np.stack([to_array(image, model.input_shape[1:]) for image in images])
    probabilities = np.asarray(model.predict(batch, verbose=0), dtype=np.float64)
    top = max(1, min(top, probabilities.shape[-1]))
    out = []
    for file, row in zip(files, probabilities):
        best = np.argsort(-row, kind="stable")[:top]
        out.append(Prediction(str(file), [(str(class_names[k]), float(row[k])) for k in best]))
    return out
