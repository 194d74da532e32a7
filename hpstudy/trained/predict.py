"""Predictions on image files of any size by one of a study's best models. Every file is read (Pillow alone)
before the model is loaded, so an unreadable one fails at once, naming it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpstudy.errors import HpstudyError, ResultsError
from hpstudy.lazy import import_quietly
from hpstudy.results import folder, trials
from hpstudy.text import exception_line


def read_image(file: str | Path):
    """An image file (any format and size Pillow reads) as an RGB Pillow image; an HpstudyError naming the
    file if it cannot be read. A named pipe, a socket or a device is refused unopened (reading one could hang),
    a decompression bomb (more pixels than Pillow's limit) before it is decoded; Pillow's warnings and log
    lines are dropped."""
    from PIL import Image, UnidentifiedImageError

    from hpstudy.data.guard import quiet_images
    from hpstudy.data.paths import open_regular, quoted
    try:
        opened = open_regular(file, "give the path of an image file")
    except HpstudyError as err:
        if isinstance(err.__cause__, OSError):      # missing, no permission, a loop of links
            reason = exception_line(err.__cause__)
            raise HpstudyError(f"{quoted(file)}: cannot read the image ({reason})") from None
        raise
    try:
        with opened, quiet_images(), Image.open(opened) as image:
            image.load()
            return image.convert("RGB")
    except UnidentifiedImageError:
        raise HpstudyError(f"{quoted(file)}: cannot read the image (not an image format Pillow reads)") from None
    except Image.DecompressionBombError as err:
        raise HpstudyError(f"{quoted(file)}: refused: a decompression bomb? ({exception_line(err)})") from None
    except Exception as err:    # Pillow fails in many ways on bad files: OSError, SyntaxError, struct.error, ...
        raise HpstudyError(f"{quoted(file)}: cannot read the image ({quoted(exception_line(err))})") from None


def to_array(image, input_shape: tuple) -> np.ndarray:
    """An RGB Pillow image resized (bilinear) to the model's (height, width, channels) input as uint8 pixels:
    made greyscale (Pillow's ITU-R 601-2 luma) for a model of one channel (MNIST, Fashion-MNIST)."""
    from PIL import Image
    height, width = int(input_shape[0]), int(input_shape[1])
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    if input_shape[-1] == 1:
        return np.asarray(image.convert("L"), dtype=np.uint8)[..., None]
    return np.asarray(image, dtype=np.uint8)


@dataclass(frozen=True)
class Prediction:
    """One image file's most probable classes."""

    file: str
    top: list       # (class name, probability), most probable first


def predict(path: str | Path, files: list, *, top: int = 3, rank: int = 0) -> list[Prediction]:
    """The `top` most probable classes of each image file, by the `rank`-th best model of a study.

    Every file is read before the model is loaded: an unreadable one fails at once, naming it.
    """
    layout = folder.open_folder(path)
    images = [read_image(f) for f in files]
    if rank != 0:
        trials.trial_at_rank(layout, rank)      # a wrong rank is told before Keras is imported
    class_names = trials.read_best(layout).get("class_names")
    # Keras, once every file has been read, without TensorFlow's start-up lines
    model = import_quietly("hpstudy.trained.models").load_best(layout, rank=rank)
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
