"""Shared fixtures: tiny real studies on the embedded digits dataset."""
import os
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gc  # noqa: E402

import keras  # noqa: E402,F401 - imported once here (KERAS_BACKEND as set), then frozen below
import keras_tuner  # noqa: E402,F401
import pytest  # noqa: E402

# The frameworks' half a million objects are never garbage: frozen, every gc.collect() that Keras and keras-tuner
# make around each model build (about 0.3 s each with them) skips them. Test speed only; nothing is asserted on it.
gc.freeze()

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


def write_study(folder, text=None, name="tiny", **extra):
    """Write a study file into `folder` and return its path; `text` replaces the tiny default."""
    path = folder / f"{name}.yaml"
    body = textwrap.dedent(text) if text is not None else TINY.format(name=name)
    for section, lines in extra.items():
        body += f"{section}:\n" + textwrap.indent(textwrap.dedent(lines), "  ")
    path.write_text(body)
    return path


@pytest.fixture(scope="session")
def finished_study(tmp_path_factory):
    """A real two-trial grid search, run once for the whole session: (results folder, study path)."""
    import hpstudy
    folder = tmp_path_factory.mktemp("finished")
    study_path = write_study(folder)
    study = hpstudy.run(study_path, results_dir=folder / "results")
    return study.path, study_path
