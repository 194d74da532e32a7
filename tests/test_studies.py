"""Every study shipped in studies/ validates: parsed, checked against Keras, each model built once."""
from pathlib import Path

import pytest

from hpstudy.study import spec
from hpstudy.engine.checks import build_each, check
from hpstudy.engine.hypermodel import data_shape

STUDIES = sorted((Path(__file__).parent.parent / "studies").glob("*.yaml"))


def test_the_core_studies_ship():
    assert {"quickstart.yaml", "dropout_kernel.yaml"} <= {p.name for p in STUDIES}


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_shipped_study_validates(path):
    study = check(spec.load(path))
    assert study.name == path.stem
    assert path.read_text().startswith("#"), "each study starts with a comment saying what it answers"
    input_shape, num_classes = data_shape(study)
    assert build_each(study, input_shape, num_classes, pretrained=False) >= 1
