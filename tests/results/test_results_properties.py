"""Property test of the results folder's reader: whatever JSON a finished study's best.json, a keras-tuner
trial.json or an execution record holds, `hpstudy report --format json` ends with exit 0, or with exit 2 and one
line `hpstudy: error: <that file>: ...`; never another exception, never a traceback.

The values are drawn around the real files: the whole file replaced, or one field (top-level or nested, by its
real dotted name) given a drawn value. Derandomized: every run draws the same examples.
"""
import contextlib
import copy
import io
import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings, strategies as st

from hpstudy import cli
from tests.helpers import examples

FILES = ["best.json", "tuner/trial_0001/trial.json", "trials/1/execution_0.json"]
# The real key names of those files, so that drawn objects look like them.
KEYS = ["results_format", "trial_id", "objective", "score", "best_epoch", "hyperparameters", "test_loss",
        "test_accuracy", "class_names", "confirmed", "status", "values", "space", "metrics", "best_step", "message",
        "observations", "value", "step", "epochs_run", "seconds", "params", "flops", "last", "loss", "accuracy",
        "val_loss", "val_accuracy", "dropout", "class_name", "config", "name", ""]

SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
           | st.text(max_size=12) | st.sampled_from(["1", "0001", "COMPLETED", "FAILED", "val_accuracy"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4),
                      max_leaves=12)


def _paths(data, prefix=()):
    """Every dotted path to a value inside `data` (objects only; lists are left whole)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


def _replaced(data, path, value):
    out = copy.deepcopy(data)
    place = out
    for key in path[:-1]:
        place = place[key]
    place[path[-1]] = value
    return out


SETTINGS = dict(max_examples=examples(40), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@settings(**SETTINGS)
# Found by this test: a trial number past int64 broke the sorting of the trials table.
@example(which="tuner/trial_0001/trial.json", whole=True, pick=0, value={"trial_id": 2**63})
@example(which="tuner/trial_0001/trial.json", whole=False, pick=0, value="-1")
# ... and a hyperparameter value that is a list broke the effects analysis
# (pick 23: hyperparameters.values.model.dropout).
@example(which="tuner/trial_0001/trial.json", whole=False, pick=23, value=[-float("inf")])
@given(which=st.sampled_from(FILES), whole=st.booleans(), pick=st.integers(0, 10**6), value=VALUES)
def test_any_json_in_a_results_file_is_a_report_or_one_line(finished_study, which, whole, pick, value):
    source, _ = finished_study
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / source.name
        shutil.copytree(source, root, symlinks=True)
        target = root / which
        real = json.loads(target.read_text(encoding="utf-8"))
        paths = list(_paths(real))
        content = value if whole or not paths else _replaced(real, paths[pick % len(paths)], value)
        target.write_text(json.dumps(content), encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(["report", str(root), "--format", "json"])
        lines = err.getvalue().splitlines()
        if rc == 0:
            json.loads(out.getvalue())
            return
        assert rc == 2, (rc, err.getvalue())
        assert len(lines) == 1 and lines[0].startswith("hpstudy: error: "), err.getvalue()
        assert which in lines[0], lines[0]
