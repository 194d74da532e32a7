"""Failures stay inside their trial; a killed run resumes without losing or repeating a finished trial;
old checkpoints are pruned."""
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

import hpstudy
from hpstudy.errors import ResultsError
from hpstudy.results.folder import open_folder
from hpstudy.results.layout import CHECKPOINT, trial_number
from hpstudy.results.trials import ranked_trials
from tests.helpers import HPSTUDY_COMMAND, TINY, epochs_study, run_command, write_study

# Weight decay of 1000 at this rate multiplies the weights by -9 each step: the loss overflows to NaN.
DIVERGING = TINY.replace("  epochs: 2", "  epochs: 3\n  optimizer: sgd\n  learning_rate: 0.01\n"
                                       "  weight_decay: {{tune: choice, values: [0.0, 1000.0]}}").replace(
    "  dropout: {{tune: choice, values: [0.0, 0.5]}}\n", "")


def _random(text, trials):
    """The tiny study as a random search of `trials` trials over a continuous dropout."""
    text = text.replace("tuner: grid", f"tuner: random\n  max_trials: {trials}")
    return text.replace("dropout: {tune: choice, values: [0.0, 0.5]}", "dropout: {tune: float, min_value: 0.0, "
                                                                       "max_value: 0.6}")


def test_a_diverged_trial_fails_with_its_reason_and_is_never_the_best(tmp_path):
    study = hpstudy.run(write_study(tmp_path, DIVERGING.format(name="nan"), name="nan"), results_dir=tmp_path)
    table = study.trials.set_index("trial_id")
    assert table.loc["0", "status"] == "COMPLETED"
    assert table.loc["1", "status"] == "FAILED"
    assert table.loc["1", "message"].startswith("loss became nan at epoch ")
    assert study.best["trial_id"] == "0" and ranked_trials(study.layout) == ["0"]


def test_a_search_whose_every_trial_failed_is_an_error_not_a_success(tmp_path, capsys):
    from hpstudy.cli import main
    text = DIVERGING.format(name="allnan").replace("{tune: choice, values: [0.0, 1000.0]}", "1000.0")
    text = text.replace("  conv_layers: 1", "  conv_layers: 1\n  dropout: {tune: choice, values: [0.0, 0.5]}")
    study_path = write_study(tmp_path, text, name="allnan")
    for _ in range(2):          # the run, and a resume of it, which has nothing left to run
        assert main(["run", str(study_path), "--results-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no trial completed (2 failed), so there is no best model" in err[0], err
        assert "the last failed with: loss became nan" in err[0]
    assert not (tmp_path / "allnan" / "best.keras").exists()


@pytest.mark.slow
def test_a_killed_trial_is_retried_but_one_that_keeps_killing_the_run_is_failed(tmp_path):
    # Trial 0 long enough to be killed inside it, trial 1 short.
    study_path = epochs_study(tmp_path, "crash", [60, 2])
    command = [*HPSTUDY_COMMAND, "run", str(study_path), "--results-dir", str(tmp_path)]
    history = tmp_path / "crash" / "trials" / "0" / "history_0.csv"
    for _ in range(2):          # the run dies twice inside trial 0 (as an out-of-memory kill would)
        history.unlink(missing_ok=True)
        _kill_when(command, history.exists)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    table = hpstudy.load_study(tmp_path / "crash").trials.set_index("trial_id")
    assert table.loc["0", "status"] == "FAILED"
    assert "the run stopped 2 times during this trial" in table.loc["0", "message"]
    assert table.loc["1", "status"] == "COMPLETED"


@pytest.mark.slow
def test_kills_at_several_moments_lose_nothing_and_repeat_no_finished_trial(tmp_path):
    text = _random(TINY.format(name="chaos"), 5).replace("epochs: 2", "epochs: 3")
    command = [*HPSTUDY_COMMAND, "run", str(write_study(tmp_path, text, name="chaos")),
               "--results-dir", str(tmp_path)]
    root = tmp_path / "chaos"
    finished = {}            # trial.json of each trial that had finished at a kill -> its bytes then
    for moment in _kill_moments(root):
        _kill_when(command, moment)
        for path in (root / "tuner").glob("trial_*/trial.json"):
            record = json.loads(path.read_text())             # never a half-written file
            if record["status"] == "COMPLETED":
                finished.setdefault(path, path.read_bytes())
        json.loads((root / "tuner" / "oracle.json").read_text())
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert finished, "no kill landed after a finished trial"
    for path, content in finished.items():
        assert path.read_bytes() == content                   # not run again
    table = hpstudy.load_study(root).trials
    assert list(table.trial_id) == ["0", "1", "2", "3", "4"] and (table.status == "COMPLETED").all()
    for number, epochs in zip(table.trial_id, table.epochs_run):
        folder = root / "trials" / number
        assert len(list(folder.glob("execution_*.json"))) == 1 and not (folder / "starts.json").exists()
        assert len(open(folder / "history_0.csv").read().splitlines()) == epochs + 1
    assert hpstudy.load_study(root).best["trial_id"] == ranked_trials(open_folder(root))[0]


def _kill_moments(root):
    """Moments to kill a run at: inside a trial, just as one finished, while the trials table was written."""
    trials = root / "tuner"

    def finished(count):
        return lambda: sum('"COMPLETED"' in p.read_text() for p in trials.glob("trial_*/trial.json")) >= count
    return [lambda: (root / "trials" / "0" / "history_0.csv").exists(),     # during the first trial
            finished(1),                                                     # right after it ended
            lambda: (root / "trials.csv").exists() and finished(3)(),        # as the table is rewritten
            finished(4)]


def _kill_when(command, condition, timeout=240):
    """Start `command`, SIGKILL it as soon as `condition()` holds."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while process.poll() is None and time.time() < deadline:
        try:
            if condition():
                break
        except (OSError, ValueError):      # a file that is being replaced right now
            pass
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before the moment to kill it"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _rewrite_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.slow
def test_resume_after_a_kill_between_keras_tuners_two_state_files(tmp_path):
    # A kill after trial.json says "COMPLETED" but before oracle.json was saved: the oracle still holds
    # the trial as running. A kill after a new trial.json but before oracle.json: the trial is unknown to it.
    study_path = write_study(tmp_path, _random(TINY.format(name="between"), 3), name="between")
    hpstudy.run(study_path, results_dir=tmp_path, max_trials=2)
    tuner = tmp_path / "between" / "tuner"
    first, second = sorted(tuner.glob("trial_*/trial.json"))

    def still_running(oracle):
        oracle["ongoing_trials"] = {"tuner0": json.loads(first.read_text())["trial_id"]}
        oracle["end_order"].remove(oracle["ongoing_trials"]["tuner0"])
    _rewrite_json(tuner / "oracle.json", still_running)
    orphan = json.loads(second.read_text())["trial_id"]
    _rewrite_json(second, lambda trial: trial.update(status="RUNNING", metrics={"metrics": {}}, score=None))
    _rewrite_json(tuner / "oracle.json", lambda oracle: (oracle["start_order"].remove(orphan),
                                                          oracle["end_order"].remove(orphan)))
    stamp = first.stat().st_mtime_ns

    study = hpstudy.run(study_path, results_dir=tmp_path, max_trials=3)
    assert first.stat().st_mtime_ns == stamp                       # the finished trial was not run again
    assert list(study.trials.trial_id) == ["0", "1", "2"] and (study.trials.status == "COMPLETED").all()


@pytest.mark.slow
def test_only_the_best_checkpoints_are_kept(tmp_path):
    text = _random(TINY.format(name="kept"), 4).replace("max_trials: 4", "max_trials: 4\n  keep_checkpoints: 1")
    study = hpstudy.run(write_study(tmp_path, text, name="kept"), results_dir=tmp_path)
    kept = [p.parent.name for p in (study.path / "tuner").glob(f"trial_*/{CHECKPOINT}")]
    best = study.best["trial_id"]
    assert [trial_number(name[len("trial_"):]) for name in kept] == [best]
    assert hpstudy.load_best(study.path).count_params() > 0
    from hpstudy.trained import models
    other = next(n for n in study.trials.trial_id if n != best)
    with pytest.raises(ResultsError, match=r"weights were not kept \(search.keep_checkpoints: 1"):
        models.trial_model(study.path, other)


@pytest.mark.slow
def test_hyperband_keeps_what_its_brackets_continue_from(tmp_path):
    text = _random(TINY.format(name="hb"), 1).replace("tuner: random\n  max_trials: 1", "tuner: hyperband\n"
                                                      "  keep_checkpoints: 1\n  options: {factor: 2, max_epochs: 2}")
    study = hpstudy.run(write_study(tmp_path, text, name="hb"), results_dir=tmp_path)
    assert (study.trials.status == "COMPLETED").all() and len(study.trials) > 4
    # Trials that continued an earlier trial's training found its weights (else they would have failed).
    assert any(v.get("tuner/trial_id") for v in _hyperparameters(study.path))
    assert len(list((study.path / "tuner").glob(f"trial_*/{CHECKPOINT}"))) == 1


def _hyperparameters(root):
    return [json.loads(p.read_text())["hyperparameters"]["values"] for p in (root / "tuner").glob("trial_*/trial.json")]


def test_results_files_are_never_half_written(tmp_path):
    target = tmp_path / "big.json"
    writer = ("import sys; from pathlib import Path; from hpstudy.files import write_json\n"
              "while True: write_json(Path(sys.argv[1]), list(range(200000)))\n")
    process = subprocess.Popen([sys.executable, "-c", writer, str(target)])
    replaced = set()            # each write renames a new file into place
    deadline = time.monotonic() + 120
    while len(replaced) < 5 and process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            facts = target.stat()
            replaced.add((facts.st_ino, facts.st_mtime_ns))
        time.sleep(0.005)
    assert len(replaced) >= 5, "the writer did not replace the file five times"
    os.kill(process.pid, signal.SIGKILL)      # in the middle of the next write
    process.wait()
    assert json.loads(target.read_text()) == list(range(200000))


@pytest.mark.slow
def test_a_run_that_outgrows_its_memory_allowance_continues_in_a_fresh_process(tmp_path):
    study_path = write_study(tmp_path, _random(TINY.format(name="fresh"), 3), name="fresh")
    done = run_command("run", study_path, "--results-dir", tmp_path,
                       env={**os.environ, "HPSTUDY_MEMORY_ALLOWANCE_MIB": "0.01"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "continuing in a fresh process" in done.stdout
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("trial ")] == ["0", "1", "2"]
    table = hpstudy.load_study(tmp_path / "fresh").trials
    assert list(table.trial_id) == ["0", "1", "2"] and (table.status == "COMPLETED").all()


def _file_size_limit(limit):
    """preexec_fn: writes past `limit` bytes fail with EFBIG, as on a full disk (SIGXFSZ ignored, as hpstudy
    cannot rely on it being caught)."""
    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limited


@pytest.mark.slow
def test_a_disk_that_refuses_writes_stops_the_run_in_one_line_and_fails_no_trial(tmp_path):
    study_path = write_study(tmp_path, TINY.format(name="full"), name="full")
    command = [*HPSTUDY_COMMAND, "run", str(study_path), "--results-dir", str(tmp_path)]
    # 40 kB: the JSON files fit, a trial's weights file does not.
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, preexec_fn=_file_size_limit(40_000))
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines() == [
        f"hpstudy: error: {tmp_path / 'full'}: cannot write trial 0's files (the file is too large for this file "
        "system or process); the search stopped, and trial 0 runs again on resume: make room and run the same "
        "command again"], done.stderr[-3000:]
    assert json.loads((tmp_path / "full" / "trials" / "0" / "starts.json").read_text()) == 0   # not held against it
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(hpstudy.load_study(tmp_path / "full").trials.status) == ["COMPLETED", "COMPLETED"]


def test_a_results_file_that_cannot_be_written_keeps_its_old_content(tmp_path):
    from hpstudy import files
    from hpstudy.errors import DiskFull
    target = tmp_path / "best.json"
    files.write_json(target, {"kept": True})
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
    try:
        with pytest.raises(DiskFull) as caught:
            files.write_json(target, {"big": "x" * 5000})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert str(caught.value).startswith(f"{target}: cannot write (the file is too large")
    assert json.loads(target.read_text()) == {"kept": True}
    assert [p.name for p in tmp_path.iterdir()] == ["best.json"]           # no temporary file left behind
