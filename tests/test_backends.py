"""Studies run without TensorFlow under the JAX backend: data, augmentation, training, saving, loading."""
import os
import subprocess
import sys

import pytest

from tests.conftest import TINY, write_study

# Run in a fresh process (the backend is fixed at Keras's import) with every TensorFlow import refused.
SCRIPT = """
import sys
class NoTensorFlow:
    def find_spec(self, name, path, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("TensorFlow is refused in this test")
sys.meta_path.insert(0, NoTensorFlow())
import hpstudy
study = hpstudy.run(sys.argv[1], results_dir=sys.argv[2])
print("statuses", *study.trials.status, "params", hpstudy.load_best(study.path).count_params())
"""


def test_a_study_runs_under_jax_without_tensorflow(tmp_path):
    pytest.importorskip("jax", reason="the JAX backend needs jax (in the test extra: pip install -e '.[test]')")
    path = write_study(tmp_path, TINY.format(name="jx"), name="jx", preprocess="""
        standardize: true
        flip: true
        crop_padding: 2
        cutout: 4
    """)
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(tmp_path / "results")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("statuses")[-1].split()[:2] == ["COMPLETED", "COMPLETED"]
