"""Normalization and augmentation layers: exact behaviour, training-only, saved with the model."""
import subprocess
import sys

import keras
import numpy as np
import pytest

from hpstudy import models
from hpstudy.engine.search.checks import build_each, check
from hpstudy.errors import SpecError
from hpstudy.models import preprocess
from hpstudy.study import spec
from hpstudy.study.spec import PreprocessSpec

OFF = {"standardize": False, "flip": False, "crop_padding": 0, "translate": 0.0, "cutout": 0}


def _images(n=16, size=8, seed=0):
    return np.random.default_rng(seed).integers(1, 256, (n, size, size, 3)).astype("float32")


def test_pad_crop_is_a_shifted_window_of_the_padded_image():
    x = _images()
    out = keras.ops.convert_to_numpy(preprocess.RandomPadCrop(2, seed=1)(x, training=True))
    padded = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)])
    offsets = set()
    for image, source in zip(out, padded):
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if np.array_equal(image, source[dy:dy + 8, dx:dx + 8])]
        assert matches, "every output is an exact crop of its padded input"
        offsets.add(matches[0])
    assert len(offsets) > 1, "offsets differ between images"
    assert np.array_equal(preprocess.RandomPadCrop(2)(x, training=False), x)


def test_cutout_zeroes_one_square_at_most_size_wide():
    x = _images()
    out = keras.ops.convert_to_numpy(preprocess.Cutout(3, seed=2)(x, training=True))
    for image, source in zip(out, x):
        zero_rows, zero_cols = np.nonzero((image == 0).all(axis=-1))
        assert 0 < len(zero_rows) <= 9
        assert np.ptp(zero_rows) < 3 and np.ptp(zero_cols) < 3
        kept = (image != 0).any(axis=-1)
        assert np.array_equal(image[kept], source[kept])
    assert np.array_equal(preprocess.Cutout(3)(x, training=False), x)


def test_pixel_stats_match_numpy():
    x = np.random.default_rng(1).integers(0, 256, (50, 6, 6, 3), dtype=np.uint8)
    mean, variance = preprocess.pixel_stats(x, chunk=7)
    flat = x.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(axis=0))
    np.testing.assert_allclose(variance, flat.var(axis=0))


def _wrapped(**values):
    body = models.build("plain_cnn", (8, 8, 3), 3, conv_layers=1, filters=2, dense_units=4)
    x = np.random.default_rng(2).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    return preprocess.wrap(body, {**OFF, **values}, stats=preprocess.pixel_stats(x), seed=3), x


def test_normalization_feeds_the_body():
    model, x = _wrapped(standardize=True)
    normalized = keras.Model(model.input, model.get_layer("standardize").output)(x.astype("float32"))
    normalized = keras.ops.convert_to_numpy(normalized).reshape(-1, 3)
    np.testing.assert_allclose(normalized.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(axis=0), 1, atol=1e-3)
    rescaled, _ = _wrapped()
    assert rescaled.get_layer("rescale").scale == pytest.approx(1 / 255)


def test_augmentation_only_while_training_and_saved_with_the_model(tmp_path):
    model, x = _wrapped(standardize=True, flip=True, crop_padding=2, translate=0.1, cutout=3)
    assert model.get_layer(preprocess.AUGMENT_BLOCK) and model.get_layer(preprocess.CUTOUT_LAYER)
    x = x.astype("float32")
    inference = keras.ops.convert_to_numpy(model(x, training=False))
    assert np.allclose(inference, keras.ops.convert_to_numpy(model(x, training=False)))
    assert not np.allclose(inference, keras.ops.convert_to_numpy(model(x, training=True)))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)), inference, rtol=1e-5, atol=1e-6)


def test_preprocess_section_parses_and_is_searchable():
    study = spec.loads("name: p\npreprocess:\n  flip: {tune: boolean}\n  crop_padding: 4\n"
                       "  cutout: {tune: choice, values: [0, 8]}\n")
    assert study.preprocess.crop_padding == 4
    assert [t.name for t in study.tunables()] == ["preprocess.flip", "preprocess.cutout"]
    assert study.to_dict()["preprocess"]["crop_padding"] == 4


@pytest.mark.parametrize("body, key", [
    ("cutout: -1", "preprocess.cutout"),
    ("translate: 0.9", "preprocess.translate"),
    ("flip: yes", "preprocess.flip"),
    ("mixup: 0.2", "preprocess.mixup"),
])
def test_bad_preprocess_values(body, key):
    with pytest.raises(SpecError, match=key.replace(".", r"\.")):
        spec.loads(f"name: p\npreprocess:\n  {body}\n", source="s.yaml")


def test_cutout_larger_than_the_images_is_refused_before_training():
    study = check(spec.loads("name: p\npreprocess:\n  cutout: {tune: choice, values: [8, 40]}\n",
                                    source="s.yaml"))
    with pytest.raises(SpecError, match="s.yaml: preprocess.cutout: 40 is larger than the 32-pixel images"):
        build_each(study, (32, 32, 3), 10)


def test_defaults_are_no_augmentation():
    assert {k: getattr(PreprocessSpec(), k) for k in OFF} == OFF


@pytest.mark.slow
def test_a_search_over_augmentation_runs_end_to_end(tmp_path):
    import hpstudy
    from tests.helpers import TINY, write_study
    text = TINY.format(name="aug").replace("  dropout: {tune: choice, values: [0.0, 0.5]}\n", "")
    path = write_study(tmp_path, text, name="aug", preprocess="""
        standardize: true
        flip: {tune: boolean}
        crop_padding: 4
        translate: 0.1
        cutout: 8
    """)
    study = hpstudy.run(path, results_dir=tmp_path / "results")
    trials = study.trials
    assert sorted(trials["preprocess.flip"]) == [False, True]
    assert (trials.status == "COMPLETED").all()
    model = hpstudy.load_best(study.path)
    assert model.get_layer("standardize") and model.get_layer(preprocess.AUGMENT_BLOCK)
    # A fresh process has imported none of hpstudy's layers yet: load_best must still load them.
    code = f"import hpstudy; print(hpstudy.load_best({str(study.path)!r}).get_layer('cutout').size)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == "8"
