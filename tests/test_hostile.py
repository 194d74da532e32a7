"""Hostile and broken inputs: each ends in exit code 2 and one line naming the file, never a traceback.

`tests/hostile/` holds bad study files, each starting with `# expect: <message>`: how the one line
`hpstudy validate` prints after the file's name must begin, the key and the reason. The other tests here feed
unsafe files (YAML tags that would run code, a CIFAR-10 batch whose pickle would, a `.keras` model with a Lambda
layer) and corrupt data files through the command line and the loading paths: each is refused, and nothing in
it runs.
"""
import ast
import os
import pickle
import re
from pathlib import Path

import pytest

import hpstudy
from hpstudy import cli
from hpstudy.errors import ResultsError, SpecError
from hpstudy.study import spec
from tests.helpers import EvilPickle, one_error_line, pattern, pickle_file, write_cifar, write_png

CORPUS = Path(__file__).parent / "hostile"
FILES = sorted(CORPUS.glob("*.yaml"))
PREFIX = b"# expect: "


def expected_fragment(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0]
    assert first.startswith(PREFIX), f"{path.name}: the first line must be '# expect: <fragment>'"
    return first[len(PREFIX):].decode("utf-8").strip()


def test_the_corpus_is_large_and_every_file_says_what_it_expects():
    assert len(FILES) >= 40
    for path in FILES:
        # The reason as well as the key: more than a dotted name.
        assert not re.fullmatch(r"[\w.\[\]<>\\]*:?", expected_fragment(path)), path.name


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_hostile_study_is_one_line_and_exit_code_2(path, capsys):
    rc = cli.main(["validate", str(path)])
    line = one_error_line(capsys)
    assert rc == 2
    assert line.startswith(f"hpstudy: error: {path}: {expected_fragment(path)}"), line


# ---------------------------------------------------------------- files that would run code
@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system", "!!python/object/new:os.system",
                                 "!!python/name:os.system", "!!python/module:os"])
def test_yaml_python_tags_are_refused_and_never_run(tmp_path, tag):
    marker = tmp_path / "pwned"
    study = tmp_path / "study.yaml"
    study.write_text(f"name: pwn\ntrain:\n  epochs: {tag} ['touch {marker}']\n")
    with pytest.raises(SpecError) as caught:
        spec.load(study)
    assert str(caught.value).startswith(f"{study}: line 3") and "invalid YAML" in str(caught.value)
    assert not marker.exists()


def test_cifar10_batch_with_a_code_running_pickle_is_refused_by_the_command_line(tmp_path, capsys):
    folder = write_cifar(tmp_path / "data")
    marker = tmp_path / "pwned"
    pickle_file(EvilPickle(f"touch {marker}"), folder / "data_batch_2")
    rc = cli.main(["data", "info", "cifar10", "--data-dir", str(folder)])
    one_error_line(capsys, str(folder / "data_batch_2"), "refused to load")
    assert rc == 2
    assert not marker.exists()


def test_cifar10_pickle_protocols_cannot_smuggle_code(tmp_path):
    """Every pickle protocol, and a reduce hidden inside the batch dict, is refused before it runs."""
    from hpstudy import data
    from hpstudy.errors import DataError
    folder = write_cifar(tmp_path / "data")
    marker = tmp_path / "pwned"
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        batch = {b"data": EvilPickle(f"touch {marker}"), b"labels": [0]}
        (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=protocol))
        with pytest.raises(DataError, match="refused to load"):
            data.load("cifar10", data_dir=str(folder))
        assert not marker.exists()


def test_truncated_cifar10_batch_names_the_file_on_the_command_line(tmp_path, capsys):
    folder = write_cifar(tmp_path / "data")
    raw = (folder / "data_batch_4").read_bytes()
    (folder / "data_batch_4").write_bytes(raw[: len(raw) // 3])
    assert cli.main(["data", "info", "cifar10", "--data-dir", str(folder)]) == 2
    one_error_line(capsys, str(folder / "data_batch_4"), "corrupt or truncated")


@pytest.mark.parametrize("damage", ["truncated", "junk"])
def test_broken_png_in_a_folder_dataset_names_the_file_on_the_command_line(tmp_path, capsys, monkeypatch, damage):
    monkeypatch.setenv("HPSTUDY_DATA_DIR", str(tmp_path / "cache"))     # decoded copies stay in tmp_path
    root = tmp_path / "images"
    for label in ("cat", "dog"):
        for k in range(3):
            write_png(root / label / f"{k}.png", pattern(k))
    broken = root / "dog" / "1.png"
    broken.write_bytes(broken.read_bytes()[:50] if damage == "truncated" else b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    rc = cli.main(["data", "info", "folder", "--data-dir", str(root)])
    one_error_line(capsys, str(broken))
    assert rc == 2


# ---------------------------------------------------------------- .keras files: Keras's safe mode
def _results_folder_with_best_model(folder: Path, kind: str) -> Path:
    """A results folder whose best.keras is a Lambda model (code in the file), truncated, or not a zip."""
    import keras
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text("name: hostile\n")
    best = folder / "best.keras"
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    model.save(best)
    if kind == "truncated":
        best.write_bytes(best.read_bytes()[:200])
    elif kind == "junk":
        best.write_bytes(b"not a zip file")
    return best


@pytest.mark.parametrize("kind, start, fragment", [("lambda", "refused as unsafe", "Lambda"),
                                                   ("truncated", "corrupt or unreadable", "not a zip archive"),
                                                   ("junk", "corrupt or unreadable", "not a zip archive")])
def test_best_model_is_loaded_in_safe_mode(tmp_path, kind, start, fragment):
    import hpstudy
    best = _results_folder_with_best_model(tmp_path / "results" / "hostile", kind)
    with pytest.raises(ResultsError) as caught:
        hpstudy.load_best(best.parent)
    message = str(caught.value)
    assert message.startswith(f"{best}: {start}") and fragment in message
    assert "\n" not in message and "safe_mode=False" not in message


def test_predict_with_a_lambda_model_is_one_line(tmp_path, capsys):
    best = _results_folder_with_best_model(tmp_path / "results" / "hostile", "lambda")
    image = tmp_path / "cat.png"
    write_png(image, pattern(0))
    assert cli.main(["predict", str(best.parent), str(image)]) == 2
    one_error_line(capsys, str(best))


def test_every_load_model_call_uses_safe_mode():
    """No hpstudy code loads a Keras model outside safe mode (the default, safe_mode=True)."""
    package = Path(hpstudy.__file__).parent
    calls = []
    for source in package.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "enable_unsafe_deserialization" not in text, source
        for node in ast.walk(ast.parse(text)):
            func = getattr(node, "func", None)
            name = getattr(func, "attr", getattr(func, "id", None))
            # keras-tuner's tuner.load_model(trial) builds from the hypermodel and loads weights only.
            if name == "load_model" and not ast.unparse(func).startswith("tuner."):
                safe = {k.arg: k.value for k in node.keywords}.get("safe_mode", ast.Constant(True))
                calls.append((source.name, node.lineno, ast.unparse(node)))
                assert isinstance(safe, ast.Constant) and safe.value is True, calls[-1]
    assert calls, "hpstudy.api.load_best loads best.keras with load_model"
