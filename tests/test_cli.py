"""The command line, through exit codes: user errors are exit 2 and one line, never a traceback."""
import json
import subprocess
import sys

import pytest

from hpstudy import __version__
from hpstudy.cli import main
from tests.helpers import one_error_line, run_command, write_study


def test_help_and_version_do_not_import_tensorflow():
    code = ("import sys\nfrom hpstudy.cli import main\n"
            "for argv in (['--help'], ['run', '--help'], ['--version']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"hpstudy {__version__}" in done.stdout


def test_report_does_not_import_tensorflow(finished_study):
    folder, _ = finished_study
    code = (f"import sys\nfrom hpstudy.cli import main\nassert main(['report', {str(folder)!r}]) == 0\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("## The answer\n") and "| trial_id" in done.stdout


@pytest.mark.slow
def test_the_commands_own_process_freezes_what_it_holds_once_keras_is_imported(tmp_path):
    from hpstudy import lazy
    study = write_study(tmp_path)
    # The command's process: its objects, the frameworks', are frozen once Keras is in (none before, for --help).
    code = ("import gc, sys\nfrom hpstudy.cli import main\n"
            f"assert main(['validate', {str(study)!r}], own_process=True) == 0\n"
            "assert 'keras' in sys.modules and gc.get_freeze_count() > 100_000, gc.get_freeze_count()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert main(["validate", str(study)]) == 0 and not lazy._freeze      # a caller's process: never


@pytest.mark.parametrize("fmt", ["markdown", "csv", "json"])
def test_report_formats(finished_study, fmt, tmp_path, capsys):
    folder, _ = finished_study
    assert main(["report", str(folder), "--format", fmt]) == 0
    text = capsys.readouterr().out
    if fmt == "json":
        rows = json.loads(text)["trials"]
        assert [r["trial_id"] for r in rows] and rows[0]["score"] >= rows[-1]["score"]
    elif fmt == "csv":
        assert text.splitlines()[0].startswith("trial_id,status,model.dropout,score")
    else:
        assert text.startswith("## The answer\n") and "model.dropout" in text
    out = tmp_path / f"table.{fmt}"
    assert main(["report", str(folder), "--format", fmt, "--output", str(out), "--best", "0"]) == 0
    written, _, figures = out.read_bytes().decode("utf-8").partition("### Figures: ")    # as written: CSV's CRLF
    assert written.rstrip("\n") == text.rstrip("\n")      # markdown to a file adds the study's figures, linked
    assert bool(figures) == (fmt == "markdown")


def test_report_compares_several_studies(finished_study, capsys):
    folder, _ = finished_study
    assert main(["report", str(folder), str(folder), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("study,trial_id") and len(lines) == 5


def test_validate_good_study(tmp_path, capsys):
    assert main(["validate", str(write_study(tmp_path))]) == 0
    assert ("valid; searched: model.dropout; objective: val_accuracy (max, higher is better); 2 model build(s) "
            "checked") in capsys.readouterr().out


@pytest.mark.parametrize("argv_of, fragment", [
    (lambda p: ["validate", p / "missing.yaml"], "missing.yaml: no such study file"),
    (lambda p: ["validate", write_study(p, "name: x\ntrain: {epochs: many}\n", name="bad")], "train.epochs"),
    (lambda p: ["validate", write_study(p, "name: x\nmodel: {padding: valid, kernel_size: 15, conv_layers: 2}\n",
                                        name="bad")], "model.kernel_size"),
    (lambda p: ["run", write_study(p, "name: x\nsearch: {tunr: grid}\n", name="bad")], "search.tunr"),
    (lambda p: ["run", write_study(p, f"name: x\ndata: {{dataset: cifar10, data_dir: {p / 'nowhere'}}}\n",
                                   name="bad")], "nowhere"),
    (lambda p: ["report", p / "nothing"], "not an hpstudy results folder"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, argv_of, fragment, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)             # a run's default --results-dir is relative
    assert main([str(a) for a in argv_of(tmp_path)]) == 2
    one_error_line(capsys, fragment)


@pytest.mark.slow
def test_a_user_error_of_the_command_itself_is_exit_2_and_one_line(tmp_path):
    """The cases above run in this process; this one runs the command (after Keras built the models it checks):
    exit code 2, one line on stderr and nothing else (no traceback, no TensorFlow log line)."""
    study = write_study(tmp_path, "name: x\nmodel: {padding: valid, kernel_size: 15, conv_layers: 2}\n", name="bad")
    done = run_command("run", study, "--results-dir", tmp_path / "results")
    assert done.returncode == 2, done.stderr
    line = one_error_line((done.stdout, done.stderr))
    assert line.startswith(f"hpstudy: error: {study}: model.kernel_size: a 15x15 kernel"), line


def test_unwritable_report_output_is_a_user_error(finished_study, tmp_path, capsys):
    folder, _ = finished_study
    assert main(["report", str(folder), "--output", str(tmp_path / "no" / "such" / "dir.md")]) == 2
    one_error_line(capsys, "cannot write the report")


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["run", "x.yaml", "--max-trials", "0"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == ("hpstudy run: error: argument --max-trials: expected a "
                                                        "positive integer, got '0'")


def test_results_dir_that_is_not_a_results_folder_is_never_deleted(tmp_path, capsys):
    foreign = tmp_path / "mine"
    (foreign / "tiny").mkdir(parents=True)
    (foreign / "tiny" / "thesis.tex").write_text("precious")
    assert main(["run", str(write_study(tmp_path)), "--results-dir", str(foreign), "--overwrite"]) == 2
    one_error_line(capsys, "not an hpstudy results folder")
    assert (foreign / "tiny" / "thesis.tex").read_text() == "precious"


@pytest.mark.slow
def test_run_prints_a_line_per_trial_and_the_best(tmp_path):
    done = run_command("run", write_study(tmp_path), "--results-dir", tmp_path / "out", "--max-trials", "1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("trial    0  val_accuracy=") and "model.dropout=0" in lines[0]
    assert "best: trial 0" in done.stdout and "test_accuracy=" in done.stdout
    assert "oneDNN" not in done.stderr and "absl" not in done.stderr
