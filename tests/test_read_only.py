"""Reading a study writes nothing into it: `hpstudy serve`, `hpstudy report` (to stdout, and to a file elsewhere) and
`Study`'s plots on a real 10-trial study whose folder is made read-only (folders 555, files 444), as the run left it
and without its importance.json (the ranking then computed in memory, never saved). The tests run as root too,
whom permissions do not stop, so "nothing written" is every entry's bytes and times compared before and after.
A report whose output folder cannot be written is one line naming the folder and the reason, before any work."""
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

import hpstudy
from hpstudy.cli import main
from hpstudy.report import tables
from tests.helpers import folder_digest, get, one_error_line, serving, state, write_study

# Ten trials that train on digits in about two seconds each, at least four of them learning (an importance ranking
# needs 4): so importance.json is written by the run, and read (or computed) by every reader.
TEN = """
name: ten
data:
  dataset: digits
  subset: {train: 160, validation: 40, test: 20}
model:
  builder: plain_cnn
  conv_layers: 1
  filters: 4
  dense_units: 8
  dropout: {tune: choice, values: [0.0, 0.2, 0.4, 0.6, 0.8]}
train:
  epochs: 1
  batch_size: 16
  learning_rate: {tune: choice, values: [0.003, 0.01]}
search:
  tuner: grid
  seed: 1
"""
PLOTS = ("plot_effects", "plot_parallel", "plot_importance", "plot_history", "plot_pareto", "plot_curves")


def snapshot(root: Path) -> dict:
    """Every entry under `root` (`folder_digest`: kind, content, time) with each one's mode, and `root`'s own time
    (a file made and removed again, a temporary one, changes it)."""
    entries = folder_digest(root)
    modes = {name: stat.S_IMODE(os.lstat(root / name).st_mode) for name in entries}
    return {".": os.lstat(root).st_mtime_ns, **{name: (*held, modes[name]) for name, held in entries.items()}}


def set_modes(root: Path, folders: int, files: int) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(folders if path.is_dir() else files)


@pytest.fixture(scope="module")
def ten_study(tmp_path_factory):
    """The finished 10-trial study (its results folder), run once for this module."""
    folder = tmp_path_factory.mktemp("ten")
    study = hpstudy.run(write_study(folder, TEN, name="ten"), results_dir=folder / "results")
    table = study.trials
    assert len(table) == 10 and (table.status == "COMPLETED").all() and table.trained.sum() >= 4
    assert study.layout.importance.is_file()           # written by the run, at its end
    return study.path


@pytest.fixture(params=["as the run left it", "without importance.json"])
def read_only(request, ten_study, tmp_path):
    """A copy of the study, made read-only; its snapshot is checked unchanged after the test, modes restored."""
    folder = tmp_path / "results" / "ten"
    shutil.copytree(ten_study, folder, symlinks=True)
    if request.param == "without importance.json":
        folder.joinpath("importance.json").unlink()
    set_modes(folder, 0o555, 0o444)
    before = snapshot(folder)
    yield folder
    after = snapshot(folder)
    set_modes(folder, 0o755, 0o644)
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"written into the read-only study: {changed}"


def test_serve_answers_every_page_and_figure_and_writes_nothing(read_only):
    with serving(read_only) as server:
        found = state(server)
        assert found["error"] is None and found["done"] == 10 and found["counts"] == {"COMPLETED": 10}
        captions = [figure["caption"] for figure in found["figures"]]
        assert any("importance" in caption for caption in captions), captions
        for figure in found["figures"]:
            status, png = get(server, "/" + figure["url"])
            assert status == 200 and png.startswith(b"\x89PNG")
        status, page = get(server, "/")
        assert status == 200 and b"ten" in page


def test_report_to_stdout_and_to_a_file_elsewhere_writes_nothing_into_the_study(read_only, tmp_path, capsys):
    assert main(["report", str(read_only), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert "| trial_id" in text and "permutation importance" in text and "too few trials for an importance" not in text
    output = tmp_path / "out" / "ten.md"
    output.parent.mkdir()
    assert main(["report", str(read_only), "--format", "markdown", "--output", str(output), "--best", "0"]) == 0
    assert output.read_text().startswith(text.split("\n", 1)[0])
    assert sorted(p.name for p in (tmp_path / "out" / "ten_figures" / "ten").iterdir())
    assert main(["report", str(read_only), "--format", "json"]) == 0
    assert capsys.readouterr().out.lstrip().startswith("{")


def test_study_plots_draw_from_one_report_and_write_nothing(read_only, monkeypatch):
    built = []
    build = tables.build
    monkeypatch.setattr(tables, "build", lambda *a, **k: built.append(a) or build(*a, **k))
    study = hpstudy.load_study(read_only)
    for name in PLOTS:
        assert getattr(study, name)().axes
    assert len(built) == 1                              # one report for every plot
    assert study.trials.shape[0] == 10 and study.ranked()


def test_a_study_s_plots_follow_its_folder_when_a_trial_ends(ten_study, tmp_path, monkeypatch):
    folder = tmp_path / "ten"
    shutil.copytree(ten_study, folder, symlinks=True)
    built = []
    build = tables.build
    monkeypatch.setattr(tables, "build", lambda *a, **k: built.append(a) or build(*a, **k))
    study = hpstudy.load_study(folder)
    study.plot_history()
    study.plot_history()
    assert len(built) == 1
    table = folder / "trials.csv"                      # a run rewrites it (renamed into place) at each trial end
    replacement = folder / ".trials.csv.tmp"
    replacement.write_bytes(table.read_bytes())
    os.replace(replacement, table)
    study.plot_history()
    assert len(built) == 2


# ---------------------------------------------------------------- an output folder that cannot be written
@pytest.fixture
def unwritable(tmp_path, monkeypatch):
    """A folder this process cannot create a file in: read-only by its mode (not root), else immutable (root with
    chattr); where neither is possible, the operating system's refusal is made at the call hpstudy makes to
    create a file there (tempfile.mkstemp), the last resort."""
    folder = tmp_path / "locked"
    folder.mkdir()
    undo = None
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = lambda: folder.chmod(0o755)        # noqa: E731
    elif shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        undo = lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)      # noqa: E731
    else:
        real = tempfile.mkstemp

        def refused(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).resolve() == folder.resolve():
                raise PermissionError(13, "Permission denied", str(dir))
            return real(*args, dir=dir, **kwargs)
        monkeypatch.setattr(tempfile, "mkstemp", refused)
    try:
        with pytest.raises(OSError):
            tempfile.mkstemp(dir=folder)
        yield folder
    finally:
        if undo is not None:
            undo()


def test_a_report_into_a_folder_it_cannot_write_is_one_line_naming_it(ten_study, unwritable, capsys):
    for fmt in ("markdown", "html"):
        assert main(["report", str(ten_study), "--format", fmt, "--output", str(unwritable / "ten.md")]) == 2
        line = one_error_line(capsys, str(unwritable))
        assert line.startswith(f"hpstudy: error: {unwritable}: cannot write the report there ("), line
    assert list(unwritable.iterdir()) == []
