"""`hpstudy serve`: the live view answers, follows a trial that finishes after the first request, serves nothing by
name, never writes to the folder, and is one line for what a user gets wrong. The folders are copies of the
session's finished study, with a trial taken out and put back the way a run writes its files."""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hpstudy.cli import main
from hpstudy.results.layout import TUNER_TRIAL_FILE, Layout
from hpstudy.serve import watch
from hpstudy.serve.server import open_server
from hpstudy.study import spec
from tests.helpers import REPO, folder_digest, get, no_hang, one_error_line, serving, state

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
STUDIES = REPO / "studies"


# ---------------------------------------------------------------- a run, simulated with a real run's files
def write_like_a_run(path: Path, data: bytes) -> None:
    """Write as hpstudy does: a temporary name, renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def tuner_trial_file(root: Path, number: str) -> Path:
    return Layout(root).tuner_trial(number) / TUNER_TRIAL_FILE


def start_trial(source: Path, folder: Path, number: str, epochs: int) -> None:
    """Trial `number` of `source` as it is while it runs: keras-tuner's record says RUNNING, and its history
    holds its first `epochs` rows."""
    record = json.loads(tuner_trial_file(source, number).read_text())
    record.update(status="RUNNING", score=None, best_step=None, metrics={"metrics": {}})
    target = folder / tuner_trial_file(source, number).relative_to(source)
    write_like_a_run(target, json.dumps(record).encode())
    lines = Layout(source).history(number).read_text().splitlines(keepends=True)
    write_like_a_run(Layout(folder).history(number), "".join(lines[:1 + epochs]).encode())


def finish_trial(source: Path, folder: Path, number: str) -> None:
    """Every file of trial `number` of `source` copied in, keras-tuner's record last (as a run ends a trial)."""
    trial_folder, tuner_folder = Layout(source).trial(number), Layout(source).tuner_trial(number)
    record = tuner_folder / TUNER_TRIAL_FILE
    files = [p for p in [*sorted(trial_folder.rglob("*")), *sorted(tuner_folder.rglob("*"))] if p.is_file()]
    for path in [*(p for p in files if p != record), record]:
        write_like_a_run(folder / path.relative_to(source), path.read_bytes())


@pytest.fixture
def live(finished_study, tmp_path):
    """(the finished study, a copy of it without trial 1): trial 1 is what finishes later."""
    source, _ = finished_study
    folder = tmp_path / "results" / source.name
    shutil.copytree(source, folder, symlinks=True)
    shutil.rmtree(Layout(folder).tuner_trial("1"))
    shutil.rmtree(Layout(folder).trial("1"))
    return source, folder


# ---------------------------------------------------------------- the JSON state
def test_the_state_follows_a_trial_from_its_first_epoch_to_its_end(live):
    source, folder = live
    start_trial(source, folder, "1", epochs=1)
    with serving(folder) as server:
        first = state(server)
        assert (first["done"], first["planned"], first["trials"]) == (1, 2, 2)
        [running] = first["running"]
        assert (running["trial_id"], running["epoch"], running["epochs"]) == ("1", 1, 2)
        assert running["curve"]["epoch"] == [1] and len(running["curve"]["val_accuracy"]) == 1
        assert running["values"] == {"model.dropout": 0.5}
        captions = [f["caption"] for f in first["figures"]]        # the running trial's curves, then the report's
        assert captions[0] == "learning curves: trial 1, running" and len(captions) > 1, captions
        assert all(c.startswith(f"{folder.name}: ") for c in captions[1:]), captions
        status, png = get(server, "/" + first["figures"][0]["url"])
        assert status == 200 and png.startswith(b"\x89PNG")
        assert server.watched[0].state_json() is server.watched[0].state_json()    # unchanged: from memory

        start_trial(source, folder, "1", epochs=2)             # the next epoch: only its history changed
        second = state(server)
        assert second["running"][0]["epoch"] == 2 and second["version"] != first["version"]

        finish_trial(source, folder, "1")                     # the trial ends after the page first asked
        last = state(server)
        assert (last["done"], last["running"], last["counts"]) == (2, [], {"COMPLETED": 2})
        assert last["table"].count("<tr>") == 2                # both trials (the header row has a style)
        assert "RUNNING" not in last["table"] and "COMPLETED" in last["table"]


def test_nothing_is_served_by_name(live, tmp_path):
    _, folder = live
    secret = folder / "spec.yaml"
    with serving(folder) as server:
        assert get(server, "/")[0] == 200
        for target in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/figure/0/../../spec.yaml", "/spec.yaml",
                       "/tuner/oracle.json", "//etc/passwd", str(secret), f"/{secret}", "/figure/0/%2e%2e/spec.yaml",
                       "/state.json/..", "/figure/1/0.png", "/figure/0/99.png", "/figure/-1/0.png", "/..%2f..%2fetc"]:
            status, body = get(server, target)
            assert status in (403, 404), target
            assert b"name:" not in body and b"root:" not in body
        assert get(server, "/state.json", method="POST")[0] == 501
        assert get(server, "/state.json", host="attacker.example:8765")[0] == 403   # DNS rebinding
        assert get(server, "/state.json", host="localhost:9000")[0] == 200          # an SSH tunnel's own port


def test_a_link_out_of_the_folder_is_not_read(live, tmp_path):
    _, folder = live
    outside = tmp_path / "outside.csv"
    outside.write_text("epoch,loss\n1,424242\n")
    history = Layout(folder).history("0")
    history.unlink()
    history.symlink_to(outside)
    with serving(folder) as server:
        found = state(server)
        assert "symbolic link out of the results folder" in found["error"] and "424242" not in json.dumps(found)
        assert b"424242" not in get(server, "/")[1]


def test_it_reads_while_a_run_holds_the_folder_and_writes_nothing(live):
    source, folder = live
    start_trial(source, folder, "1", epochs=1)
    before = folder_digest(folder)
    hold = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(Layout(folder).lock)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with serving(folder) as server:
            found = state(server)
            assert found["error"] is None and found["running"][0]["trial_id"] == "1"
            for figure in found["figures"]:
                assert get(server, "/" + figure["url"])[0] == 200
            assert get(server, "/")[0] == 200
    finally:
        holder.kill()
        holder.wait()
    assert folder_digest(folder) == before


# ---------------------------------------------------------------- the reading rule (tests/results/test_reading.py)
@pytest.mark.parametrize("relative", ["tuner/trial_0000/trial.json", "trials/0/execution_0.json",
                                      "trials/0/history_0.csv", "best.json"])
def test_serve_is_not_blocked_by_a_named_pipe_at_this_poll_nor_the_next(live, relative):
    _, folder = live
    path = folder / relative
    path.unlink()
    os.mkfifo(path)
    with no_hang(), serving(folder) as server:
        for _ in range(2):                  # the next poll neither
            found = state(server)
            assert found["error"] is None or "is a named pipe (FIFO), not a file" in found["error"]
            assert get(server, "/")[0] == 200


def test_serve_reads_a_running_trial_whose_history_is_a_named_pipe_without_blocking(live):
    source, folder = live
    start_trial(source, folder, "1", epochs=1)
    Layout(folder).history("1").unlink()
    os.mkfifo(Layout(folder).history("1"))
    with no_hang(), serving(folder) as server:
        for _ in range(2):
            found = state(server)
            assert found["error"] is None and found["running"][0]["curve"]["epoch"] == []


def test_serve_does_not_follow_a_repeats_folder_out(live, tmp_path):
    _, folder = live
    outside = tmp_path / "elsewhere" / "1"
    outside.mkdir(parents=True)
    (outside / "seed_1900003.json").write_text(json.dumps({"trial_id": "0", "seed": 1900003, "status": "COMPLETED",
                                                           "score": 0.424242}))
    Layout(folder).repeats.symlink_to(outside.parent)
    with no_hang(), serving(folder) as server:
        found = state(server)
        assert "repeats: is a symbolic link out of the results folder" in found["error"]
        assert "424242" not in json.dumps(found) and b"424242" not in get(server, "/")[1]


# ---------------------------------------------------------------- the command
def test_what_is_not_a_results_folder_is_one_line(live, tmp_path, capsys):
    _, folder = live
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "spec.yaml").write_text("apiVersion: v1\nkind: Pod\n")
    (tmp_path / "file").write_text("x")
    for path, fragment in [(tmp_path / "missing", "not a folder"), (tmp_path / "file", "not a folder"),
                           (tmp_path, "not an hpstudy results folder (no spec.yaml)"),
                           (foreign, "not an hpstudy results folder (its spec.yaml is not a study")]:
        assert main(["serve", str(folder), str(path), "--port", "0"]) == 2
        assert one_error_line(capsys, fragment).startswith(f"hpstudy: error: {path}: ")


def test_a_port_in_use_is_one_line(live, capsys):
    _, folder = live
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(folder), "--port", str(port)]) == 2
    assert one_error_line(capsys).startswith(f"hpstudy: error: 127.0.0.1:{port}: cannot listen there")


def test_only_another_host_than_loopback_is_warned_about(live, capsys):
    _, folder = live
    open_server([str(folder)], host="127.0.0.1", port=0).server_close()
    assert capsys.readouterr().err == ""
    open_server([str(folder)], host="0.0.0.0", port=0).server_close()     # closed before it answers anything
    err = capsys.readouterr().err
    assert err.startswith("warning: hpstudy serve listens on http://0.0.0.0:") and "no password" in err


@pytest.mark.slow
def test_the_command_serves_without_tensorflow_and_ctrl_c_ends_it_quietly(live):
    source, folder = live
    finish_trial(source, folder, "1")
    # Ctrl-C as in a terminal, even where the suite itself runs as a background job (which ignores SIGINT).
    code = ("import os, signal, sys, threading, time, urllib.request\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from hpstudy.serve import server\n"
            "opened, real = [], server.open_server\n"
            "server.open_server = lambda *a, **k: opened.append(real(*a, **k)) or opened[-1]\n"
            "def visit():\n"
            "    while not opened: time.sleep(0.05)\n"
            "    body = urllib.request.urlopen(opened[0].url + 'state.json', timeout=120).read()\n"
            "    print('done', __import__('json').loads(body)['studies'][0]['done'], flush=True)\n"
            "    print('heavy', [m for m in ('tensorflow', 'keras') if m in sys.modules], flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "threading.Thread(target=visit, daemon=True).start()\n"
            "from hpstudy.cli import main\n"
            f"sys.exit(main(['serve', {str(folder)!r}, '--port', '0']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("hpstudy serve: 1 study at http://127.0.0.1:") and lines[1:] == ["done 2", "heavy []"]


# ---------------------------------------------------------------- what a study plans
def test_planned_trials_and_epochs(tmp_path):
    ladder = spec.load(STUDIES / "architecture_ladder.yaml")
    assert watch.grid_size(ladder) == 5 and watch.planned_trials(ladder) == 5    # deep_cnn 2 x 2, resnet 1
    def planned(search, model="{dropout: {tune: choice, values: [0.0, 0.5]}}", train="{epochs: 3}"):
        return watch.planned_trials(spec.loads(f"name: s\nmodel: {model}\ntrain: {train}\nsearch: {search}\n"))
    assert planned("{tuner: grid}") == 2 and planned("{tuner: grid, max_trials: 1}") == 1
    assert planned("{tuner: random}") == spec.SearchSpec.DEFAULT_MAX_TRIALS == 10
    assert planned("{tuner: bayesian, max_trials: 4}") == 4
    assert planned("{tuner: hyperband}") is None
    assert planned("{tuner: grid}", model="{filters: {tune: int, min_value: 8, max_value: 32, step: 8}}") == 4
    assert planned("{tuner: grid}", model="{filters: {tune: int, min_value: 8, max_value: 64, step: 2, "
                                          "sampling: log}}") == 4
    assert planned("{tuner: grid}", model="{filters: 8}",
                   train="{learning_rate: {tune: float, min_value: 0.001, max_value: 0.1}}") == 10
    assert planned("{tuner: grid}", train="{learning_rate: {tune: float, min_value: 0.001, max_value: 0.1}}") == 20
    study = spec.loads("name: s\ntrain: {epochs: {tune: choice, values: [2, 4]}, fine_tune_epochs: 1}\n")
    assert watch.planned_epochs(study, {"train.epochs": 4}) == 5
    assert watch.planned_epochs(study, {"tuner/epochs": 7}) == 7
    assert planned("{tuner: random}", model="{dropout: 0.5}") == 1 == planned("{tuner: grid}", model="{}")
    overridden = spec.loads("name: s\nmodel: {dropout: {tune: choice, values: [0.0, 0.5]}}\ntrain:\n  epochs: 5\n"
                            "  overrides: [{when: {model.dropout: 0.5}, set: {epochs: 1, fine_tune_epochs: 2}}]\n")
    assert watch.planned_epochs(overridden, {"model.dropout": 0.5}) == 3
    assert watch.planned_epochs(overridden, {"model.dropout": 0.0}) == 5


# ---------------------------------------------------------------- the page in a real browser
@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (CI installs Debian's)")
def test_the_page_shows_a_trial_that_finished_after_it_was_first_loaded(live):
    source, folder = live
    with serving(folder) as server:
        watched, answered = server.watched[0], []
        real = watched.state_json

        def state_json():
            if len(answered) == 1:                   # the page has shown one trial: the second ends now
                finish_trial(source, folder, "1")
            text = real()
            answered.append(json.loads(text)["done"])
            return text
        watched.state_json = state_json
        dom = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=9000",
                              "--dump-dom", server.url], capture_output=True, text=True, timeout=120)
    assert answered[0] == 1 and answered[-1] == 2 and len(answered) >= 3, (answered, dom.stderr[-1000:])
    assert 'data-done="2"' in dom.stdout and 'data-trials="2"' in dom.stdout, dom.stdout[-3000:]
    assert "2 of 2 trials done" in dom.stdout and '<p id="status" class="note">updated ' in dom.stdout
    # The report's figures of the two ended trials; no running trial's curves any more.
    assert dom.stdout.count("<img") >= 3 and "running" not in dom.stdout.split("<img", 1)[1][:300], dom.stdout[-3000:]
