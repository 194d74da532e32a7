"""The suite's fixtures (a tiny real study on the embedded digits dataset, run once per process), its hypothesis
profiles, the order in which the two processes of the suite take the test files, and the frameworks frozen once
a test has imported them. Nothing here imports Keras: a folder whose tests need none (tests/analysis/) runs
without it. The helpers tests share are in tests/helpers.py."""
import gc
import os
import sys
from collections import Counter

import pytest

from tests.helpers import DEV_EXAMPLES, digest_changes, folder_digest, write_study

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")      # before any test imports TensorFlow

FRAMEWORKS = ("keras", "keras_tuner")
_frozen: set = set()


def pytest_configure(config):
    """The hypothesis profiles: the default one (CI's) draws each property test's own number of examples; `dev`
    (HYPOTHESIS_PROFILE=dev) at most DEV_EXAMPLES of each, for a quick loop while developing."""
    from hypothesis import settings
    settings.register_profile("dev", max_examples=DEV_EXAMPLES)
    if os.environ.get("HYPOTHESIS_PROFILE"):
        settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


def _freeze_frameworks():
    """Once Keras or keras-tuner is imported, its half a million objects are never garbage: frozen (after a
    collection, so that no garbage is frozen with them), every gc.collect() that Keras and keras-tuner make around
    each model build (about 0.3 s each with them) skips them. Test speed only; nothing is asserted on it."""
    imported = {name for name in FRAMEWORKS if name in sys.modules} - _frozen
    if imported:
        gc.collect()
        gc.freeze()
        _frozen.update(imported)


def pytest_collection_modifyitems(items):
    """The files with the most slow tests first (each file's own order kept): a process of `-n 2` that takes a long
    file last would leave the other idle. pytest-xdist follows this order with --no-loadscope-reorder (setup.cfg)."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    first_seen = {}
    for index, item in enumerate(items):
        first_seen.setdefault(item.path, index)
    items.sort(key=lambda item: (-slow[item.path], first_seen[item.path]))


def pytest_collection_finish(session):
    """The frameworks that collecting the test files imported (most Keras tests import it at their top), frozen
    before the first test."""
    _freeze_frameworks()


def pytest_runtest_teardown(item, nextitem):
    """The frameworks a test imported itself (a study run through the API or the command line), frozen after it."""
    _freeze_frameworks()


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
