"""Ctrl-C at any moment of a run: it stops within seconds with exit code 130, and the interrupted trial is run
again on resume, never marked FAILED (the issue's reproductions: a press just after a trial starts was lost in a
garbage-collection callback; a double press became a RuntimeError inside TensorFlow and a failed trial)."""
import os
import signal
import threading
import time

import pandas as pd
import pytest

from hpstudy import cli
from tests.conftest import TINY, write_study

# Batches of 4: three batch ends an epoch where a press can stop the search.
STUDY = TINY.format(name="sigint").replace("batch_size: 32", "batch_size: 4")


def _press_ctrl_c_when(started, delay: float, presses: int) -> threading.Thread:
    """Send this process SIGINT `delay` seconds after the file `started` appears (`presses` times, 50 ms apart)."""
    def watch():
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        for _ in range(presses):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("moments", [[(0.0, 1), (0.05, 1), (0.15, 1), (0.3, 2), (0.6, 1)]])
def test_ctrl_c_at_any_moment_stops_with_130_and_the_trial_is_run_again(tmp_path, capsys, moments):
    study = write_study(tmp_path, STUDY, name="sigint")
    argv = ["run", str(study), "--results-dir", str(tmp_path / "results")]
    started = tmp_path / "results" / "sigint" / "trials" / "1" / "starts.json"
    for delay, presses in moments:
        watcher = _press_ctrl_c_when(started, delay, presses)
        begun = time.monotonic()
        rc = cli.main(argv)
        watcher.join()
        assert rc == 130, f"Ctrl-C {delay}s after the trial started (x{presses}) was lost: exit {rc}"
        assert time.monotonic() - begun < 60
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1] == "hpstudy: interrupted; run the same command again to resume", err
        assert "Exception ignored" not in err and "Traceback" not in err, err
        table = pd.read_csv(tmp_path / "results" / "sigint" / "trials.csv")
        assert "FAILED" not in set(table.status), table
    assert cli.main(argv) == 0
    table = pd.read_csv(tmp_path / "results" / "sigint" / "trials.csv")
    assert list(table.status) == ["COMPLETED", "COMPLETED"], table
