"""Tests for the image-file datasets (folder, cinic10), the decoded cache and npz, on real files in tmp_path."""

import os
import re
import shutil
import sys
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image

from hpstudy import data
from hpstudy.data import cache, folders, images
from hpstudy.errors import DataError
from tests.helpers import CINIC_CLASSES, npz, pattern, write_png, write_tree


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    """Every test gets its own cache folder."""
    home = tmp_path / "hpstudy-cache"
    monkeypatch.setenv("HPSTUDY_DATA_DIR", str(home))
    return home


@pytest.fixture
def cinic(tmp_path):
    """A CINIC-10 layout (CINIC-10/train, valid, test) with a greyscale, an RGBA and a palette PNG."""
    root = tmp_path / "CINIC-10"
    modes = {("bird", 1): "L", ("cat", 0): "RGBA", ("dog", 1): "P"}
    expected = {split: write_tree(root / folder, CINIC_CLASSES, 2, start=1000 * n, modes=modes)
                for n, (split, folder) in enumerate([("train", "train"), ("val", "valid"), ("test", "test")])}
    return tmp_path, expected


@pytest.fixture
def flat(tmp_path):
    """Class folders straight in data_dir (no train/): 3 classes of 10, plus hidden files to ignore."""
    root = tmp_path / "flat"
    x, y = write_tree(root, ["b_cls", "a_cls", "c_cls"], 10)
    (root / ".DS_Store").write_text("ignored")
    (root / "a_cls" / ".hidden.png").write_text("ignored")
    (root / ".ipynb_checkpoints").mkdir()
    (root / "README.txt").write_text("loose files next to the class folders are ignored")
    return root, x, y


def assert_split(split, x, y):
    assert split.x.dtype == np.uint8 and split.y.dtype == np.int64
    np.testing.assert_array_equal(split.x, x)
    np.testing.assert_array_equal(split.y, y)


def raises(match, fn, *args, **kwargs):
    """The DataError raised by fn, checked against ``match`` (a list of substrings); one line."""
    with pytest.raises(DataError) as err:
        fn(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    for part in match:
        assert part in message, message
    return message


# ---------------------------------------------------------------- cinic10

def test_cinic10_pixels_labels_and_own_splits(cinic):
    where, expected = cinic
    ds = data.load("cinic10", data_dir=str(where))
    assert ds.class_names == tuple(CINIC_CLASSES) and ds.input_shape == (32, 32, 3)
    for split, got in (("train", ds.train), ("val", ds.validation), ("test", ds.test)):
        assert_split(got, *expected[split])
    grey = ds.train.x[2 * 2 + 1]  # bird, second image: three equal channels
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert data.source("cinic10").locate(str(where)) == (str(where / "CINIC-10"), True)


def test_cinic10_validation_folder_and_image_size(cinic):
    where, expected = cinic
    os.rename(where / "CINIC-10" / "valid", where / "CINIC-10" / "validation")
    ds = data.load("cinic10", data_dir=str(where / "CINIC-10"), image_size=16)
    assert ds.input_shape == (16, 16, 3) and len(ds.validation.y) == 20
    first = Image.fromarray(expected["val"][0][0]).resize((16, 16), Image.Resampling.BILINEAR, reducing_gap=None)
    np.testing.assert_array_equal(ds.validation.x[0], np.asarray(first))


def test_cinic10_from_the_cache_folder_and_not_found(cinic, data_home):
    where, expected = cinic
    with pytest.raises(DataError, match="hpstudy data download cinic10"):
        data.load("cinic10", download=False)
    assert data.source("cinic10").locate(None) == (str(data_home / "cinic10"), False)
    data_home.mkdir()
    os.rename(where / "CINIC-10", data_home / "cinic10")
    ds = data.load("cinic10", download=False)
    assert_split(ds.test, *expected["test"])
    raises([str(where), "data.data_dir"], data.load, "cinic10", data_dir=str(where))


def test_cinic10_images_must_be_32x32(tmp_path):
    for split in ("train", "valid", "test"):
        write_tree(tmp_path / split, ["a", "b"], 2, size=(40, 40))
    raises(["img000.png", "40×40", "32×32", "data.image_size"], data.load, "cinic10", data_dir=str(tmp_path))
    assert data.load("cinic10", data_dir=str(tmp_path), image_size=32).input_shape == (32, 32, 3)


# ---------------------------------------------------------------- folder

def test_folder_flat_tree_order_and_splits(flat):
    root, x, y = flat
    train, val, test, names = data.source("folder").loader(data_dir=str(root))
    assert names == ("a_cls", "b_cls", "c_cls") and val is None and test is None
    # Classes in sorted order: the builder wrote b_cls (labels 0) first.
    order = np.concatenate([np.arange(10, 20), np.arange(0, 10), np.arange(20, 30)])
    assert_split(train, x[order], np.repeat(np.arange(3), 10))
    ds = data.load("folder", data_dir=str(root), test_split=0.2, validation_split=0.25)
    assert (len(ds.train.y), len(ds.validation.y), len(ds.test.y)) == (18, 6, 6)
    assert ds.split_off == ("test", "validation")


@pytest.mark.parametrize("val_name", ["val", "valid", "validation"])
def test_folder_train_val_without_test(tmp_path, val_name):
    x, y = write_tree(tmp_path / "train", ["cat", "dog"], 10)
    vx, vy = write_tree(tmp_path / val_name, ["cat", "dog"], 3, start=500)
    ds = data.load("folder", data_dir=str(tmp_path), test_split=0.2)
    assert_split(ds.validation, vx, vy)
    assert (len(ds.train.y), len(ds.test.y)) == (16, 4) and ds.split_off == ("test",)


def test_folder_two_validation_folders(tmp_path):
    for split in ("train", "val", "valid"):
        write_tree(tmp_path / split, ["a", "b"], 2)
    raises([str(tmp_path), "val/", "valid/"], data.load, "folder", data_dir=str(tmp_path))


def test_folder_needs_data_dir(tmp_path):
    raises(["data.data_dir"], data.load, "folder")
    raises([str(tmp_path / "nope"), "data.data_dir"], data.load, "folder", data_dir=str(tmp_path / "nope"))


def test_folder_bad_trees(tmp_path):
    good = ["a", "b"]
    cases = {"corrupt": tmp_path / "corrupt" / "b" / "img001.png", "text": tmp_path / "text" / "a" / "notes.txt"}
    write_tree(tmp_path / "corrupt", good, 3)
    cases["corrupt"].write_bytes(cases["corrupt"].read_bytes()[:60])  # a truncated PNG
    write_tree(tmp_path / "text", good, 2)
    cases["text"].write_text("not an image")
    for name, path in cases.items():
        raises([str(path), "cannot decode"], data.load, "folder", data_dir=str(tmp_path / name))
    write_tree(tmp_path / "odd", good, 3)
    write_png(tmp_path / "odd" / "b" / "img001.png", pattern(0, 32, 33))
    raises([str(tmp_path / "odd" / "b" / "img001.png"), "33×32", "a/img000.png is 32×32", "data.image_size"],
           data.load, "folder", data_dir=str(tmp_path / "odd"))
    train, *_ = data.source("folder").loader(data_dir=str(tmp_path / "odd"), image_size=8)
    assert train.x.shape == (6, 8, 8, 3)
    odd = Image.fromarray(pattern(0, 32, 33)).resize((8, 8), Image.Resampling.BILINEAR, reducing_gap=None)
    np.testing.assert_array_equal(train.x[4], np.asarray(odd))


def test_folder_splits_must_have_the_size_of_train(tmp_path):
    """Each split is checked against train's first image, not only against its own first image."""
    write_tree(tmp_path / "train", ["a", "b"], 2, size=(32, 32))
    write_tree(tmp_path / "val", ["a", "b"], 2, size=(64, 64))
    write_tree(tmp_path / "test", ["a", "b"], 2, size=(16, 16))
    raises([str(tmp_path / "val" / "a" / "img000.png"), "64×64", str(tmp_path / "train" / "a" / "img000.png"),
            "32×32", "data.image_size"], data.load, "folder", data_dir=str(tmp_path))
    write_tree(tmp_path / "val", ["a", "b"], 2, size=(32, 32))
    raises([str(tmp_path / "test" / "a" / "img000.png"), "16×16", "32×32"], data.load, "folder",
           data_dir=str(tmp_path))
    ds = data.load("folder", data_dir=str(tmp_path), image_size=16)
    assert ds.train.x.shape[1:] == ds.validation.x.shape[1:] == ds.test.x.shape[1:] == (16, 16, 3)


def test_folder_data_dir_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    raises([str(tmp_path / "file"), "is a file, not a folder", "data.data_dir"], data.load, "folder",
           data_dir=str(tmp_path / "file"))
    raises([str(tmp_path / "file"), "is a file, not a folder"], data.load, "cinic10", data_dir=str(tmp_path / "file"))
    raises([str(tmp_path), "is a folder, not a file", ".npz"], data.load, "npz", data_dir=str(tmp_path))


def test_image_size_only_for_datasets_that_resize(flat):
    for name, data_dir in (("digits", None), ("cifar10", "/nonexistent")):
        message = raises(["data.image_size", f"the {name} dataset", "cinic10, folder"], data.load, name,
                         data_dir=data_dir, image_size=64)
        assert "/nonexistent" not in message   # refused before looking for the data
    assert data.load("folder", data_dir=str(flat[0]), image_size=8).input_shape == (8, 8, 3)


def test_folder_bad_layouts(tmp_path):
    (tmp_path / "none" / ".hidden").mkdir(parents=True)
    raises([str(tmp_path / "none"), "no class folders"], data.load, "folder", data_dir=str(tmp_path / "none"))
    write_tree(tmp_path / "empty", ["a", "b"], 2)
    (tmp_path / "empty" / "c").mkdir()
    raises([str(tmp_path / "empty" / "c"), "empty class folder"], data.load, "folder", data_dir=str(tmp_path / "empty"))
    write_tree(tmp_path / "nested", ["a", "b"], 2)
    (tmp_path / "nested" / "a" / "more").mkdir()
    raises([str(tmp_path / "nested" / "a" / "more"), "directly"], data.load, "folder",
           data_dir=str(tmp_path / "nested"))
    split = tmp_path / "splits"
    write_tree(split / "train", ["a", "b", "c"], 2)
    write_tree(split / "test", ["a", "c"], 2)
    raises([str(split / "test"), "'b'", str(split / "train")], data.load, "folder", data_dir=str(split))
    write_tree(split / "test" / "b", ["x"], 1)  # b exists now ...
    write_tree(split / "test", ["d"], 1)        # ... but d is not a training class
    raises([str(split / "test" / "d"), "'d'"], data.load, "folder", data_dir=str(split))


def test_registration_and_image_size_forms():
    assert (data.source("folder").input_shape, data.source("folder").num_classes) == (None, None)
    assert (data.source("npz").input_shape, data.source("npz").num_classes) == (None, None)
    cinic10 = data.source("cinic10")
    assert (cinic10.input_shape, cinic10.num_classes, cinic10.download) == ((32, 32, 3), 10, folders.fetch_cinic10)
    assert images.image_size_pair(None) is None and images.image_size_pair(8) == (8, 8)
    assert images.image_size_pair((4, 6)) == (4, 6)
    for bad in (0, -3, True, (4,), (4, 0), "8"):
        with pytest.raises(ValueError, match=re.escape(f"image_size must be a positive integer or (height, width), "
                                                       f"got {bad!r}")):
            images.image_size_pair(bad)


def test_parallel_decoding_matches_and_reports_errors(flat, monkeypatch):
    root, x, y = flat
    monkeypatch.setattr(images, "_PARALLEL_MIN", 1)
    monkeypatch.setattr(images, "_CHUNK", 4)
    files, _ = images.scan_splits({"train": root})
    paths = files["train"].paths()
    np.testing.assert_array_equal(images.decode_images(paths, workers=2), images.decode_images(paths, workers=1))
    (root / "c_cls" / "img005.png").write_bytes(b"\x89PNG broken")
    raises([str(root / "c_cls" / "img005.png")], images.decode_images, paths, workers=2)


def test_decoding_forks_only_on_linux(flat, monkeypatch):
    root, x, y = flat
    monkeypatch.setattr(images, "_PARALLEL_MIN", 1)
    monkeypatch.setattr(images, "_CHUNK", 4)
    paths = images.scan_splits({"train": root})[0]["train"].paths()
    pools, real_pool = [], images.ProcessPoolExecutor

    def pool(*args, **kwargs):
        pools.append(kwargs["mp_context"].get_start_method())
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(images, "ProcessPoolExecutor", pool)
    expected = images.decode_images(paths, workers=1)
    for platform, forks in (("linux", True), ("darwin", False), ("win32", False)):
        pools.clear()
        monkeypatch.setattr(sys, "platform", platform)
        np.testing.assert_array_equal(images.decode_images(paths, workers=2), expected)
        assert pools == (["fork"] if forks else []), platform


def test_each_image_is_decoded_once(flat, monkeypatch):
    root, x, y = flat
    paths = images.scan_splits({"train": root})[0]["train"].paths()
    calls, real = [], images._decode_one
    monkeypatch.setattr(images, "_decode_one", lambda path, size: calls.append(path) or real(path, size))
    images.decode_images(paths, workers=1)
    assert sorted(calls) == sorted(paths)


# ---------------------------------------------------------------- decoded cache

@pytest.fixture
def decode_calls(monkeypatch):
    """Count calls of images.decode_images, which still does the real work."""
    calls, real = [], images.decode_images

    def spy(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(images, "decode_images", spy)
    return calls


def cache_folders(home):
    return sorted(p.name for p in (home / "decoded").iterdir())


def test_cache_second_load_does_not_decode(cinic, data_home, decode_calls):
    where, expected = cinic
    first = data.load("cinic10", data_dir=str(where))
    assert len(decode_calls) == 3
    second = data.load("cinic10", data_dir=str(where))
    assert len(decode_calls) == 3   # all from the cache
    for a, b in ((first.train, second.train), (first.validation, second.validation), (first.test, second.test)):
        assert_split(b, a.x, a.y)
    [name] = cache_folders(data_home)
    assert name.startswith("cinic10-") and len(name) == len("cinic10-") + 16
    files = sorted(p.name for p in (data_home / "decoded" / name).iterdir())
    assert files == ["meta.json"] + sorted(f"{s}_{p}.npy" for s in ("train", "val", "test") for p in "xy")


def test_cache_invalidated_by_touched_or_added_image(flat, data_home, decode_calls):
    root, x, y = flat
    data.load("folder", data_dir=str(root))
    data.load("folder", data_dir=str(root), image_size=16)   # another cache, kept alongside
    assert len(decode_calls) == 2 and len(cache_folders(data_home)) == 2
    image = root / "a_cls" / "img000.png"
    write_png(image, pattern(99))
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))  # same size, newer
    ds = data.load("folder", data_dir=str(root))
    assert len(decode_calls) == 3
    train, *_ = data.source("folder").loader(data_dir=str(root))
    np.testing.assert_array_equal(train.x[0], pattern(99))
    write_png(root / "a_cls" / "img100.png", pattern(100))
    ds = data.load("folder", data_dir=str(root))
    assert len(decode_calls) == 4 and len(ds.train.y) + len(ds.validation.y) + len(ds.test.y) == 31
    assert len(cache_folders(data_home)) == 2   # the stale full-size caches were removed, the 16×16 one kept


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "meta"])
def test_corrupt_cache_is_rebuilt(cinic, data_home, decode_calls, damage, capsys):
    where, expected = cinic
    data.load("cinic10", data_dir=str(where))
    [name] = cache_folders(data_home)
    folder = data_home / "decoded" / name
    target = folder / "train_x.npy"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:-100])
    elif damage == "flip":
        raw = bytearray(target.read_bytes())
        raw[-5] ^= 0xFF
        target.write_bytes(bytes(raw))
    elif damage == "delete":
        target.unlink()
    else:
        (folder / "meta.json").write_text("{not json")
    capsys.readouterr()
    ds = data.load("cinic10", data_dir=str(where))
    assert_one_warning(capsys, "decoded-image cache is corrupt", str(folder))
    assert len(decode_calls) == 6
    assert_split(ds.train, *expected["train"])
    data.load("cinic10", data_dir=str(where))
    assert len(decode_calls) == 6 and cache_folders(data_home) == [name]


def test_cache_write_is_atomic(flat, data_home, decode_calls, monkeypatch, capsys):
    root, x, y = flat
    real_save, saves = np.save, []

    def failing_save(path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 2:   # the first file is written, the second fails
            raise OSError(28, "No space left on device")
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(np, "save", failing_save)
    ds = data.load("folder", data_dir=str(root))
    assert_one_warning(capsys, "cannot write the decoded-image cache", "No space left on device")
    assert len(ds.train.y) + len(ds.validation.y) + len(ds.test.y) == 30
    assert cache_folders(data_home) == []   # no partial cache, no temporary folder left
    data.load("folder", data_dir=str(root))
    data.load("folder", data_dir=str(root))
    assert len(decode_calls) == 2 and len(cache_folders(data_home)) == 1


def assert_one_warning(capsys, *parts):
    """Standard error holds one line, ``hpstudy: warning: ...`` with each of ``parts``."""
    err = capsys.readouterr().err
    assert err.startswith("hpstudy: warning: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err, err


def test_cache_race_with_another_process(flat, data_home, monkeypatch, capsys):
    """Another process renames the same cache into place first: ours is dropped, no warning."""
    root, x, y = flat
    real_replace = os.replace

    def replace_after_the_other_process(src, dst):
        shutil.copytree(src, dst)   # what the other process wrote: the same files
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_the_other_process)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.load("folder", data_dir=str(root))
    monkeypatch.setattr(os, "replace", real_replace)
    [name] = cache_folders(data_home)
    assert (data_home / "decoded" / name / "meta.json").is_file()
    assert capsys.readouterr().err == ""


def test_fingerprint_depends_on_image_size_and_root(flat, tmp_path):
    root, x, y = flat
    files, _ = images.scan_splits({"train": root})
    keys = {cache.fingerprint("folder", root, files), cache.fingerprint("folder", root, files, 16),
            cache.fingerprint("folder", tmp_path, files), cache.fingerprint("cinic10", root, files)}
    assert len(keys) == 4


# ---------------------------------------------------------------- npz

def test_npz_keras_style(tmp_path):
    x = np.stack([pattern(i, 8, 8) for i in range(30)])
    y = (np.arange(30) % 3).astype(np.uint8)[:, None]          # (N, 1) uint8, as keras.datasets gives
    xt, yt = x[:8], np.array([0, 1, 2, 3, 0, 1, 2, 3])        # label 3 only in test
    ds = data.load("npz", data_dir=npz(tmp_path, x_train=x, y_train=y, x_test=xt, y_test=yt))
    assert ds.class_names == ("0", "1", "2", "3") and ds.split_off == ("validation",)
    assert_split(ds.test, xt, yt)
    assert len(ds.train.y) + len(ds.validation.y) == 30
    names = np.array(["cat", "dog", "eel", "fox"])
    ds = data.load("npz", data_dir=npz(tmp_path, x_train=x, y_train=y, x_val=xt, y_val=yt, x_test=xt, y_test=yt,
                                       class_names=names))
    assert ds.class_names == ("cat", "dog", "eel", "fox") and ds.split_off == ()
    assert_split(ds.train, x, y[:, 0].astype(np.int64))


@pytest.mark.parametrize("channel", [False, True])
def test_npz_greyscale(tmp_path, channel):
    grey = np.arange(4 * 5 * 6, dtype=np.uint8).reshape(4, 5, 6)
    x = grey[..., None] if channel else grey
    train, *_ = data.source("npz").loader(data_dir=npz(tmp_path, x_train=x, y_train=np.arange(4)))
    assert train.x.shape == (4, 5, 6, 3) and (train.x == grey[..., None]).all()


def test_npz_refusals(tmp_path):
    x, y = np.zeros((4, 8, 8, 3), np.uint8), np.arange(4)
    bad = {
        "no y_train": (dict(x_train=x), ["'y_train'"]),
        "x_val alone": (dict(x_train=x, y_train=y, x_val=x), ["'x_val'", "'y_val'"]),
        "floats": (dict(x_train=x / 255.0, y_train=y), ["'x_train'", "(x * 255).round().astype('uint8')"]),
        "lengths": (dict(x_train=x, y_train=y[:3]), ["'y_train'", "3", "4"]),
        "negative": (dict(x_train=x, y_train=y - 1), ["'y_train'", "negative"]),
        "float labels": (dict(x_train=x, y_train=y.astype(float)), ["'y_train'", "integers"]),
        "shapes": (dict(x_train=x, y_train=y, x_test=x[:, :4], y_test=y), ["'x_test'", "'x_train'"]),
        "names": (dict(x_train=x, y_train=y, class_names=np.array(["a"])), ["'class_names'"]),
        "pickled": (dict(x_train=x, y_train=y, class_names=np.array(["a", None], dtype=object)),
                    ["'class_names'", "pickled"]),
    }
    for n, (arrays, parts) in enumerate(bad.values()):
        path = str(npz(tmp_path, f"bad{n}.npz", **arrays))
        raises([path, *parts], data.load, "npz", data_dir=path)
    good = npz(tmp_path, x_train=x, y_train=y)
    raises(["data.image_size", "the npz dataset", "cinic10, folder"], data.load, "npz", data_dir=good, image_size=16)
    (tmp_path / "text.npz").write_text("not a zip")
    raises([str(tmp_path / "text.npz"), "not a valid .npz"], data.load, "npz", data_dir=str(tmp_path / "text.npz"))
    np.save(tmp_path / "one.npy", x)
    raises([str(tmp_path / "one.npy"), ".npy"], data.load, "npz", data_dir=str(tmp_path / "one.npy"))
    with zipfile.ZipFile(tmp_path / "broken.npz", "w") as z:
        z.writestr("x_train.npy", b"\x93NUMPY garbage")
    raises([str(tmp_path / "broken.npz")], data.load, "npz", data_dir=str(tmp_path / "broken.npz"))
    raises(["data.data_dir"], data.load, "npz")
    raises([str(tmp_path / "missing.npz")], data.load, "npz", data_dir=str(tmp_path / "missing.npz"))


# ---------------------------------------------------------------- hostile files: limits, special files, quiet

def test_quoted_names_never_split_a_line():
    from hpstudy.data.paths import quoted
    assert quoted("plain/é name.png") == "plain/é name.png"
    assert quoted("a\nhpstudy: error: x") == repr("a\nhpstudy: error: x")
    assert "\n" not in quoted("a\nb") and "\\udcff" in quoted(os.fsdecode(b"\xff"))


def test_named_pipe_is_refused_unopened(tmp_path):
    from hpstudy.data.paths import open_regular
    os.mkfifo(tmp_path / "pipe.png")
    raises(["pipe.png", "named pipe (FIFO)"], open_regular, tmp_path / "pipe.png")
    raises(["a folder"], open_regular, tmp_path)
    with open_regular(__file__) as f:
        assert f.read(3) == b'"""'


def test_npz_arrays_together_must_fit_in_memory(tmp_path, monkeypatch):
    from hpstudy.data import guard
    x, y = np.zeros((30, 8, 8, 3), np.uint8), np.arange(30) % 2
    path = str(npz(tmp_path, x_train=x, y_train=y))
    monkeypatch.setattr(guard, "available_memory", lambda: 2 * x.nbytes + 100)   # each alone fits, not both
    raises([path, "its arrays ('x_train', 'y_train') declare", "of memory is available"], data.load, "npz",
           data_dir=path)


def test_npz_deflate_bomb_is_refused_before_it_inflates(tmp_path, monkeypatch):
    from hpstudy.data import guard
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("x_train.npy", "w") as member:
            np.save(member, np.zeros((30, 8, 8, 3), np.uint8))
        with z.open("y_train.npy", "w") as member:      # 64 MB of labels in about 64 kB
            np.lib.format.write_array_header_1_0(member, {"descr": "<i8", "fortran_order": False,
                                                          "shape": (1 << 23,)})
            for _ in range(64):
                member.write(bytes(1 << 20))
    assert bomb.stat().st_size < 1 << 20
    monkeypatch.setattr(guard, "available_memory", lambda: 32 << 20)
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: pytest.fail("inflated"))
    raises([str(bomb), "'y_train' declares shape (8388608,) of int64, 67.1 MB", "134.2 MB"], data.load, "npz",
           data_dir=str(bomb))


def test_npz_members_that_are_not_arrays_are_never_read(tmp_path, monkeypatch):
    path = tmp_path / "extra.npz"
    np.savez(path, x_train=np.zeros((30, 8, 8, 3), np.uint8), y_train=np.arange(30) % 2)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("notes.txt", bytes(1 << 20))
    opened = []
    real = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, name, *a, **k: opened.append(getattr(name, "filename",
                        name)) or real(self, name, *a, **k))
    ds = data.load("npz", data_dir=str(path))
    assert ds.num_classes == 2 and "notes.txt" not in opened


def test_image_folder_decoding_is_quiet(tmp_path, caplog):
    import logging
    path = tmp_path / "p.png"
    Image.fromarray(pattern(1, 8, 8)).quantize(16).save(path, transparency=bytes(range(16)))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        Image.open(path).convert("RGB")
    assert seen, "Pillow warns about this palette image (else this test proves nothing)"
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        images._decode_one(str(path), None)
    assert not seen and not [r for r in caplog.records if r.name.startswith("PIL")]


def test_one_class_is_refused(tmp_path):
    write_tree(tmp_path / "one", ["cat"], 3)
    raises(["one", "one class folder ('cat')", "at least two classes"], data.load, "folder",
           data_dir=str(tmp_path / "one"))
    path = str(npz(tmp_path, x_train=np.zeros((30, 8, 8, 3), np.uint8), y_train=np.full(30, 1),
                   class_names=np.array(["cat", "dog"])))
    raises([path, "every training image is of class 'dog'", "at least two classes"], data.load, "npz",
           data_dir=path)
