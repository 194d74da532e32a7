"""resnet9, the ResNet-9-style fast net: its layout, its size, one training step, a study that uses it."""
import keras
import numpy as np
import pytest

from hpstudy import models
from tests.helpers import trainable


def test_resnet9_matches_the_dawnbench_net():
    model = models.build("resnet9", (32, 32, 3), 10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [64, 128, 128, 128, 256, 512, 512, 512]
    assert all(c.kernel_size == (3, 3) and not c.use_bias for c in convs)
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 2
    # 3*9*64 + 64*9*128 + 2*128*9*128 + 128*9*256 + 256*9*512 + 2*512*9*512 (convs, no bias) + batch norm's
    # gammas and betas 2*(64 + 3*128 + 256 + 3*512) + 512*10+10 (the classifier): Myrtle's 6.57M.
    assert trainable(model) == 6_573_130
    assert model.layers[-1].name == "predictions" and model.layers[-1].dtype_policy.name == "float32"


@pytest.mark.parametrize("options", [{}, {"width": 0.25, "pooling": "avg", "dropout": 0.2}])
def test_resnet9_forward_and_train_step(options):
    model = models.build("resnet9", (32, 32, 3), 10, **options)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32") / 255
    assert model.predict(x, verbose=0).shape == (4, 10)
    assert np.isfinite(model.train_on_batch(x, np.arange(4)))


def test_resnet9_is_listed_with_its_options(capsys):
    from hpstudy import cli
    assert cli.main(["list", "models", "resnet9"]) == 0
    out = capsys.readouterr().out
    assert all(option in out for option in ("width", "pooling", "dropout", "kernel_initializer"))
