"""Every study shipped in studies/ validates: parsed, checked against Keras, each model built once."""
from pathlib import Path

import pytest

from hpstudy import spec, tuning

STUDIES = sorted((Path(__file__).parent.parent / "studies").glob("*.yaml"))


def test_the_core_studies_ship():
    assert {"quickstart.yaml", "dropout_kernel.yaml"} <= {p.name for p in STUDIES}


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_shipped_study_validates(path):
    study = tuning.check(spec.load(path))
    assert study.name == path.stem
    assert path.read_text().startswith("#"), "each study starts with a comment saying what it answers"
    input_shape, num_classes = tuning.data_shape(study)
    assert tuning.build_each(study, input_shape, num_classes, pretrained=False) >= 1
