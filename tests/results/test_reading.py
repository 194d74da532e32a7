"""One rule for everything hpstudy reads from a results folder: no link out of it, regular files only (checked
before anything is opened, so nothing hangs), size caps by kind, nothing silently passed over, and recorded
hyperparameter values checked against the study's space. The command-line cases are the corpus's
(tests/hostile_inputs/reading.py), the live view's are tests/serve/test_serve.py's; these are the readers
themselves and the Python API."""
import json
import os
import re
import shutil
import socket
import zipfile
from pathlib import Path

import pytest

import hpstudy
from hpstudy import files
from hpstudy.errors import ResultsError, SpecError
from hpstudy.results import space
from hpstudy.results.layout import Layout
from hpstudy.study import spec, yamlfile
from tests.helpers import no_hang, write_study


@pytest.fixture
def results(finished_study, tmp_path) -> Path:
    """A private copy of the finished study's results folder, beside an `outside` folder holding a secret."""
    source, _ = finished_study
    folder = tmp_path / "results" / source.name
    shutil.copytree(source, folder, symlinks=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.json").write_text('{"secret": 424242}')
    return folder


def _socket(path: Path) -> None:
    here = os.getcwd()
    os.chdir(path.parent)           # a socket's path is limited to ~100 bytes
    try:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(path.name)
    finally:
        os.chdir(here)


def _replace(path: Path, make) -> None:
    path.unlink()
    make(path)


# ---------------------------------------------------------------- files.read_bytes
@pytest.mark.parametrize("make, reason", [
    (os.mkfifo, "is a named pipe (FIFO), not a file"),
    (_socket, "is a socket, not a file"),
    (lambda p: p.symlink_to("/dev/zero"), "is a symbolic link out of the results folder (to /dev/zero)"),
    (lambda p: p.symlink_to(p.parents[2] / "outside" / "secret.json"), "is a symbolic link out of the results"),
    (lambda p: p.symlink_to("nowhere"), "is a broken symbolic link (to nowhere)"),
    (lambda p: p.symlink_to(p.name), "is a symbolic link loop"),
    (os.mkdir, "is a folder, not a file"),
])
def test_a_record_that_is_no_regular_file_inside_is_refused_before_it_is_opened(results, make, reason):
    best = Layout(results).best
    _replace(best, make)
    with no_hang(), pytest.raises(files.Refused) as refused:
        files.read_bytes(best, root=results)
    assert refused.value.reason.startswith(reason)
    with no_hang():
        assert files.read_json(best) is None            # the lenient reader: None, never a hang
        with pytest.raises(ResultsError, match=re.escape(f"best.json: {reason[:20]}")):
            _ = hpstudy.load_study(results).trials


def test_a_link_that_stays_inside_is_followed(results):
    best = Layout(results).best
    best.rename(results / "best.copy.json")
    best.symlink_to("best.copy.json")
    assert files.read_record(best)["trial_id"] == "1"
    assert json.loads(files.read_bytes(best, root=results))["trial_id"] == "1"


def test_the_caps_are_said_and_nothing_is_read_past_them(results):
    history = Layout(results).history("1")
    with open(history, "r+b") as out:       # a sparse gigabyte: a reader that read it all would take seconds
        out.truncate(1 << 30)
    with no_hang(10), pytest.raises(ResultsError) as refused:
        hpstudy.load_study(results).history("1")
    assert "history_0.csv: is too large (1024 MiB; the cap for a history is 16 MiB)" in str(refused.value)
    assert files.read_bytes(Layout(results).best, "JSON record") is not None
    Layout(results).failure("1").write_bytes(b"x" * (5 << 20))
    with pytest.raises(files.Refused, match="the cap for a text file is 4 MiB"):
        files.read_bytes(Layout(results).failure("1"), "text file")


# ---------------------------------------------------------------- the folders listed
@pytest.mark.parametrize("relative", ["tuner/trial_0001", "trials/1", "tuner"])
@pytest.mark.parametrize("make, reason", [
    (lambda p: p.symlink_to(p.name), "is a symbolic link loop"),
    (lambda p: p.symlink_to(p.parent / "gone"), "is a broken symbolic link"),
    (lambda p: p.symlink_to("/tmp"), "is a symbolic link out of the results folder (to /tmp)"),
    (os.mkfifo, "is a named pipe (FIFO), not a folder"),
])
def test_a_trial_folder_that_cannot_be_read_is_named_never_dropped(results, relative, make, reason):
    path = results / relative
    shutil.rmtree(path)
    make(path)
    with no_hang(), pytest.raises(ResultsError) as refused:
        _ = hpstudy.load_study(results).trials
    assert f"{relative}: {reason}" in str(refused.value) and "\n" not in str(refused.value)


def test_the_repeats_folder_is_listed_by_the_same_rule_and_notes_beside_it_are_left_alone(results, tmp_path):
    layout = Layout(results)
    layout.repeats.mkdir()
    (layout.repeats / "notes.txt").write_text("my notes\n")
    assert layout.repeat_files() == []
    (layout.repeats / "1").symlink_to(tmp_path / "outside")
    with pytest.raises(ResultsError, match="repeats/1: is a symbolic link out of the results folder"):
        layout.repeat_files()
    shutil.rmtree(layout.repeats)
    layout.repeats.symlink_to(tmp_path / "outside")
    with pytest.raises(ResultsError, match="repeats: is a symbolic link out of the results folder"):
        layout.repeat_files()


# ---------------------------------------------------------------- the study file
@pytest.mark.parametrize("make, reason", [
    (os.mkfifo, "it is a named pipe (FIFO), not a file"),
    (lambda p: p.symlink_to("/dev/zero"), "it is a character device, not a file"),
    (lambda p: p.symlink_to(p.name), "it is a symbolic link loop"),
    (lambda p: p.write_text("name: x\n" + " " * (1 << 20)),
     "it is too large (1 MiB; the cap for a study file is 1 MiB)"),
])
def test_a_study_file_that_is_no_regular_file_is_one_line_never_a_hang(tmp_path, make, reason):
    path = tmp_path / "study.yaml"
    make(path)
    with no_hang(), pytest.raises(SpecError) as refused:
        spec.load(path)
    assert str(refused.value) == f"{path}: cannot read the study file: {reason}" + (
        "; hpstudy reads regular files only" if "not a file" in reason else "")
    with no_hang():
        assert yamlfile.opening_comment(path) == ""


def test_a_study_file_reached_through_a_link_is_read(tmp_path):
    (tmp_path / "real.yaml").write_text("# the question\nname: x\n")
    (tmp_path / "study.yaml").symlink_to(tmp_path / "real.yaml")
    assert yamlfile.read(tmp_path / "study.yaml").startswith("# the question")
    assert yamlfile.opening_comment(tmp_path / "study.yaml") == "the question"


# ---------------------------------------------------------------- recorded values against the study's space
@pytest.mark.parametrize("value, allowed", [(0.0, True), (0.5, True), (-1.0, False), (5.0, False), ("0.5", False),
                                            (None, False), (True, False), (0, True)])
def test_recorded_values_are_checked_against_the_studys_space(finished_study, value, allowed):
    source, _ = finished_study
    study = hpstudy.load_study(source).spec

    def check():
        space.check_values(Path("trial.json"), {"model.dropout": value, "tuner/epochs": 3}, study)

    if allowed:
        check()
    else:
        with pytest.raises(ResultsError, match=r"trial.json: records model.dropout = .*, outside the study's space "
                                               r"\(one of 0.0, 0.5\)"):
            check()


def test_ranges_and_booleans_of_the_space(tmp_path):
    study = spec.load(write_study(tmp_path, """
        name: ranged
        data: {dataset: digits}
        model:
          builder: plain_cnn
          filters: {tune: int, min_value: 4, max_value: 16, step: 4}
          dropout: {tune: float, min_value: 0.0, max_value: 0.5}
          batch_norm: {tune: boolean}
        """))
    space.check_values(Path("t"), {"model.filters": 8, "model.dropout": 0.5, "model.batch_norm": False}, study)
    for name, value in [("model.filters", 20), ("model.filters", 4.5), ("model.dropout", float("nan")),
                        ("model.dropout", -0.1), ("model.batch_norm", 1), ("model.filters", "8")]:
        with pytest.raises(ResultsError, match=f"records {name} = "):
            space.check_values(Path("t"), {name: value}, study)


# ---------------------------------------------------------------- .keras archives
def test_a_keras_member_that_would_inflate_past_its_cap_is_refused_before_it_is_inflated(results):
    from hpstudy.trained import models
    best = Layout(results).best_model
    with zipfile.ZipFile(best) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["config.json"] = b" " * (20 << 20)
    with zipfile.ZipFile(best, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in entries.items():
            out.writestr(name, data)
    assert best.stat().st_size < (1 << 20)
    with pytest.raises(ResultsError, match=r"best.keras: refused: its JSON member 'config.json' inflates to 20 MiB "
                                           r"\(the cap for a JSON member of a .keras file is 16 MiB\)"):
        models.check_archive(best)
