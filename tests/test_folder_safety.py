"""--overwrite deletes only what hpstudy can prove it wrote, never following a link; one run per results folder."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import hpstudy
from hpstudy.cli import main
from hpstudy.results.layout import Layout
from hpstudy.results.lock import FolderLock
from tests.conftest import TINY, write_study


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hpstudy: error: "), err
    return err[0]


def _tree(root):
    """Every path below `root` with its bytes, but the lock file (hpstudy's own, rewritten by each run)."""
    return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else b"") for p in root.rglob("*")
                  if p.name != ".hpstudy.lock")


def test_overwrite_never_deletes_a_foreign_folder_that_holds_a_spec_yaml(tmp_path, capsys):
    """The reproduction of the issue: another program's spec.yaml beside the user's files."""
    folder = tmp_path / "d" / "apidocs"
    (folder / "v1").mkdir(parents=True)
    (folder / "spec.yaml").write_text("openapi: 3.0.0\n")
    (folder / "v1" / "guide.md").write_text("x\n")
    before = _tree(tmp_path / "d")
    study = write_study(tmp_path, TINY.format(name="apidocs"), name="apidocs")
    assert main(["run", str(study), "--results-dir", str(tmp_path / "d"), "--overwrite"]) == 2
    line = one_error_line(capsys)
    assert "is not an hpstudy results folder" in line and "nothing was changed" in line
    assert _tree(tmp_path / "d") == before and not (folder / ".hpstudy.lock").exists()     # not even a lock file


@pytest.fixture
def finished(finished_study):
    """The session's real finished results folder (copied by each test that changes it)."""
    return finished_study[0]


def _copy(folder, tmp_path):
    import shutil
    target = tmp_path / "results" / folder.name
    shutil.copytree(folder, target, symlinks=True)
    return target


def test_a_results_folder_with_a_foreign_file_inside_is_not_deleted(finished, tmp_path, capsys):
    folder = _copy(finished, tmp_path)
    assert (folder / ".hpstudy").is_file()                     # the marker every run writes
    (folder / "notes.txt").write_text("mine\n")
    before = _tree(folder)
    study = write_study(tmp_path, TINY.format(name="tiny"), name="tiny")
    assert main(["run", str(study), "--results-dir", str(folder.parent), "--overwrite"]) == 2
    assert "'notes.txt', which hpstudy did not write" in one_error_line(capsys)
    assert _tree(folder) == before


@pytest.mark.slow
def test_overwrite_deletes_links_inside_but_never_what_they_point_to(finished, tmp_path):
    folder = _copy(finished, tmp_path)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data.txt").write_text("keep me\n")
    (folder / "tensorboard").symlink_to(outside, target_is_directory=True)
    (folder / "trials").joinpath("0", "link").symlink_to(outside / "data.txt")
    study = write_study(tmp_path, TINY.format(name="tiny"), name="tiny")
    assert main(["run", str(study), "--results-dir", str(folder.parent), "--overwrite"]) == 0
    assert (outside / "data.txt").read_text() == "keep me\n" and not (folder / "tensorboard").exists()
    assert len(hpstudy.load_study(folder).trials) == 2


def test_overwrite_refuses_a_linked_folder_and_the_folder_one_stands_in(finished, tmp_path, capsys, monkeypatch):
    real = _copy(finished, tmp_path)
    linked_parent = tmp_path / "linked"
    linked_parent.mkdir()
    (linked_parent / "tiny").symlink_to(real, target_is_directory=True)
    study = write_study(tmp_path, TINY.format(name="tiny"), name="tiny")
    before = _tree(real)
    assert main(["run", str(study), "--results-dir", str(linked_parent), "--overwrite"]) == 2
    assert "the folder is a symbolic link" in one_error_line(capsys)
    monkeypatch.chdir(real / "trials")
    assert main(["run", str(study), "--results-dir", str(real.parent), "--overwrite"]) == 2
    assert "it holds the current directory" in one_error_line(capsys)
    assert _tree(real) == before


@pytest.mark.slow
def test_a_folder_older_than_the_marker_is_overwritten_when_its_spec_is_this_study(finished, tmp_path, capsys):
    folder = _copy(finished, tmp_path)
    (folder / ".hpstudy").unlink()
    # Another study's folder (named as this one) without the marker: not proven.
    (folder / "spec.yaml").write_text((folder / "spec.yaml").read_text().replace("name: tiny", "name: other"))
    study = write_study(tmp_path, TINY.format(name="tiny"), name="tiny")
    assert main(["run", str(study), "--results-dir", str(folder.parent), "--overwrite"]) == 2
    assert "nothing proves hpstudy wrote it" in one_error_line(capsys)
    (folder / "spec.yaml").write_text((folder / "spec.yaml").read_text().replace("name: other", "name: tiny"))
    assert main(["run", str(study), "--results-dir", str(folder.parent), "--overwrite"]) == 0
    assert (folder / ".hpstudy").is_file()


@pytest.mark.slow
def test_a_second_run_on_the_same_folder_is_refused_at_once_naming_the_first(tmp_path, capsys):
    text = TINY.format(name="busy").replace("epochs: 2", "epochs: 60")
    study = write_study(tmp_path, text, name="busy")
    first = subprocess.Popen([sys.executable, "-m", "hpstudy.cli", "run", str(study), "--results-dir", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    layout = Layout(tmp_path / "busy")
    try:
        deadline = time.time() + 120
        while not layout.history(0).exists() and time.time() < deadline:
            time.sleep(0.1)
        assert layout.history(0).exists(), "the first run started its first trial"
        started = time.time()
        assert main(["run", str(study), "--results-dir", str(tmp_path)]) == 2
        assert time.time() - started < 30          # at once: before any data is loaded or model trained
        assert f"in use by process {first.pid} " in one_error_line(capsys)
        assert main(["confirm", str(layout.root)]) == 2
        assert f"in use by process {first.pid} " in one_error_line(capsys)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with FolderLock(layout):        # a killed run leaves no lock behind
        assert json.loads(layout.lock.read_text())["pid"] == os.getpid()


def test_a_results_dir_that_is_a_file_or_read_only_is_one_line(tmp_path, capsys):
    study = write_study(tmp_path, TINY.format(name="tiny"), name="tiny")
    (tmp_path / "afile").write_text("not a folder\n")
    assert main(["run", str(study), "--results-dir", str(tmp_path / "afile")]) == 2
    assert "cannot make the results folder" in one_error_line(capsys)
    assert (tmp_path / "afile").read_text() == "not a folder\n"
    if os.geteuid() != 0:       # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["run", str(study), "--results-dir", str(locked)]) == 2
        assert "cannot make the results folder" in one_error_line(capsys)
