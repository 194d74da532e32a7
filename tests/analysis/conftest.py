"""tests/analysis/ runs without Keras, as hpstudy.analysis does: a test here that imports a framework fails."""
import sys

import pytest

FRAMEWORKS = ("keras", "keras_tuner", "tensorflow")


@pytest.fixture(autouse=True)
def no_framework_imported():
    """Fail a test that imported Keras, keras-tuner or TensorFlow. Where another folder's tests loaded them first
    (the whole suite in one process) there is nothing to see; in a run of this folder alone, everything."""
    before = {name for name in FRAMEWORKS if name in sys.modules}
    yield
    imported = sorted({name for name in FRAMEWORKS if name in sys.modules} - before)
    assert not imported, f"this test imported {imported}; tests/analysis/ runs without Keras"
