"""Every study shipped in studies/ validates: parsed, checked against Keras, each model built once; the seed
studies follow the seeds' protocol, and studies/FIDELITY.md covers every seed."""
import re

import pytest

from hpstudy.engine.search.checks import build_each, check
from hpstudy.engine.search.hypermodel import data_shape
from hpstudy.study import spec
from tests.helpers import REPO

STUDY_DIR = REPO / "studies"
STUDIES = sorted(STUDY_DIR.glob("*.yaml"))


def test_the_core_studies_ship():
    assert {"quickstart.yaml", "dropout_kernel.yaml"} <= {p.name for p in STUDIES}


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_shipped_study_validates(path):
    study = check(spec.load(path))
    assert study.name == path.stem
    assert path.read_text().startswith("#"), "each study starts with a comment saying what it answers"
    input_shape, num_classes = data_shape(study)
    assert build_each(study, input_shape, num_classes, pretrained=False) >= 1


# The seeds trained a fixed number of epochs and reported the last one: their studies train those epochs with no
# early stopping, and keep (and test) the weights of the last epoch. Where a seed showed a confusion matrix for
# every model, every trial's weights are kept.
# (epochs, keep_checkpoints); seed 000 gives no epoch count, so cinic10_models' 20 is hpstudy's.
SEED_PROTOCOL = {"cinic10_models": (20, "all"), "architecture_ladder": (8, "all"), "vgg_blocks": (50, 3),
                 "allcnn_lenet": (200, 3)}


@pytest.mark.parametrize("name", sorted(SEED_PROTOCOL))
def test_a_seed_study_trains_the_seeds_fixed_epochs(name):
    study = spec.load(STUDY_DIR / f"{name}.yaml")
    epochs, keep = SEED_PROTOCOL[name]
    assert (study.train.epochs, study.callbacks.early_stopping, study.search.keep_checkpoints) == (epochs, None, keep)
    assert study.search.checkpoint_epoch == "last"


def test_architecture_ladder_rebuilds_seed_001s_batch_norms_and_parameter_count():
    from hpstudy import models
    from hpstudy.models import facts
    study = check(spec.load(STUDY_DIR / "architecture_ladder.yaml"))
    options = study.model.options_of("deep_cnn")
    # Seed 001 prints "BatchNorm2d(20, eps=1e-05, momentum=0.1, affine=False, ...)": PyTorch's 0.1 is Keras's 0.9.
    assert (options["bn_epsilon"], options["bn_momentum"], options["bn_affine"]) == (1e-5, 0.9, False)
    fixed = {k: v for k, v in options.items() if k not in ("variant", "head")}
    deep = models.build("deep_cnn", (32, 32, 3), 10, variant="deep", head="dense", **fixed)
    assert facts.trainable_params(deep) == 453_242      # the seed's printed layers' count (see test_model_families)


def test_the_fidelity_table_covers_every_seed_and_names_shipped_studies():
    fidelity = STUDY_DIR / "FIDELITY.md"
    text = fidelity.read_text()
    assert all(f"## Seed {seed} " in text for seed in ("000", "001", "002", "003", "004"))
    named = set(re.findall(r"`(\w+)\.yaml`", text))
    assert {"cinic10_models", "architecture_ladder", "vgg_blocks", "allcnn_lenet", "transfer_backbones"} <= named
    assert named <= {p.stem for p in STUDIES}
    assert "(studies/FIDELITY.md)" in (STUDY_DIR.parent / "README.md").read_text()
