"""Models saved by earlier versions still load: hpstudy's layers and loss keep the Keras names they were saved under
(`hpstudy>RandomPadCrop`, ...), whichever module now holds them. saved_models/v0_1_0.keras was saved by hpstudy 0.1.0
when they lived in hpstudy.engine.preprocess and hpstudy.engine.training (saved_models/make_v0_1_0.py made it)."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from hpstudy.models import losses, preprocess
from hpstudy.trained.models import load_model_file

ROOT = Path(__file__).resolve().parents[2]
OLD_MODEL = Path(__file__).resolve().parent / "saved_models" / "v0_1_0.keras"
# The names hpstudy 0.1.0 saved its objects under: a model names them, and Keras finds them by these names.
SAVED_NAMES = {preprocess.RandomPadCrop: "hpstudy>RandomPadCrop", preprocess.Cutout: "hpstudy>Cutout",
               losses.SmoothedSparseCrossentropy: "hpstudy>SmoothedSparseCrossentropy"}

# In a fresh interpreter: plain Keras refuses the old file, then loads it once `hpstudy.models` is imported, which
# imports neither the engine nor anything of the old module names.
PLAIN_KERAS = """
import sys, keras
try:
    keras.models.load_model(sys.argv[1])
    print("loaded without hpstudy")
except Exception as err:
    print("refused without hpstudy:", type(err).__name__)
import hpstudy.models
model = keras.models.load_model(sys.argv[1])
def layers(model):
    for layer in model.layers:
        yield layer
        yield from layers(layer) if isinstance(layer, keras.Model) else ()
print("layers", *sorted(type(layer).__module__ + "." + type(layer).__name__ for layer in layers(model)
                        if type(layer).__module__.startswith("hpstudy")))
print("loss", type(model.loss).__module__ + "." + type(model.loss).__name__)
print("engine imported", sorted(m for m in sys.modules if m.startswith(("hpstudy.engine", "hpstudy.trained"))))
"""


def test_the_layers_and_loss_keep_the_names_models_were_saved_under():
    assert {cls: keras.saving.get_registered_name(cls) for cls in SAVED_NAMES} == SAVED_NAMES
    with zipfile.ZipFile(OLD_MODEL) as archive:
        config = archive.read("config.json").decode()
    assert all(f'"registered_name": "{name}"' in config for name in SAVED_NAMES.values())
    assert '"module": "hpstudy.engine.preprocess"' in config, "the fixture is a model of the old layout"


def test_load_best_loads_a_model_saved_by_an_earlier_version():
    """load_best's reader (Keras's safe mode) on the 0.1.0 file: hpstudy's layers and loss, compiled, its weights."""
    model = load_model_file(OLD_MODEL)
    assert isinstance(model.get_layer("augment").get_layer("pad_crop"), preprocess.RandomPadCrop)
    assert model.get_layer("augment").get_layer("pad_crop").padding == 2
    assert isinstance(model.get_layer("cutout"), preprocess.Cutout) and model.get_layer("cutout").size == 3
    assert isinstance(model.loss, losses.SmoothedSparseCrossentropy) and model.loss.label_smoothing == 0.1
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 1, "the optimizer state of its one step"
    x = np.random.default_rng(1).integers(0, 256, (4, 8, 8, 3)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(model(x, training=False))
    assert probabilities.shape == (4, 3) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    with zipfile.ZipFile(OLD_MODEL) as archive:
        assert json.loads(archive.read("metadata.json"))["keras_version"]


@pytest.mark.slow
def test_plain_keras_loads_it_after_importing_hpstudy_models():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", PLAIN_KERAS, str(OLD_MODEL)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert lines["refused"].startswith("without hpstudy"), done.stdout
    assert lines["layers"].split() == ["hpstudy.models.preprocess.Cutout", "hpstudy.models.preprocess.RandomPadCrop"]
    assert lines["loss"] == "hpstudy.models.losses.SmoothedSparseCrossentropy"
    assert lines["engine"] == "imported []", "loading a model needs nothing of the engine"
