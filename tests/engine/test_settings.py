"""train.precision, jit_compile and steps_per_execution: each trains, and a mixed-precision model saves and loads."""
import keras
import keras_tuner as kt
import numpy as np
import pytest

from hpstudy.engine.search.hypermodel import SpecHyperModel
from hpstudy.engine.training.compile import compile_model
from hpstudy.study import spec

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
Y = RNG.integers(0, 10, 32)


# Every preprocessing layer, so each runs under the policy (standardize too: Normalization's constants).
EVERY_LAYER = {"standardize": True, "flip": True, "crop_padding": 2, "cutout": 4, "translate": 0.1}


def hypermodel(preprocess=EVERY_LAYER, **train):
    study = spec.from_dict({
        "name": "settings",
        "model": {"conv_layers": 1, "filters": 4, "dense_units": 8},
        "preprocess": preprocess,
        "train": {"batch_size": 8, "label_smoothing": 0.1, **train},
    })
    return SpecHyperModel(study, X.shape[1:], 10, stats=(np.full(3, 127.0), np.full(3, 5000.0)))


def train_one_epoch(**train):
    model_maker = hypermodel(**train)
    hp = kt.HyperParameters()
    model = model_maker.build(hp)
    history = model_maker.fit(hp, model, X, Y, epochs=1, verbose=0, validation_data=(X[:8], Y[:8]))
    return model, history.history


@pytest.fixture(autouse=True)
def float32_after():
    yield
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("precision, compute", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16"),
                                                ("float32", "float32")])
def test_precision_sets_the_policy_and_trains(precision, compute):
    model, history = train_one_epoch(precision=precision)
    assert keras.config.dtype_policy().name == precision
    convs = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(c.compute_dtype == compute and c.variable_dtype == "float32" for c in convs)
    assert np.isfinite(history["loss"][0]) and np.isfinite(history["val_loss"][0])
    assert model.output.dtype == "float32"        # the float32 softmax every builder ends with
    # Keras wraps the optimizer for loss scaling itself, under float16 only.
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")


def test_float32_resets_a_previous_studys_policy():
    train_one_epoch(precision="mixed_bfloat16")
    model, _ = train_one_epoch(precision="float32")
    assert keras.config.dtype_policy().name == "float32"
    assert all(layer.compute_dtype == "float32" for layer in model._flatten_layers()
               if isinstance(layer, keras.layers.Conv2D))


@pytest.mark.parametrize("jit_compile", [False, True, "auto"])
def test_jit_compile_reaches_compile(jit_compile, monkeypatch):
    passed = []
    compile_ = keras.Model.compile

    def recorded(self, *args, **kwargs):     # Keras's compile, run as it is; only its argument is kept
        passed.append(kwargs.get("jit_compile"))
        return compile_(self, *args, **kwargs)
    monkeypatch.setattr(keras.Model, "compile", recorded)
    # Without translate: Keras's RandomTranslation cannot be XLA-compiled (Keras then turns jit_compile off).
    model, history = train_one_epoch(preprocess={**EVERY_LAYER, "translate": 0.0}, jit_compile=jit_compile)
    assert np.isfinite(history["loss"][0])
    assert passed == [jit_compile]
    # auto is Keras's choice (README): XLA under JAX, under TensorFlow only with a GPU, never under torch.
    gpu = bool(keras.distribution.list_devices("gpu"))
    auto = {"tensorflow": gpu, "jax": True, "torch": False}[keras.backend.backend()]
    assert model.jit_compile is (auto if jit_compile == "auto" else jit_compile)


def test_steps_per_execution_reaches_compile():
    model, history = train_one_epoch(steps_per_execution=4)
    expected = 1 if keras.backend.backend() == "torch" else 4    # the torch trainer allows 1 only
    assert model.steps_per_execution == expected
    assert np.isfinite(history["loss"][0])


def test_compile_model_defaults_for_a_partial_train_dict():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    train = {"optimizer": "adam", "learning_rate": 1e-3, "weight_decay": 0.0, "label_smoothing": 0.0}
    compile_model(model, train)
    assert model.steps_per_execution == 1


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_model_saves_and_loads(tmp_path, precision):
    model, _ = train_one_epoch(precision=precision)
    model.save(tmp_path / "m.keras")
    keras.config.set_dtype_policy("float32")          # loading must not depend on the global policy
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(X[:4], verbose=0), model.predict(X[:4], verbose=0), atol=1e-6)
    compute = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}[precision]
    assert {layer.compute_dtype for layer in loaded._flatten_layers()
            if isinstance(layer, keras.layers.Conv2D)} == {compute}
    assert isinstance(loaded.optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")
