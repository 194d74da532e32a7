"""How tests/models/saved_models/v0_1_0.keras was made, with hpstudy 0.1.0 as it was before its saved-model layers
and loss moved to hpstudy.models (they were hpstudy.engine.preprocess and hpstudy.engine.training then, so the
file names those modules): a tiny model behind every hpstudy layer (pad-crop, cutout) and Keras's flip and
standardization, compiled with the label-smoothed loss and trained one step, so that its optimizer state is saved too.

    cd tests/models/saved_models
    PYTHONPATH=<hpstudy 0.1.0 checkout> python make_v0_1_0.py v0_1_0.keras

test_saved_models.py loads it with today's code. Kept for provenance; it does not run against today's hpstudy.
"""
import sys

import keras
import numpy as np

from hpstudy.engine import preprocess, training

keras.utils.set_random_seed(0)
body = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")],
                        name="body")
values = {"crop_padding": 2, "flip": True, "translate": 0.0, "cutout": 3, "standardize": True}
x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3)).astype("uint8")
model = preprocess.wrap(body, values, stats=preprocess.pixel_stats(x), seed=0)
training.compile_model(model, {"optimizer": "adam", "learning_rate": 1e-3, "weight_decay": 0.0,
                               "label_smoothing": 0.1, "jit_compile": False, "steps_per_execution": 1})
model.fit(x.astype("float32"), np.arange(6) % 3, batch_size=6, epochs=1, verbose=0)
model.save(sys.argv[1])
