"""The test suite's own rules: its folders mirror the package's, tests share helpers through tests/helpers.py only,
a folder whose tests need no Keras runs without it, and the shared checks are strict enough to fail."""
import ast
import os
import subprocess
import sys
import threading

import pytest

from tests.helpers import REPO, digest_changes, folder_digest, one_error_line

TESTS = REPO / "tests"
CORPORA = {"hostile", "hostile_inputs"}        # data the top-level hostile tests read, not tests


def test_each_test_folder_is_a_package_of_hpstudy():
    """tests/<package>/ holds the tests of hpstudy/<package>/; tests/ itself those of the top-level modules and of
    the whole house (README, Development)."""
    folders = {path.name for path in TESTS.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert CORPORA <= folders
    for name in sorted(folders - CORPORA):
        assert (REPO / "hpstudy" / name / "__init__.py").is_file(), f"tests/{name}/ mirrors no hpstudy package"
        assert (TESTS / name / "__init__.py").is_file(), f"tests/{name}/ is not a package"
        assert list((TESTS / name).glob("test_*.py")), f"tests/{name}/ holds no test file"
        # A subfolder is data its tests read (saved models), never more tests.
        assert not list((TESTS / name).glob("*/**/test_*.py")), f"tests/{name}/ nests test files in a subfolder"
    for name in CORPORA:
        assert not list((TESTS / name).rglob("test_*.py")), f"tests/{name}/ is a corpus, not tests"


def test_tests_import_shared_code_from_helpers_only():
    """No test imports from conftest.py or from another test file: what tests share is in tests/helpers.py."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            found += [f"{path.relative_to(REPO)}:{node.lineno} {name}" for name in names
                      if name.startswith("tests.") and (name.split(".")[-1].startswith("test_")
                                                        or name.split(".")[-1] == "conftest")]
    assert found == []


def test_the_analysis_tests_are_collected_without_any_framework():
    """`pytest tests/analysis` loads conftest.py, tests/helpers.py and every test file there, and none of them
    imports Keras, keras-tuner or TensorFlow (tests/analysis/conftest.py fails a test there that would)."""
    code = ("import sys, pytest\n"
            "rc = pytest.main(['-q', '-n', '0', '-p', 'no:cacheprovider', '--collect-only', 'tests/analysis'])\n"
            "print('frameworks:', sorted({'keras', 'keras_tuner', 'tensorflow'} & sys.modules.keys()), 'rc:', rc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    last = done.stdout.splitlines()[-1] if done.stdout else done.stderr
    assert last == "frameworks: [] rc: 0", done.stdout[-3000:] + done.stderr[-3000:]
    assert " tests collected" in done.stdout and "test_effects.py" in done.stdout


@pytest.mark.parametrize("out, err, names, fault", [
    ("", "hpstudy: error: a.yaml: model.dropout: must be in [0, 1]\n", ("model.dropout",), None),
    ("", "hpstudy: error: one\nhpstudy: error: two\n", (), "two lines"),
    ("", "Traceback (most recent call last):\nhpstudy: error: x\n", (), "a traceback"),
    ("trial 0\n", "hpstudy: error: x\n", (), "standard output"),
    ("", "hpstudy: error: x\n", ("model.dropout",), "a name it lacks"),
    ("", "error: x\n", (), "another prefix"),
    ("", "hpstudy: error: \x1b[2Jx\n", (), "an escape sequence"),
    ("", "hpstudy: error: x", (), "no newline"),
])
def test_one_error_line_fails_on_anything_but_one_line(out, err, names, fault):
    if fault is None:
        assert one_error_line((out, err), *names) == err.rstrip("\n")
    else:
        with pytest.raises(AssertionError):
            one_error_line((out, err), *names)


def test_the_folder_digest_sees_a_file_written_again_and_never_opens_a_pipe(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("same")
    (tmp_path / "link").symlink_to("sub/a.txt")
    os.mkfifo(tmp_path / "pipe")
    digest = {}
    reader = threading.Thread(target=lambda: digest.update(folder_digest(tmp_path)), daemon=True)
    reader.start()
    reader.join(30)
    assert not reader.is_alive() and set(digest) == {"sub", "sub/a.txt", "link", "pipe"}
    assert digest_changes(digest, folder_digest(tmp_path)) == []
    stamp = os.stat(tmp_path / "sub" / "a.txt").st_mtime_ns
    (tmp_path / "sub" / "a.txt").write_text("same")
    os.utime(tmp_path / "sub" / "a.txt", ns=(stamp + 10**9, stamp + 10**9))     # the same bytes, written again
    after = folder_digest(tmp_path)
    assert digest_changes(digest, after) == ["sub/a.txt"]
    assert digest_changes(digest, after, rewritten={"sub/a.txt"}) == []
    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to("elsewhere")
    assert digest_changes(digest, folder_digest(tmp_path), ignore={"sub/a.txt"}) == ["link"]
