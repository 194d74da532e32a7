"""The results folder: atomic writes, refusing foreign folders, reading a table consistently."""
import json
import re

import pytest
import yaml

from hpstudy.errors import ResultsError
from hpstudy.files import read_record, write_json
from hpstudy.results.folder import open_folder, prepare
from hpstudy.results.layout import FORMAT, trial_number
from hpstudy.results.trials import read_best, read_history, read_trials
from hpstudy.study import spec


def test_write_text_is_atomic_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a" / "file.json"
    write_json(target, {"x": 1})
    write_json(target, {"x": 2})
    assert json.loads(target.read_text()) == {"x": 2}
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]


def test_prepare_writes_the_resolved_spec_and_refuses_a_changed_one(tmp_path):
    study = spec.loads("name: s\ntrain: {epochs: 3}\n", source="s.yaml")
    layout = prepare(tmp_path / "s", study)
    assert spec.load(layout.spec) == study
    prepare(tmp_path / "s", study)                          # same study: fine
    more = spec.loads("name: s\ntrain: {epochs: 3}\nsearch: {max_trials: 30}\n", source="s.yaml")
    prepare(tmp_path / "s", more)                           # more trials: fine (extends)
    changed = spec.loads("name: s\ntrain: {epochs: 4}\n", source="s.yaml")
    with pytest.raises(ResultsError, match="differs from s.yaml in train.epochs"):
        prepare(tmp_path / "s", changed)
    prepare(tmp_path / "s", changed, overwrite=True)
    assert spec.load(layout.spec).train.epochs == 4


def test_trial_numbers_drop_keras_tuner_padding():
    assert trial_number("0007") == "7" and trial_number(12) == "12"


def test_reading_skips_a_trial_file_being_written_only_while_a_run_holds_the_folder(finished_study, tmp_path):
    import shutil
    import subprocess
    import sys
    folder, _ = finished_study
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "tuner" / "trial_9").mkdir()
    (copy / "tuner" / "trial_9" / "trial.json").write_text('{"trial_id": "9", "hyperpa')   # half written
    with pytest.raises(ResultsError, match=r"trial_9/trial.json: is corrupt \(not valid JSON"):
        read_trials(open_folder(copy))           # no run: the file is damaged, and named
    hold = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(copy / ".hpstudy.lock")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        table = read_trials(open_folder(copy))    # another process's run is writing it: skipped this time
        assert list(table.trial_id) == ["0", "1"]
    finally:
        holder.kill()
        holder.wait()


def test_read_record_names_the_file_and_what_is_wrong(tmp_path):
    path = tmp_path / "r.json"
    assert read_record(path) is None                                       # missing: nothing yet
    for content, message in [(b"", "is empty"), (b"[1]", "expected an object, found a list"),
                             (b'{"a": 1', "not valid JSON"), (b"\xff", "not UTF-8"),
                             (b'{"n": "7"}', "'n' is a string (\"7\"), expected a number"),
                             (b'{"n": true}', "'n' is true/false"), (b'{"d": {"n": null}}', "'d.n' is null")]:
        path.write_bytes(content)
        with pytest.raises(ResultsError, match=re.escape(f"{path}: ")) as err:
            read_record(path, dict, {"n": (int, float), "d.n": int})
        assert message in str(err.value) and "--overwrite" in str(err.value)
    path.write_bytes(b'{"n": 2.5, "d": {"n": 3}, "other": [1]}')
    assert read_record(path, dict, {"n": (int, float), "d.n": int})["n"] == 2.5
    path.unlink()
    path.mkdir()
    with pytest.raises(ResultsError, match="is a folder"):
        read_record(path)
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(ResultsError, match="broken symbolic link"):
        read_record(link)


def test_open_folder_names_what_is_missing(tmp_path):
    with pytest.raises(ResultsError, match="no spec.yaml"):
        open_folder(tmp_path)


def test_a_results_folder_from_before_a_new_setting_still_resumes(tmp_path):
    study = spec.loads("name: s\n", source="s.yaml")
    layout = prepare(tmp_path / "s", study, overwrite=False)
    write_json(layout.env, {"results_format": FORMAT})
    old = yaml.safe_load(layout.spec.read_text())
    del old["preprocess"], old["data"]["test_split"]      # keys a newer hpstudy added, at their defaults
    layout.spec.write_text(yaml.safe_dump(old))
    prepare(tmp_path / "s", study, overwrite=False)   # no "differs" error
    changed = spec.loads("name: s\npreprocess: {flip: true}\n", source="s.yaml")
    with pytest.raises(ResultsError, match="preprocess.flip"):
        prepare(tmp_path / "s", changed, overwrite=False)


def test_a_results_folder_of_another_model_layout_is_refused(tmp_path):
    study = spec.loads("name: s\n", source="s.yaml")
    layout = prepare(tmp_path / "s", study, overwrite=False)
    write_json(layout.env, {"hpstudy": "0.1.0"})     # before results_format existed
    with pytest.raises(ResultsError, match=r"results format 1, this version writes 3\); run with --overwrite"):
        prepare(tmp_path / "s", study, overwrite=False)
    prepare(tmp_path / "s", study, overwrite=True)


def test_a_folder_of_results_format_2_resumes_and_reads_its_epochs_counted_from_1(tmp_path):
    """Format 2 counted epochs from 0 in best.json and the histories; they read as counted from 1."""
    study = spec.loads("name: s\n", source="s.yaml")
    layout = prepare(tmp_path / "s", study)
    write_json(layout.env, {"results_format": 2})
    write_json(layout.best, {"trial_id": "0", "best_epoch": 0})
    layout.trial("0").mkdir(parents=True)
    layout.history("0").write_text("epoch,loss\n0,1.0\n1,0.5\n")
    assert read_best(layout)["best_epoch"] == 1
    assert list(read_history(layout, "0").epoch) == [1, 2]
    prepare(tmp_path / "s", study)      # resumed, not refused
    write_json(layout.env, {"results_format": FORMAT})
    write_json(layout.best, {"results_format": FORMAT, "trial_id": "0", "best_epoch": 1})
    layout.history("0").write_text("epoch,loss\n1,1.0\n2,0.5\n")
    assert read_best(layout)["best_epoch"] == 1
    assert list(read_history(layout, "0").epoch) == [1, 2]
