"""--overwrite deletes only what hpstudy can prove it wrote, never following a link; one run per results folder."""
import json
import os
import signal
import subprocess
import time

import pytest

import hpstudy
from hpstudy.cli import main
from hpstudy.results.layout import Layout
from hpstudy.results.lock import FolderLock
from tests.helpers import HPSTUDY_COMMAND, TINY, folder_digest, one_error_line, write_study
from tests.hostile_inputs.writes import plant


def _digest(root):
    """`root`'s digest, but the lock file (hpstudy's own, rewritten by each run)."""
    return folder_digest(root, skip={".hpstudy.lock"})


def test_overwrite_never_deletes_a_foreign_folder_that_holds_a_spec_yaml(tmp_path, capsys):
    """The reproduction of the issue: another program's spec.yaml beside the user's files."""
    folder = tmp_path / "d" / "apidocs"
    (folder / "v1").mkdir(parents=True)
    (folder / "spec.yaml").write_text("openapi: 3.0.0\n")
    (folder / "v1" / "guide.md").write_text("x\n")
    before = _digest(tmp_path / "d")
    study = write_study(tmp_path, TINY.format(name="apidocs"), name="apidocs")
    assert main(["run", str(study), "--results-dir", str(tmp_path / "d"), "--overwrite"]) == 2
    one_error_line(capsys, "is not an hpstudy results folder", "nothing was changed")
    assert _digest(tmp_path / "d") == before and not (folder / ".hpstudy.lock").exists()     # not even a lock file


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
    before = _digest(folder)
    study = write_study(tmp_path, TINY.format(name="tiny"), name="tiny")
    assert main(["run", str(study), "--results-dir", str(folder.parent), "--overwrite"]) == 2
    one_error_line(capsys, "'notes.txt', which hpstudy did not write")
    assert _digest(folder) == before


@pytest.mark.slow
def test_overwrite_deletes_links_inside_but_never_what_they_point_to(finished, tmp_path):
    folder = _copy(finished, tmp_path)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data.txt").write_text("keep me\n")
    (folder / "tensorboard").symlink_to(outside, target_is_directory=True)
    (folder / "trials").joinpath("0", "summary.txt").unlink()
    (folder / "trials").joinpath("0", "summary.txt").symlink_to(outside / "data.txt")
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
    before = _digest(real)
    assert main(["run", str(study), "--results-dir", str(linked_parent), "--overwrite"]) == 2
    one_error_line(capsys, "the folder is a symbolic link")
    monkeypatch.chdir(real / "trials")
    assert main(["run", str(study), "--results-dir", str(real.parent), "--overwrite"]) == 2
    one_error_line(capsys, "it holds the current directory")
    assert _digest(real) == before


@pytest.mark.slow
def test_a_folder_older_than_the_marker_is_overwritten_when_its_spec_is_this_study(finished, tmp_path, capsys):
    folder = _copy(finished, tmp_path)
    (folder / ".hpstudy").unlink()
    # Another study's folder (named as this one) without the marker: not proven.
    (folder / "spec.yaml").write_text((folder / "spec.yaml").read_text().replace("name: tiny", "name: other"))
    study = write_study(tmp_path, TINY.format(name="tiny"), name="tiny")
    assert main(["run", str(study), "--results-dir", str(folder.parent), "--overwrite"]) == 2
    one_error_line(capsys, "nothing proves hpstudy wrote it")
    (folder / "spec.yaml").write_text((folder / "spec.yaml").read_text().replace("name: other", "name: tiny"))
    assert main(["run", str(study), "--results-dir", str(folder.parent), "--overwrite"]) == 0
    assert (folder / ".hpstudy").is_file()


@pytest.mark.slow
def test_a_second_run_on_the_same_folder_is_refused_at_once_naming_the_first(tmp_path, capsys):
    text = TINY.format(name="busy").replace("epochs: 2", "epochs: 60")
    study = write_study(tmp_path, text, name="busy")
    first = subprocess.Popen([*HPSTUDY_COMMAND, "run", str(study), "--results-dir", str(tmp_path)],
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
        one_error_line(capsys, f"in use by process {first.pid} ")
        assert main(["confirm", str(layout.root)]) == 2
        one_error_line(capsys, f"in use by process {first.pid} ")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with FolderLock(layout):        # a killed run leaves no lock behind
        assert json.loads(layout.lock.read_text())["pid"] == os.getpid()


def test_a_results_dir_that_is_a_file_or_read_only_is_one_line(tmp_path, capsys):
    study = write_study(tmp_path, TINY.format(name="tiny"), name="tiny")
    (tmp_path / "afile").write_text("not a folder\n")
    assert main(["run", str(study), "--results-dir", str(tmp_path / "afile")]) == 2
    one_error_line(capsys, "cannot make the results folder")
    assert (tmp_path / "afile").read_text() == "not a folder\n"
    if os.geteuid() != 0:       # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["run", str(study), "--results-dir", str(locked)]) == 2
        one_error_line(capsys, "cannot make the results folder")


@pytest.mark.parametrize("foreign", ["trials/my_notes.txt", "repeats/analysis.ipynb", "trials/0/notes.md",
                                     "tuner/trial_0000/mine/", "tensorboard/0000/execution0/my.log",
                                     "workers/notes.txt"])
def test_overwrite_refuses_a_foreign_file_at_any_depth_and_deletes_nothing(finished, tmp_path, capsys, foreign):
    folder = _copy(finished, tmp_path)
    plant(folder, foreign)
    before = _digest(folder)
    study = write_study(tmp_path, TINY.format(name="tiny"), name="tiny")
    assert main(["run", str(study), "--results-dir", str(folder.parent), "--overwrite"]) == 2
    one_error_line(capsys, f"it holds '{foreign.rstrip('/')}', which hpstudy did not write")
    assert _digest(folder) == before


def test_every_name_a_real_study_writes_is_its_own(finished):
    """The names `--overwrite` may delete cover all a real run wrote (else it would refuse its own folder)."""
    layout = Layout(finished)
    assert layout.first_foreign() is None
    assert layout.is_owned("tuner/trial_0003/checkpoint.weights.h5", folder=False)
    assert not layout.is_owned("trials/0/history_0.csv.bak", folder=False)
    assert not layout.is_owned("trials", folder=False) and not layout.is_owned("best.json", folder=True)


def test_a_trials_restart_deletes_its_own_files_only(tmp_path):
    from hpstudy.engine.search.tuner import clear_trial_files
    layout = Layout(tmp_path)
    trial = layout.trial(3)
    (trial / "kept").mkdir(parents=True)
    for name in ("history_0.csv", "execution_0.json", "starts.json", "notes.txt", "pruned.json"):
        (trial / name).write_text("x")
    clear_trial_files(layout, 3, keep=layout.starts(3))
    assert sorted(p.name for p in trial.iterdir()) == ["kept", "notes.txt", "starts.json"]


def _outside(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    return outside


@pytest.mark.parametrize("kind", ["link", "dangling link", "folder", "named pipe", "hard link"])
def test_a_lock_file_that_is_not_hpstudys_is_refused_and_nothing_outside_is_written(finished, tmp_path, capsys,
                                                                                     kind):
    folder = _copy(finished, tmp_path)
    outside = _outside(tmp_path)
    lock = folder / ".hpstudy.lock"
    lock.unlink(missing_ok=True)
    if kind == "link":
        lock.symlink_to(outside)
    elif kind == "dangling link":
        lock.symlink_to(tmp_path / "made.txt")
    elif kind == "folder":
        lock.mkdir()
    elif kind == "named pipe":
        os.mkfifo(lock)
    else:
        os.link(outside, lock)
    before = _digest(folder)
    assert main(["confirm", str(folder), "--top", "1", "--seeds", "2"]) == 2    # a named pipe must not block
    one_error_line(capsys, f"{lock}: is ")
    study = write_study(tmp_path, TINY.format(name="tiny"), name="tiny")
    assert main(["run", str(study), "--results-dir", str(folder.parent)]) == 2
    one_error_line(capsys, "not hpstudy's lock file")
    assert outside.read_text() == "keep me\n" and not (tmp_path / "made.txt").exists()
    assert _digest(folder) == before


@pytest.mark.parametrize("recorded", ["best.json", "spec.yaml", "trials.csv", "env.json", "tuner/oracle.json",
                                      "trials/0/history_0.csv", "trials/0/new.md", "tuner/trial_0000/x.md"])
def test_a_report_is_never_written_onto_a_results_folders_records(finished, tmp_path, capsys, recorded):
    folder = _copy(finished, tmp_path)
    before = _digest(folder)
    assert main(["report", str(folder), "--format", "json", "--output", str(folder / recorded)]) == 2
    one_error_line(capsys, f"is {recorded}, among the records of the results folder")
    assert _digest(folder) == before
    assert main(["report", str(folder), "--format", "json", "--output", str(folder / "report.json")]) == 0
    assert json.loads((folder / "report.json").read_text())["effects"]


def test_a_report_or_a_model_is_never_written_through_a_link(finished, tmp_path, capsys):
    folder = _copy(finished, tmp_path)
    outside = _outside(tmp_path)
    (tmp_path / "report.md").symlink_to(outside)
    assert main(["report", str(folder), "--output", str(tmp_path / "report.md"), "--best", "0"]) == 2
    one_error_line(capsys, "is a symbolic link")
    (tmp_path / "r.md").write_text("old\n")
    (tmp_path / "r_figures").symlink_to(tmp_path, target_is_directory=True)
    assert main(["report", str(folder), "--output", str(tmp_path / "r.md"), "--best", "0"]) == 2
    one_error_line(capsys, "r_figures: is a symbolic link")
    assert (tmp_path / "r.md").read_text() == "old\n"
    (tmp_path / "model.keras").symlink_to(outside)
    assert main(["export", str(folder), "--to", str(tmp_path / "model.keras")]) == 2
    one_error_line(capsys, "is a symbolic link")
    assert outside.read_text() == "keep me\n"


def test_export_never_writes_over_the_studys_own_best_model(finished, tmp_path, capsys):
    folder = _copy(finished, tmp_path)
    before = _digest(folder)
    assert main(["export", str(folder), "--to", str(folder / "best.keras")]) == 2
    one_error_line(capsys, "is best.keras, among the records of the results folder")
    assert _digest(folder) == before
