"""Studies run without TensorFlow under the JAX and PyTorch backends: data, augmentation, training, saving,
loading; and no hpstudy module outside the TensorFlow-only ones uses TensorFlow."""
import ast
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, TINY, write_study

# Run in a fresh process (the backend is fixed at Keras's import) with every TensorFlow import refused. The
# finder answers probes (importlib.util.find_spec, as torch._dynamo makes for its skip list) with a spec
# that has no origin, and fails the import itself.
SCRIPT = """
import importlib.abc, importlib.machinery, sys
class NoTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            return importlib.machinery.ModuleSpec(name, self)
    def create_module(self, spec):
        raise ImportError("TensorFlow is refused in this test")
    def exec_module(self, module):
        raise ImportError("TensorFlow is refused in this test")
sys.meta_path.insert(0, NoTensorFlow())
import hpstudy
study = hpstudy.run(sys.argv[1], results_dir=sys.argv[2])
print("statuses", *study.trials.status, "params", hpstudy.load_best(study.path).count_params())
"""

# hpstudy modules allowed to use TensorFlow, each only inside a function run under the TensorFlow backend.
TENSORFLOW_ONLY = {
    "hpstudy/engine/training/parallel.py":
        "tf.distribute.MirroredStrategy for train.distribution: mirrored under TensorFlow",
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_study_runs_without_tensorflow(tmp_path, backend):
    pytest.importorskip(backend, reason=f"the {backend} backend needs {backend} (jax is in the test extra; torch "
                                        f"is not, its wheel is large: pip install torch)")
    # steps_per_execution: the torch trainer allows only 1; the study still runs unchanged.
    text = TINY.format(name=backend).replace("  batch_size: 32\n", "  batch_size: 32\n  steps_per_execution: 2\n")
    path = write_study(tmp_path, text, name=backend, preprocess="""
        standardize: true
        flip: true
        crop_padding: 2
        cutout: 4
    """)
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(tmp_path / "results")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("statuses")[-1].split()[:2] == ["COMPLETED", "COMPLETED"]


def tensorflow_uses(tree: ast.AST) -> list[tuple[int, str, bool]]:
    """(line, what, at module level) for each import of TensorFlow and each `tf.` attribute in a module."""
    top = {id(node) for node in tree.body}
    uses = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names = [str(node.args[0].value)]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "tf":
            uses.append((node.lineno, f"tf.{node.attr}", False))
        uses += [(node.lineno, f"import {name}", id(node) in top) for name in names
                 if name == "tensorflow" or name.startswith("tensorflow.")]
    return uses


def test_only_the_tensorflow_only_modules_use_tensorflow():
    found = []
    for path in sorted((REPO / "hpstudy").rglob("*.py")):
        name = path.relative_to(REPO).as_posix()
        for line, what, module_level in tensorflow_uses(ast.parse(path.read_text(encoding="utf-8"))):
            if name not in TENSORFLOW_ONLY:
                found.append(f"{name}:{line}: {what} (keras and keras.ops run on every backend)")
            elif module_level:
                found.append(f"{name}:{line}: {what} at module level (import it where the backend is checked)")
    assert not found, "\n".join(found)
    for name in TENSORFLOW_ONLY:
        assert (REPO / name).exists(), f"{name} is listed in TENSORFLOW_ONLY but does not exist"


def test_the_check_finds_each_kind_of_use():
    source = "import tensorflow as tf\ndef f():\n    from tensorflow import keras\n    return tf.constant(1)\n"
    assert sorted(tensorflow_uses(ast.parse(source))) == [
        (1, "import tensorflow", True), (3, "import tensorflow", False), (4, "tf.constant", False)]
    assert tensorflow_uses(ast.parse("import importlib\nimportlib.import_module('tensorflow.python')")) == [
        (2, "import tensorflow.python", False)]
    assert not tensorflow_uses(ast.parse("backend = 'tensorflow'\nimport tensorflow_datasets_like_name_x"))
