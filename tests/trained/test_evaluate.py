"""Evaluation of a study's best models, load_best by rank, export for plain Keras, and `hpstudy predict`."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import hpstudy
from hpstudy.cli import main
from hpstudy.lazy import import_quietly
from hpstudy.results.folder import open_folder, study_of


@pytest.fixture(scope="module")
def test_split(finished_study):
    folder, _ = finished_study
    hypermodel = import_quietly("hpstudy.engine.search.hypermodel")
    return hypermodel.load_data(study_of(open_folder(folder))).test


def _predict(model, x):
    return np.asarray(model.predict(x, verbose=0))


def test_evaluate_tables_match_sklearn_and_figures_are_pngs(finished_study, test_split, tmp_path):
    from PIL import Image
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
    evaluate = import_quietly("hpstudy.trained.evaluate")
    folder, _ = finished_study
    best = hpstudy.load_study(folder).best
    ev = evaluate.evaluate(folder, tmp_path / "figures", top=5)     # more than there are: every completed one
    assert [m.rank for m in ev.models] == [0, 1]
    assert ev.models[0].trial_id == best["trial_id"] and ev.test_size == len(test_split.y)
    assert ev.class_names == best["class_names"]
    assert ev.models[0].test_accuracy == pytest.approx(best["test_accuracy"], abs=1e-6)
    labels = list(range(len(ev.class_names)))
    for m in ev.models:
        predicted = _predict(hpstudy.load_best(folder, rank=m.rank), test_split.x).argmax(axis=-1)
        np.testing.assert_array_equal(m.predicted, predicted)
        precision, recall, f1, support = precision_recall_fscore_support(test_split.y, predicted, labels=labels,
                                                                         zero_division=0)
        per_class = m.report.loc[ev.class_names]
        np.testing.assert_allclose(per_class["precision"], precision)
        np.testing.assert_allclose(per_class["recall"], recall)
        np.testing.assert_allclose(per_class["f1-score"], f1)
        np.testing.assert_array_equal(per_class["support"], support)
        assert m.report.loc["accuracy", "f1-score"] == pytest.approx(accuracy_score(test_split.y, predicted))
        assert m.report.loc["macro avg", "f1-score"] == pytest.approx(f1.mean())
        assert m.confusion.to_numpy().sum() == len(test_split.y)
        np.testing.assert_array_equal(m.confusion.to_numpy(), confusion_matrix(test_split.y, predicted, labels=labels))
        assert m.confusion_png.parent == tmp_path / "figures"
    pngs = [p for m in ev.models for p in (m.confusion_png, m.samples_png)] + [ev.learning_curves_png]
    assert len(set(pngs)) == 5
    for png in pngs:
        with Image.open(png) as image:
            image.verify()
            assert image.format == "PNG"


def test_load_best_by_rank_and_study_model(finished_study, test_split, tmp_path):
    import h5py
    folder, _ = finished_study
    study = hpstudy.load_study(folder)
    ranked = study.ranked()
    assert ranked[0] == study.best["trial_id"] and len(ranked) == 2
    first, second = hpstudy.load_best(folder), hpstudy.load_best(folder, rank=1)
    assert second.optimizer is not None and second.loss      # compiled
    assert not np.allclose(_predict(first, test_split.x), _predict(second, test_split.x))
    # The rank-1 model holds exactly the arrays of that trial's keras-tuner checkpoint.
    layout = open_folder(folder)
    with h5py.File(layout.tuner_trial(ranked[1]) / "checkpoint.weights.h5", "r") as f:
        stored = []
        f["layers"].visititems(lambda name, obj: stored.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    weights = [np.asarray(w) for w in second.weights]
    assert len(stored) == len(weights) > 0
    for array in stored:
        assert any(w.shape == array.shape and np.array_equal(w, array) for w in weights)
    np.testing.assert_allclose(_predict(study.model(int(ranked[1])), test_split.x), _predict(second, test_split.x))
    # Clear one-line errors.
    with pytest.raises(hpstudy.HpstudyError, match="no model of rank 2: 2 completed"):
        hpstudy.load_best(folder, rank=2)
    with pytest.raises(hpstudy.HpstudyError, match="no trial '9'; trials: 0, 1"):
        study.model("9")
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    trial_file = open_folder(broken).tuner_trial(ranked[1]) / "trial.json"
    trial = json.loads(trial_file.read_text())
    trial_file.write_text(json.dumps({**trial, "status": "FAILED", "message": "Traceback\nValueError: boom"}))
    with pytest.raises(hpstudy.HpstudyError, match=f"trial {ranked[1]} is FAILED \\(ValueError: boom\\)") as err:
        hpstudy.load_study(broken).model(ranked[1])
    assert "\n" not in str(err.value)
    with pytest.raises(hpstudy.HpstudyError, match="no model of rank 1: 1 completed"):
        hpstudy.load_best(broken, rank=1)


def test_inference_model_drops_training_only_layers():
    keras = import_quietly("keras")
    preprocess = import_quietly("hpstudy.models.preprocess")
    export = import_quietly("hpstudy.trained.export")
    inputs = keras.Input((16, 16, 3))
    body = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs)))
    values = {"crop_padding": 2, "flip": True, "translate": 0.1, "cutout": 4, "standardize": True}
    model = preprocess.wrap(body, values, stats=(np.full(3, 100.0), np.full(3, 900.0)))
    model.compile("sgd", loss=import_quietly("hpstudy.models.losses").SmoothedSparseCrossentropy(0.1))
    out = export.inference_model(model)
    names = [layer.name for layer in out.layers]
    assert "augment" not in names and "cutout" not in names and "standardize" in names
    assert not export._custom_objects(out.get_config()) and out.loss == "sparse_categorical_crossentropy"
    x = np.random.default_rng(1).integers(0, 256, (3, 16, 16, 3)).astype("uint8")
    np.testing.assert_allclose(_predict(out, x), keras.ops.convert_to_numpy(model(x, training=False)), rtol=1e-5)


@pytest.mark.slow
def test_export_loads_with_plain_keras(finished_study, test_split, tmp_path, capsys):
    folder, _ = finished_study
    target = tmp_path / "model.keras"
    assert main(["export", str(folder), "--rank", "1", "--to", str(target)]) == 0
    assert str(target) in capsys.readouterr().out and target.exists()
    np.save(tmp_path / "x.npy", test_split.x)         # raw uint8 pixels
    code = ("import sys\nimport numpy as np\nimport keras\n"
            "model = keras.models.load_model('model.keras')\n"
            "np.save('p.npy', model.predict(np.load('x.npy'), verbose=0))\n"
            "assert not [m for m in sys.modules if m.startswith('hpstudy')], 'hpstudy imported'\n")
    env = {**os.environ, "KERAS_BACKEND": import_quietly("keras").backend.backend(), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    expected = _predict(hpstudy.load_best(folder, rank=1), test_split.x)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, rtol=1e-5, atol=1e-6)
    assert main(["export", str(folder), "--to", str(tmp_path / "model.h5")]) == 2
    assert "must end in .keras" in capsys.readouterr().err


def _parse(stdout):
    out, current = {}, None
    for line in stdout.splitlines():
        if not line.startswith("  "):
            current = out.setdefault(line, [])
        else:
            probability, name = line.split()
            current.append((name, float(probability)))
    return out


def test_predict_cli(finished_study, tmp_path, capsys):
    from PIL import Image
    folder, _ = finished_study
    rng = np.random.default_rng(0)
    colour, grey = tmp_path / "colour.png", tmp_path / "grey.png"
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), "RGB").save(colour)    # 64 wide, 48 high
    Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8), "L").save(grey)
    assert main(["predict", str(folder), str(colour), str(grey), "--top", "3"]) == 0
    printed = _parse(capsys.readouterr().out)
    assert list(printed) == [str(colour), str(grey)]
    class_names = hpstudy.load_study(folder).best["class_names"]
    model = hpstudy.load_best(folder)
    for file, top in printed.items():
        assert len(top) == 3 and all(name in class_names for name, _ in top)
        probabilities = [p for _, p in top]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-3
        with Image.open(file) as image:     # the model's own answer on the image prepared as documented
            x = np.asarray(image.convert("RGB").resize((32, 32), Image.BILINEAR))[None]
        expected = _predict(model, x)[0]
        assert top[0][0] == class_names[int(expected.argmax())]
        assert top[0][1] == pytest.approx(expected.max(), abs=1e-4)


def test_predict_unreadable_image_is_one_line_without_tensorflow(finished_study, tmp_path):
    from PIL import Image
    folder, _ = finished_study
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.new("RGB", (8, 8)).save(good)
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code = ("import sys\nfrom hpstudy.cli import main\n"
            f"assert main(['predict', {str(folder)!r}, {str(good)!r}, {str(bad)!r}]) == 2\n"
            f"assert main(['predict', {str(folder)!r}, {str(tmp_path / 'missing.jpg')!r}]) == 2\n"
            f"assert main(['predict', {str(folder)!r}, {str(good)!r}, '--rank', '7']) == 2\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 3 and done.stdout == ""
    assert lines[0].startswith(f"hpstudy: error: {bad}: cannot read the image")
    assert lines[1].startswith(f"hpstudy: error: {tmp_path / 'missing.jpg'}: cannot read the image")
    assert "no model of rank 7" in lines[2]
