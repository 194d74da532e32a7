"""Shared fixtures (tiny real studies on the embedded digits dataset), the hypothesis profiles, and the order in
which the two processes of the suite take the test files."""
import hashlib
import os
import textwrap
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gc  # noqa: E402

import keras  # noqa: E402,F401 - imported once here (KERAS_BACKEND as set), then frozen below
import keras_tuner  # noqa: E402,F401
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# The frameworks' half a million objects are never garbage: frozen, every gc.collect() that Keras and keras-tuner
# make around each model build (about 0.3 s each with them) skips them. Test speed only; nothing is asserted on it.
gc.freeze()

# Each property test sets its own number of examples, and the default profile (CI's) draws exactly those. The dev
# profile (HYPOTHESIS_PROFILE=dev) draws at most DEV_EXAMPLES of each, for a quick loop while developing.
DEV_EXAMPLES = 10
settings.register_profile("dev", max_examples=DEV_EXAMPLES)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE")
if PROFILE:
    settings.load_profile(PROFILE)


def examples(count: int) -> int:
    """A property test's number of examples: `count`, or fewer under the dev profile."""
    return min(count, DEV_EXAMPLES) if PROFILE == "dev" else count


def pytest_collection_modifyitems(items):
    """The files with the most slow tests first (each file's own order kept): a process of `-n 2` that takes a long
    file last would leave the other idle. pytest-xdist follows this order with --no-loadscope-reorder (setup.cfg)."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    first_seen = {}
    for index, item in enumerate(items):
        first_seen.setdefault(item.path, index)
    items.sort(key=lambda item: (-slow[item.path], first_seen[item.path]))


# A study small enough to train in a second or two per trial on 2 CPU cores.
TINY = """
name: {name}
data:
  dataset: digits
  subset: {{train: 12, validation: 4, test: 6}}
model:
  builder: plain_cnn
  conv_layers: 1
  filters: 4
  dense_units: 8
  dropout: {{tune: choice, values: [0.0, 0.5]}}
train:
  epochs: 2
  batch_size: 32
search:
  tuner: grid
  seed: 1
"""

# Three searched hyperparameters of two values each (dropout, a flip, the batch size): a grid of eight.
SIX = """
name: six
data:
  dataset: digits
  subset: {train: 12, validation: 4, test: 6}
model:
  builder: plain_cnn
  conv_layers: 1
  filters: 4
  dense_units: 8
  dropout: {tune: choice, values: [0.0, 0.5]}
preprocess:
  flip: {tune: choice, values: [false, true]}
train:
  epochs: 2
  batch_size: {tune: choice, values: [4, 8]}
search:
  tuner: grid
  seed: 1
"""


def write_study(folder, text=None, name="tiny", **extra):
    """Write a study file into `folder` and return its path; `text` replaces the tiny default."""
    path = folder / f"{name}.yaml"
    body = textwrap.dedent(text) if text is not None else TINY.format(name=name)
    for section, lines in extra.items():
        body += f"{section}:\n" + textwrap.indent(textwrap.dedent(lines), "  ")
    path.write_text(body)
    return path


def _contents(root):
    """Every file and link under `root` with a digest of what it holds."""
    return {str(path.relative_to(root)): os.readlink(path) if path.is_symlink() else
            hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*")) if not path.is_dir()}


@pytest.fixture(scope="session")
def finished_study(tmp_path_factory):
    """A real two-trial grid search, run once for the whole session (in each process that needs it): (results
    folder, study path). Read it only: a test that changes a results folder works on a copy (shutil.copytree)."""
    import hpstudy
    folder = tmp_path_factory.mktemp("finished")
    study_path = write_study(folder)
    study = hpstudy.run(study_path, results_dir=folder / "results")
    before = _contents(study.path)
    yield study.path, study_path
    after = _contents(study.path)
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not changed, f"a test changed the shared finished study instead of a copy of it: {changed}"
