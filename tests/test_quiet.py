"""Quiet by default: a command that succeeds without --verbose writes nothing on stderr (no TensorFlow or absl log
line, no retracing warning, no keras-tuner or scipy warning); --verbose shows them. Each command runs in its own
process, as a user runs it, with TensorFlow's log level left unset (the suite sets it for itself)."""
import os

import numpy as np
import pytest
from PIL import Image

from tests.helpers import TINY, run_command, write_study

# Four trials, so that `report --best 3` evaluates three models: TensorFlow warned that its predict function was
# traced again from the fifth call on.
STUDY = TINY.replace("values: [0.0, 0.5]", "values: [0.0, 0.2, 0.4, 0.6]")


def _hpstudy(*argv, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS")}
    done = run_command(*argv, env=env, cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def quiet_study(tmp_path_factory):
    """(folder, results folder, an image file) after a non-verbose `hpstudy run`, whose stderr must be empty."""
    folder = tmp_path_factory.mktemp("quiet")
    done = _hpstudy("run", write_study(folder, STUDY.format(name="quiet"), name="quiet"), "--results-dir", "results",
                    cwd=folder)
    assert done.stderr == "" and "best: trial" in done.stdout
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / "seven.png")
    return folder, folder / "results" / "quiet", folder / "seven.png"


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["confirm", "{results}", "--top", "2", "--seeds", "2"],
    ["report", "{results}", "--output", "report.md", "--best", "3"],
    ["predict", "{results}", "{image}"],
    ["export", "{results}", "--to", "model.keras"],
], ids=lambda command: command[0])
def test_a_command_without_verbose_writes_nothing_on_stderr(quiet_study, command):
    folder, results, image = quiet_study
    done = _hpstudy(*(part.format(results=results, image=image) for part in command), cwd=folder)
    assert done.stderr == ""
    assert done.stdout or (folder / "report.md").exists()


@pytest.mark.slow
def test_verbose_shows_the_frameworks_lines(quiet_study):
    folder, results, image = quiet_study
    quiet = _hpstudy("report", results, "--output", "again.md", "--best", "3", cwd=folder)
    shown = _hpstudy("report", results, "--output", "again.md", "--best", "3", "--verbose", cwd=folder)
    assert quiet.stderr == "" and "retracing" in shown.stderr
