"""Shared fixtures (a tiny real study on the embedded digits dataset), the hypothesis profiles, and the order in
which the two processes of the suite take the test files. The helpers tests share are in tests/helpers.py."""
import os
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gc  # noqa: E402

import keras  # noqa: E402,F401 - imported once here (KERAS_BACKEND as set), then frozen below
import keras_tuner  # noqa: E402,F401
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from tests.helpers import DEV_EXAMPLES, digest_changes, folder_digest, write_study  # noqa: E402

# The frameworks' half a million objects are never garbage: frozen, every gc.collect() that Keras and keras-tuner
# make around each model build (about 0.3 s each with them) skips them. Test speed only; nothing is asserted on it.
gc.freeze()

settings.register_profile("dev", max_examples=DEV_EXAMPLES)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


def pytest_collection_modifyitems(items):
    """The files with the most slow tests first (each file's own order kept): a process of `-n 2` that takes a long
    file last would leave the other idle. pytest-xdist follows this order with --no-loadscope-reorder (setup.cfg)."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    first_seen = {}
    for index, item in enumerate(items):
        first_seen.setdefault(item.path, index)
    items.sort(key=lambda item: (-slow[item.path], first_seen[item.path]))


@pytest.fixture(scope="session")
def finished_study(tmp_path_factory):
    """A real two-trial grid search, run once for the whole session (in each process that needs it): (results
    folder, study path). Read it only: a test that changes a results folder works on a copy (shutil.copytree)."""
    import hpstudy
    folder = tmp_path_factory.mktemp("finished")
    study_path = write_study(folder)
    study = hpstudy.run(study_path, results_dir=folder / "results")
    before = folder_digest(study.path)
    yield study.path, study_path
    changed = digest_changes(before, folder_digest(study.path))
    assert not changed, f"a test changed the shared finished study instead of a copy of it: {changed}"
