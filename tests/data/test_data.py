"""Tests for hpstudy.data, using fixtures written in the real on-disk formats."""

import hashlib
import pickle
import re
import tarfile

import numpy as np
import pytest

from hpstudy import data
from hpstudy.errors import DataError
from tests.helpers import (
    CIFAR_NAMES,
    COARSE,
    FINE,
    PER_BATCH,
    TEST_SIZE,
    EvilPickle,
    cifar100_batch,
    cifar_batch,
    pickle_file,
    write_archive,
    write_cifar,
    write_cifar100,
    write_cifar100_archive,
)


def as_rows(x):
    return {bytes(row) for row in x.reshape(len(x), -1)}


@pytest.fixture
def cifar(tmp_path):
    return write_cifar(tmp_path / "data")


@pytest.fixture
def env_dir(tmp_path, monkeypatch):
    """An empty HPSTUDY_DATA_DIR; downloads are pointed at an unreachable URL."""
    path = tmp_path / "cache"
    monkeypatch.setenv("HPSTUDY_DATA_DIR", str(path))
    monkeypatch.setattr(data.cifar10, "CIFAR10_URL", (tmp_path / "nowhere.tar.gz").as_uri())
    return path


# ---------------------------------------------------------------- cifar10 reading

@pytest.mark.parametrize("which", ["folder", "parent"])
def test_cifar10_from_data_dir(cifar, which):
    ds = data.load("cifar10", data_dir=str(cifar if which == "folder" else cifar.parent))
    assert ds.name == "cifar10"
    assert ds.class_names == tuple(CIFAR_NAMES)
    assert ds.num_classes == 10 and ds.input_shape == (32, 32, 3)
    for split, n in [(ds.train, 90), (ds.validation, 10), (ds.test, TEST_SIZE)]:
        assert split.x.shape == (n, 32, 32, 3) and split.x.dtype == np.uint8
        assert split.y.shape == (n,) and split.y.dtype == np.int64


def test_cifar10_channel_order_and_pixel_positions(cifar):
    train, val, test, _ = data.DATASETS["cifar10"].loader(data_dir=cifar, download=False, seed=0)
    assert val is None
    assert train.x.shape == (5 * PER_BATCH, 32, 32, 3) and test.x.shape == (TEST_SIZE, 32, 32, 3)
    red = train.x[0]
    assert (red[:, :, 0] == 255).all() and (red[:, :, 1:] == 0).all()
    r, c = np.mgrid[0:32, 0:32]
    assert (train.x[1, :, :, 0] == 7 * r + c).all()
    assert (train.x[1, :, :, 1] == r).all() and (train.x[1, :, :, 2] == c).all()
    assert train.y.tolist() == [i % 10 for i in range(PER_BATCH)] * 5


def test_fixture_is_in_python2_format(cifar):
    raw = (cifar / "data_batch_1").read_bytes()
    assert b"cnumpy.core.multiarray\n_reconstruct" in raw and b"_codecs" not in raw


@pytest.mark.parametrize("protocol", [2, 4])
def test_cifar10_pickled_by_python3(cifar, protocol):
    # Protocol 2 from Python 3 spells bytes as _codecs.encode(str, "latin1").
    for name in ["data_batch_1", "test_batch", "batches.meta"]:
        path = cifar / name
        pickle_file(pickle.loads(path.read_bytes(), encoding="bytes"), path, style=protocol)
    ds = data.load("cifar10", data_dir=cifar)
    assert (ds.train.x[:, :, :, 0] == 255).all(axis=(1, 2)).any()
    assert ds.class_names == tuple(CIFAR_NAMES) and len(ds.test.y) == TEST_SIZE


def test_cifar10_via_env_var(cifar, monkeypatch):
    monkeypatch.setenv("HPSTUDY_DATA_DIR", str(cifar.parent))
    assert data.cache_dir() == cifar.parent
    assert data.load("cifar10", download=False).train.x.shape[0] == 90


def test_validation_split_stratified_disjoint_seeded(cifar):
    full, _, test, _ = data.DATASETS["cifar10"].loader(data_dir=cifar, download=False, seed=0)
    ds = data.load("cifar10", data_dir=cifar, validation_split=0.2, seed=1)
    assert np.bincount(ds.validation.y, minlength=10).tolist() == [2] * 10
    assert np.bincount(ds.train.y, minlength=10).tolist() == [8] * 10
    assert not as_rows(ds.train.x) & as_rows(ds.validation.x)
    assert as_rows(ds.train.x) | as_rows(ds.validation.x) == as_rows(full.x)
    again = data.load("cifar10", data_dir=cifar, validation_split=0.2, seed=1)
    other = data.load("cifar10", data_dir=cifar, validation_split=0.2, seed=2)
    assert np.array_equal(again.validation.x, ds.validation.x)
    assert not np.array_equal(other.validation.x, ds.validation.x)
    for d in (ds, other, data.load("cifar10", data_dir=cifar, validation_split=0.5)):
        assert np.array_equal(d.test.x, test.x) and np.array_equal(d.test.y, test.y)


def test_subset_caps_each_split_deterministically(cifar):
    full = data.load("cifar10", data_dir=cifar, validation_split=0.2, seed=3)
    caps = {"train": 3, "validation": 1, "test": 2}
    ds = data.load("cifar10", data_dir=cifar, validation_split=0.2, seed=3, subset=caps)
    for split, whole, cap in [(ds.train, full.train, 3), (ds.validation, full.validation, 1),
                              (ds.test, full.test, 2)]:
        assert np.bincount(split.y, minlength=10).tolist() == [cap] * 10
        # Kept images come from the split, in their original order.
        rows = [bytes(r) for r in whole.x.reshape(len(whole.x), -1)]
        pos = [rows.index(bytes(r)) for r in split.x.reshape(len(split.x), -1)]
        assert pos == sorted(pos)
        assert np.array_equal(whole.y[pos], split.y)
    again = data.load("cifar10", data_dir=cifar, validation_split=0.2, seed=3, subset=caps)
    assert all(np.array_equal(a.x, b.x) for a, b in
               [(ds.train, again.train), (ds.validation, again.validation), (ds.test, again.test)])
    # None and caps above the class size leave a split as it is.
    loose = data.load("cifar10", data_dir=cifar, validation_split=0.2, seed=3,
                      subset={"train": None, "test": 50})
    assert np.array_equal(loose.train.x, full.train.x) and np.array_equal(loose.test.x, full.test.x)


@pytest.mark.parametrize("subset, message", [
    ({"tarin": 3}, "subset keys must be train, validation or test, got ['tarin']"),
    ({"train": 0}, "subset.train must be a positive integer or None, got 0"),
    ({"test": 2.5}, "subset.test must be a positive integer or None, got 2.5"),
    ({"train": True}, "subset.train must be a positive integer or None, got True"),
])
def test_bad_subset_rejected(subset, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load("digits", subset=subset)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_bad_validation_split_rejected(fraction):
    with pytest.raises(ValueError, match=re.escape(f"validation_split must be in (0, 1), got {fraction}")):
        data.load("digits", validation_split=fraction)


# ---------------------------------------------------------------- hostile / broken files

def test_malicious_pickle_is_refused(cifar, tmp_path):
    marker = tmp_path / "pwned"
    pickle_file(EvilPickle(f"touch {marker}"), cifar / "data_batch_1")
    assert b"system" in (cifar / "data_batch_1").read_bytes()
    with pytest.raises(DataError) as err:
        data.load("cifar10", data_dir=cifar)
    msg = str(err.value)
    assert str(cifar / "data_batch_1") in msg and "refused to load" in msg and "system" in msg
    assert not marker.exists()


def test_codecs_encode_only_for_latin1(cifar):
    # Hand-written protocol-0 pickle calling _codecs.encode("abc", "rot13").
    (cifar / "test_batch").write_bytes(b"c_codecs\nencode\n(Vabc\nVrot13\ntR.")
    with pytest.raises(DataError) as err:
        data.load("cifar10", data_dir=cifar)
    assert str(cifar / "test_batch") in str(err.value)


def test_truncated_batch(cifar):
    path = cifar / "data_batch_3"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError) as err:
        data.load("cifar10", data_dir=cifar)
    assert str(path) in str(err.value)


def test_missing_test_batch(cifar):
    (cifar / "test_batch").unlink()
    with pytest.raises(DataError) as err:
        data.load("cifar10", data_dir=cifar.parent)
    assert str(cifar / "test_batch") in str(err.value)


def _without(key):
    d = cifar_batch(PER_BATCH, 2)
    del d[key]
    return d


def _with(key, value):
    d = cifar_batch(PER_BATCH, 2)
    d[key] = value
    return d


@pytest.mark.parametrize("bad", [
    _without(b"data"),
    _without(b"labels"),
    [1, 2, 3],
    _with(b"data", np.zeros((PER_BATCH, 3072), np.float32)),
    _with(b"data", np.zeros((PER_BATCH, 1024), np.uint8)),
    _with(b"labels", [0] * (PER_BATCH - 1)),
    _with(b"labels", [10] * PER_BATCH),
    _with(b"labels", [-1] * PER_BATCH),
], ids=["no-data", "no-labels", "list", "float-data", "narrow-data", "short-labels",
        "label-too-big", "label-negative"])
def test_wrong_structure(cifar, bad):
    pickle_file(bad, cifar / "data_batch_2")
    with pytest.raises(DataError) as err:
        data.load("cifar10", data_dir=cifar)
    assert str(cifar / "data_batch_2") in str(err.value)


def test_bad_meta(cifar):
    pickle_file({b"num_vis": 3072}, cifar / "batches.meta")
    with pytest.raises(DataError) as err:
        data.load("cifar10", data_dir=cifar)
    assert str(cifar / "batches.meta") in str(err.value)


# ---------------------------------------------------------------- finding and fetching

def test_data_dir_without_cifar_folder_does_not_download(tmp_path, env_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    for given in (empty, tmp_path / "missing"):
        with pytest.raises(DataError) as err:
            data.load("cifar10", data_dir=str(given))
        assert str(given) in str(err.value)
    assert not env_dir.exists()


def test_not_found_without_download(env_dir):
    with pytest.raises(DataError) as err:
        data.load("cifar10", download=False)
    msg = str(err.value)
    assert "HPSTUDY_DATA_DIR" in msg and str(env_dir) in msg and "cifar-10-batches-py" in msg


def test_fetch_file_url(tmp_path):
    archive, md5 = write_archive(tmp_path)
    dest = tmp_path / "deep" / "down" / "cifar-10-python.tar.gz"
    assert data.fetch(archive.as_uri(), dest, md5) == dest
    assert dest.read_bytes() == archive.read_bytes()
    assert not dest.with_name(dest.name + ".part").exists()
    # A good copy is reused: the (now unreachable) URL is not touched again.
    archive.unlink()
    assert data.fetch(archive.as_uri(), dest, md5) == dest


def test_fetch_wrong_md5(tmp_path):
    archive, md5 = write_archive(tmp_path)
    dest = tmp_path / "dl" / "x.tar.gz"
    with pytest.raises(DataError) as err:
        data.fetch(archive.as_uri(), dest, "0" * 32)
    msg = str(err.value)
    assert archive.as_uri() in msg and "0" * 32 in msg and md5 in msg
    assert not dest.exists() and not (tmp_path / "dl" / "x.tar.gz.part").exists()


def test_fetch_unreachable(tmp_path):
    dest = tmp_path / "x.tar.gz"
    with pytest.raises(DataError) as err:
        data.fetch("file:///nonexistent/x.tar.gz", dest, "0" * 32)
    assert "file:///nonexistent/x.tar.gz" in str(err.value) and str(dest) in str(err.value)
    assert not dest.exists() and not (tmp_path / "x.tar.gz.part").exists()


def test_cifar10_download_extract_and_reuse(tmp_path, env_dir, monkeypatch):
    archive, md5 = write_archive(tmp_path)
    monkeypatch.setattr(data.cifar10, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(data.cifar10, "CIFAR10_MD5", md5)
    first = data.load("cifar10")
    assert first.train.x.shape == (90, 32, 32, 3) and first.class_names == tuple(CIFAR_NAMES)
    assert (env_dir / "cifar-10-batches-py" / "test_batch").is_file()
    assert sorted(p.name for p in env_dir.iterdir()) == ["cifar-10-batches-py",
                                                         "cifar-10-python.tar.gz"]
    archive.unlink()  # a second load must not need the download
    second = data.load("cifar10")
    assert np.array_equal(first.train.x, second.train.x)


def test_cifar10_archive_escaping_its_folder_is_refused(tmp_path, env_dir, monkeypatch):
    archive, _ = write_archive(tmp_path)
    evil = tmp_path / "escape.txt"
    evil.write_text("outside")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(evil, arcname="../escape-hatch.txt")
    monkeypatch.setattr(data.cifar10, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(data.cifar10, "CIFAR10_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    with pytest.raises(DataError) as err:
        data.load("cifar10")
    assert "cifar-10-python.tar.gz" in str(err.value)
    assert not (tmp_path / "escape-hatch.txt").exists()
    assert sorted(p.name for p in env_dir.iterdir()) == ["cifar-10-python.tar.gz"]


# ---------------------------------------------------------------- cifar100

@pytest.fixture
def cifar100(tmp_path):
    return write_cifar100(tmp_path / "data100")


@pytest.mark.parametrize("label_mode, names", [(None, FINE), ("fine", FINE), ("coarse", COARSE)])
def test_cifar100_fine_and_coarse_labels(cifar100, label_mode, names):
    ds = data.load("cifar100", data_dir=str(cifar100.parent), label_mode=label_mode)
    assert ds.class_names == tuple(names) and ds.num_classes == len(names)
    assert data.source("cifar100").class_count(label_mode) == len(names)
    assert ds.input_shape == (32, 32, 3) and len(ds.test.y) == 100 and ds.split_off == ("validation",)
    assert (len(ds.train.y), len(ds.validation.y)) == (900, 100)
    fine = np.arange(100)
    np.testing.assert_array_equal(ds.test.y, fine // 5 if label_mode == "coarse" else fine)
    rows = cifar100_batch(100, 2)[b"data"]
    np.testing.assert_array_equal(ds.test.x[7], rows[7].reshape(3, 32, 32).transpose(1, 2, 0))


def test_label_mode_is_refused_where_it_does_not_apply(cifar, cifar100):
    with pytest.raises(DataError, match="data.label_mode: the cifar10 dataset has one set of labels"):
        data.load("cifar10", data_dir=str(cifar), label_mode="coarse")
    with pytest.raises(DataError, match="data.label_mode: 'medium' is not a labelling of cifar100; use fine or coarse"):
        data.load("cifar100", data_dir=str(cifar100), label_mode="medium")


def test_label_mode_in_a_study_file(tmp_path):
    from hpstudy.errors import SpecError
    from hpstudy.study import spec
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ndata: {dataset: cifar100, label_mode: coarse}\n")
    assert spec.load(path).data.label_mode == "coarse"
    path.write_text("name: s\ndata: {dataset: cifar100, label_mode: medium}\n")
    with pytest.raises(SpecError, match="data.label_mode"):
        spec.load(path)


@pytest.mark.parametrize("damage, fragment", [
    (lambda f: pickle_file(EvilPickle("true"), f / "train"), "which a CIFAR-100 batch never contains"),
    (lambda f: pickle_file({b"fine_label_names": [b"a"] * 99, b"coarse_label_names": [b"b"] * 20}, f / "meta"),
     "b'fine_label_names' holds 99 names, not 100"),
    (lambda f: pickle_file({b"data": np.zeros((100, 3072), np.uint8), b"coarse_labels": [0] * 100}, f / "test"),
     "expected a dict with b'data' and b'fine_labels'"),
    (lambda f: (f / "meta").unlink(), "the cifar-100-python folder must hold train, test, meta"),
], ids=["malicious", "99-names", "no-fine-labels", "no-meta"])
def test_bad_cifar100_files(cifar100, damage, fragment):
    damage(cifar100)
    with pytest.raises(DataError) as err:
        data.load("cifar100", data_dir=str(cifar100))
    message = str(err.value)
    assert fragment in message and str(cifar100) in message and "cifar-100-python.tar.gz" in message, message


def test_cifar100_download_checks_its_sha256(tmp_path, env_dir, monkeypatch):
    archive, sha256 = write_cifar100_archive(tmp_path)
    monkeypatch.setattr(data.cifar100, "CIFAR100_URL", archive.as_uri())
    monkeypatch.setattr(data.cifar100, "CIFAR100_SHA256", "f" * 64)
    with pytest.raises(DataError, match=f"expected SHA-256 f{{64}}, got {sha256}"):
        data.load("cifar100")
    assert not (env_dir / "cifar-100-python.tar.gz").exists()
    monkeypatch.setattr(data.cifar100, "CIFAR100_SHA256", sha256)
    assert data.load("cifar100", label_mode="coarse").num_classes == 20
    assert sorted(p.name for p in env_dir.iterdir()) == ["cifar-100-python", "cifar-100-python.tar.gz"]
    assert data.source("cifar100").locate(None) == (str(env_dir / "cifar-100-python"), True)


def test_cifar100_checksum_is_the_one_keras_publishes():
    """keras.datasets.cifar100 checks the same archive against this SHA-256 (a typo would fail every download)."""
    import inspect

    from keras.src.datasets import cifar100 as keras_cifar100
    assert data.cifar100.CIFAR100_SHA256 in inspect.getsource(keras_cifar100)
    assert data.cifar100.CIFAR100_URL in inspect.getsource(keras_cifar100)


# ---------------------------------------------------------------- digits

def test_digits():
    ds = data.load("digits")
    assert ds.class_names == tuple(str(i) for i in range(10)) and ds.num_classes == 10
    assert ds.input_shape == (32, 32, 3)
    splits = (ds.train, ds.validation, ds.test)
    assert sum(len(s.y) for s in splits) == 1797 and len(ds.test.y) == 360
    x = np.concatenate([s.x for s in splits])
    y = np.concatenate([s.y for s in splits])
    assert x.dtype == np.uint8 and x.min() == 0 and x.max() == 255
    assert (x == x[..., :1]).all()                                        # grey in 3 channels
    assert (x == x[:, ::4, ::4].repeat(4, axis=1).repeat(4, axis=2)).all()  # 4×4 blocks
    assert set(np.unique(x)) <= {round(v * 255 / 16) for v in range(17)}
    total = np.bincount(y, minlength=10)
    for split, share in [(ds.test, 0.2), (ds.validation, 0.8 * 0.1)]:
        counts = np.bincount(split.y, minlength=10)
        assert (np.abs(counts - share * total) <= 1).all()


def test_digits_seeded():
    a, b, c = data.load("digits", seed=5), data.load("digits", seed=5), data.load("digits", seed=6)
    assert np.array_equal(a.test.x, b.test.x) and np.array_equal(a.validation.y, b.validation.y)
    assert not np.array_equal(a.test.x, c.test.x)
    assert not np.array_equal(a.validation.x, c.validation.x)


def test_digits_subset():
    ds = data.load("digits", subset={"train": 5, "validation": 2, "test": 3}, seed=1)
    assert np.bincount(ds.train.y).tolist() == [5] * 10
    assert np.bincount(ds.validation.y).tolist() == [2] * 10
    assert np.bincount(ds.test.y).tolist() == [3] * 10


# ---------------------------------------------------------------- registry

@pytest.mark.parametrize("name", ["cifar", "CIFAR10", "svhn"])
def test_unknown_dataset(name):
    with pytest.raises(DataError) as err:
        data.load(name)
    msg = str(err.value)
    assert "cifar10" in msg and "digits" in msg and repr(name) in msg
    if name != "svhn":
        assert "did you mean 'cifar10'" in msg


def test_register_twice_is_an_error(monkeypatch):
    monkeypatch.setattr(data.core, "DATASETS", dict(data.DATASETS))
    with pytest.raises(ValueError, match="dataset 'digits' is already registered"):
        data.register("digits")(lambda **kw: None)


def test_registered_loader_with_own_validation(monkeypatch):
    monkeypatch.setattr(data.core, "DATASETS", dict(data.DATASETS))

    def split(n, label):
        return data.Split(np.full((n, 4, 4, 3), label, np.uint8), np.full(n, label, np.int64))

    def two_classes(n):     # a classifier's training images are of at least two classes
        x, y = split(n, 0), split(n, 1)
        return data.Split(np.concatenate([x.x, y.x]), np.concatenate([x.y, y.y]))

    @data.register("tiny", input_shape=(4, 4, 3), num_classes=3)
    def tiny(*, data_dir, download, seed, image_size):
        return two_classes(3), split(2, 1), split(3, 2), ("a", "b", "c")

    ds = data.load("tiny", validation_split=0.5)
    assert (len(ds.train.y), len(ds.validation.y), len(ds.test.y)) == (6, 2, 3)
    assert ds.input_shape == (4, 4, 3) and ds.num_classes == 3
    source = data.core.DATASETS["tiny"]
    assert (source.input_shape, source.num_classes) == ((4, 4, 3), 3)
    assert source.locate(None) == ("wherever data.data_dir points", False)


def test_split_rejects_wrong_dtypes():
    with pytest.raises(ValueError, match=re.escape("Split.x must be uint8 (N, H, W, 3) or (N, H, W, 1), "
                                                   "got float32 (2, 4, 4, 3)")):
        data.Split(np.zeros((2, 4, 4, 3), np.float32), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match=re.escape("Split.y must be int64 (2,), got int64 (3,)")):
        data.Split(np.zeros((2, 4, 4, 3), np.uint8), np.zeros(3, np.int64))
