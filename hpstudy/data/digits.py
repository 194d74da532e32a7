"""scikit-learn's digits: the embedded dataset every machine has, no download."""

from __future__ import annotations

import numpy as np

from hpstudy.data.core import Split, register


def _locate(data_dir: str | None) -> tuple[str, bool]:
    return "bundled with scikit-learn", True


@register("digits", locate=_locate)
def _digits(*, data_dir=None, download=True, seed=0, image_size=None):
    """scikit-learn's 1,797 8×8 handwritten digits, upsampled to 32×32 RGB."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    digits = load_digits()
    x = np.rint(digits.images * (255 / 16)).astype(np.uint8)   # 0..16 -> 0..255
    x = x.repeat(4, axis=1).repeat(4, axis=2)                   # nearest upsampling to 32×32
    x = np.repeat(x[..., None], 3, axis=-1)                     # grey -> 3 equal channels
    names = tuple(str(i) for i in range(10))
    return Split(x, digits.target.astype(np.int64)), None, None, names
