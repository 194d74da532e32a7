"""MNIST and Fashion-MNIST: IDX files written here byte by byte as the format specifies (gzipped and not), read
from data.data_dir, the cache or a download from a file:// URL, every kind of bad file refused in one line, and a
real one-trial study trained on 28×28×1 images."""

import gzip
import hashlib
import struct

import numpy as np
import pytest
from PIL import Image

import hpstudy
from hpstudy import api, data
from hpstudy.data import idx, mnist
from hpstudy.errors import DataError, SpecError
from tests.conftest import write_study

TRAIN, TEST = 100, 20      # images per split of the small fixture (10 and 2 of each class)
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


# ---------------------------------------------------------------- fixture builders

def idx_bytes(array, code=0x08) -> bytes:
    """The IDX encoding of ``array``: 00 00, the type code, the number of dimensions, each dimension as a
    big-endian uint32, then the values big-endian."""
    stored = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    array = np.asarray(array)
    return (bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.astype(stored).tobytes())


def images(n, start=0):
    """``n`` distinct, known 28×28 images."""
    r, c = np.mgrid[0:28, 0:28]
    return np.stack([(7 * r + c + 13 * (start + i)) % 256 for i in range(n)]).astype(np.uint8)


def write_mnist(folder, gz=True, train=TRAIN, test=TEST):
    """The four IDX files as distributed (``gz``: gzipped, named NAME.gz); returns {split: (x, y)}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, start in (("train", train, 0), ("test", test, 1000)):
        x, y = images(n, start), np.arange(n, dtype=np.uint8) % 10
        for name, array in zip(mnist.FILES[split], (x, y)):
            body = idx_bytes(array)
            (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(body) if gz else body)
        out[split] = (x, y)
    return out


def md5s(folder):
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.glob("*.gz")}


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    """Every test gets its own cache folder, and downloads go to a folder that does not exist."""
    home = tmp_path / "cache"
    monkeypatch.setenv("HPSTUDY_DATA_DIR", str(home))
    for name in ("MNIST_URL", "FASHION_MNIST_URL"):
        monkeypatch.setattr(mnist, name, (tmp_path / "nowhere").as_uri() + "/")
    return home


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    """A local copy of Fashion-MNIST's download folder (four .gz files), served as its URL with its MD5s."""
    folder = tmp_path / "upstream"
    expected = write_mnist(folder)
    monkeypatch.setattr(mnist, "FASHION_MNIST_URL", folder.as_uri() + "/")
    monkeypatch.setattr(mnist, "FASHION_MNIST_MD5", md5s(folder))
    return folder, expected


def assert_splits(ds, expected):
    """``ds`` holds the fixture's test split as written, and its training images split in two."""
    np.testing.assert_array_equal(ds.test.x[..., 0], expected["test"][0])
    np.testing.assert_array_equal(ds.test.y, expected["test"][1])
    assert len(ds.train.y) + len(ds.validation.y) == len(expected["train"][1])


# ---------------------------------------------------------------- reading

@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_four_idx_files_from_data_dir(tmp_path, gz, name):
    expected = write_mnist(tmp_path / "files", gz=gz)
    train, val, test, names = data.source(name).loader(data_dir=str(tmp_path / "files"))
    assert val is None and train.x.shape == (TRAIN, 28, 28, 1) and test.x.shape == (TEST, 28, 28, 1)
    for split, (x, y) in ((train, expected["train"]), (test, expected["test"])):
        assert split.x.dtype == np.uint8 and split.y.dtype == np.int64
        np.testing.assert_array_equal(split.x[..., 0], x)
        np.testing.assert_array_equal(split.y, y)
    assert names == (tuple(FASHION) if name == "fashion_mnist" else tuple("0123456789"))
    ds = data.load(name, data_dir=str(tmp_path / "files"), validation_split=0.5)
    assert ds.input_shape == (28, 28, 1) and ds.num_classes == 10 and ds.split_off == ("validation",)
    assert np.bincount(ds.validation.y).tolist() == [TRAIN // 20] * 10
    assert_splits(ds, expected)
    assert data.source(name).locate(str(tmp_path / "files")) == (str(tmp_path / "files"), True)


def test_the_uncompressed_copy_is_read_where_both_are_there(tmp_path):
    write_mnist(tmp_path, gz=True)
    plain = write_mnist(tmp_path, gz=False, test=30)     # differs from the .gz copies
    ds = data.load("mnist", data_dir=str(tmp_path))
    np.testing.assert_array_equal(ds.test.x[..., 0], plain["test"][0])


def test_the_parser_reads_every_idx_type_big_endian(tmp_path):
    values = np.arange(-6, 6).reshape(2, 3, 2)
    for code, dtype in ((0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32),
                        (0x0E, np.float64)):
        path = tmp_path / f"a{code}"
        path.write_bytes(gzip.compress(idx_bytes(values * 1000 if code > 0x09 else values, code)))
        got = idx.read(path, "fix", ndim=3, what="values", code=code)
        assert got.dtype == np.dtype(dtype) and got.dtype.isnative
        np.testing.assert_array_equal(got, values * (1000 if code > 0x09 else 1))


def test_missing_files_and_no_download(tmp_path, data_home):
    folder = tmp_path / "files"
    write_mnist(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no t10k-labels-idx1-ubyte .or t10k-labels-idx1-ubyte.gz. here"):
        data.load("fashion_mnist", data_dir=str(folder))
    with pytest.raises(DataError, match="hpstudy data download fashion_mnist"):
        data.load("fashion_mnist", download=False)
    assert data.source("mnist").locate(None) == (str(data_home / "mnist"), False)
    assert not data_home.exists()


# ---------------------------------------------------------------- bad files: the whole class

BAD_FILES = {   # name -> (file to damage, how, a fragment of the error)
    "empty": ("train-images-idx3-ubyte", lambda b: b"", "cut short in its header (0 of 4 bytes)"),
    "cut_in_the_dimensions": ("train-images-idx3-ubyte", lambda b: b[:9], "cut short in its dimensions (5 of 12"),
    "cut_in_the_values": ("train-images-idx3-ubyte", lambda b: b[:-1],
                          f"declares {TRAIN * 784} bytes of values but it holds {TRAIN * 784 - 1}"),
    "longer_than_declared": ("t10k-labels-idx1-ubyte", lambda b: b + b"\0",
                             "holds more bytes than its header declares"),
    "wrong_magic": ("train-labels-idx1-ubyte", lambda b: b"\x01" + b[1:],
                    "not an IDX file (it starts with bytes 01 00"),
    "unknown_type": ("train-images-idx3-ubyte", lambda b: b[:2] + b"\x07" + b[3:], "unknown IDX type code 0x07"),
    "shorts_not_bytes": ("t10k-images-idx3-ubyte", lambda b: b[:2] + b"\x0b" + b[3:],
                         "holds shorts (type 0x0b); images (N × rows × columns) are unsigned bytes"),
    "labels_in_place_of_images": ("train-images-idx3-ubyte",
                                  lambda b: idx_bytes(np.zeros(TRAIN, np.uint8)), "array of 1 dimension; images"),
    "images_of_another_size": ("train-images-idx3-ubyte", lambda b: idx_bytes(np.zeros((TRAIN, 32, 32), np.uint8)),
                               "images of 32×32 pixels; MNIST's are 28×28"),
    "fewer_labels_than_images": ("train-labels-idx1-ubyte", lambda b: idx_bytes(np.zeros(TRAIN - 1, np.uint8)),
                                 f"{TRAIN - 1} labels but train-images-idx3-ubyte holds {TRAIN} images"),
    "label_out_of_range": ("t10k-labels-idx1-ubyte", lambda b: idx_bytes(np.full(TEST, 10, np.uint8)),
                           "label 10; MNIST's labels are 0 to 9"),
    "header_declares_terabytes": ("train-images-idx3-ubyte",
                                  lambda b: b[:4] + struct.pack(">3I", 2 ** 31, 2 ** 16, 2 ** 16), "available"),
}


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
@pytest.mark.parametrize("bad", BAD_FILES, ids=list(BAD_FILES))
def test_bad_idx_files_are_one_line_errors(tmp_path, bad, gz):
    name, damage, fragment = BAD_FILES[bad]
    write_mnist(tmp_path, gz=False)
    path = tmp_path / name
    body = damage(path.read_bytes())
    if gz:
        path.unlink()
        path = path.with_name(name + ".gz")
        body = gzip.compress(body)
    path.write_bytes(body)
    with pytest.raises(DataError) as err:
        data.load("mnist", data_dir=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message and str(path) in message and fragment in message, message
    if "available" not in fragment:
        assert mnist.MNIST_URL in message


@pytest.mark.parametrize("damage, fragment", [
    (lambda b: b[:-9], "corrupt gzip (EOFError"),                          # cut inside the deflate stream
    (lambda b: b[:-4] + bytes(4), "corrupt gzip (BadGzipFile"),            # the length in the trailer
    (lambda b: b[:-8] + bytes(4) + b[-4:], "CRC check failed"),            # the CRC in the trailer
    (lambda b: b[:20] + bytes(40) + b[60:], "corrupt gzip"),               # garbled deflate data
    (lambda b: b"\x1f\x8b" + bytes(10), "corrupt gzip"),                   # a gzip header and nothing else
    (lambda b: b + b"trailing garbage", "corrupt gzip (BadGzipFile"),
], ids=["cut", "length", "crc", "garbled", "header-only", "trailing-garbage"])
def test_corrupt_gzip(tmp_path, damage, fragment):
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError) as err:
        data.load("fashion_mnist", data_dir=str(tmp_path))
    assert "\n" not in str(err.value) and str(path) in str(err.value) and fragment in str(err.value), str(err.value)


def test_a_gzip_bomb_is_read_only_as_far_as_its_header_declares(tmp_path):
    """Labels followed by 64 MB of zeros that inflate from 64 kB: refused after one byte more."""
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    stream = gzip.GzipFile(path, "wb")
    with stream:
        stream.write(idx_bytes(np.arange(TEST, dtype=np.uint8) % 10))
        for _ in range(4):
            stream.write(bytes(1 << 24))
    with pytest.raises(DataError, match=r"holds more bytes than its header declares \(20 bytes of values\)"):
        data.load("fashion_mnist", data_dir=str(tmp_path))


# ---------------------------------------------------------------- downloads

def test_download_into_the_cache_then_load_offline(upstream, data_home):
    folder, expected = upstream
    ds = data.load("fashion_mnist")
    assert_splits(ds, expected)
    assert sorted(p.name for p in (data_home / "fashion_mnist").iterdir()) == sorted(md5s(folder))
    for p in folder.iterdir():
        p.unlink()        # a second load must not need the network
    again = data.load("fashion_mnist", download=False)
    np.testing.assert_array_equal(again.test.x, ds.test.x)
    assert data.source("fashion_mnist").locate(None) == (str(data_home / "fashion_mnist"), True)


def test_a_file_with_the_wrong_checksum_is_not_kept(upstream, data_home, monkeypatch):
    folder, _ = upstream
    wrong = dict(mnist.FASHION_MNIST_MD5, **{"t10k-images-idx3-ubyte.gz": "0" * 32})
    monkeypatch.setattr(mnist, "FASHION_MNIST_MD5", wrong)
    with pytest.raises(DataError, match="checksum mismatch: expected MD5 0{32}"):
        data.download("fashion_mnist")
    kept = sorted(p.name for p in (data_home / "fashion_mnist").iterdir())
    assert "t10k-images-idx3-ubyte.gz" not in kept and not any(n.endswith(".part") for n in kept)


def test_download_keeps_what_is_there(upstream, tmp_path):
    folder, _ = upstream
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "train-images-idx3-ubyte").write_bytes(b"my own copy")
    (mine / "notes.txt").write_text("mine")
    assert data.download("fashion_mnist", mine) == mine
    assert (mine / "train-images-idx3-ubyte").read_bytes() == b"my own copy"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "t10k-images-idx3-ubyte.gz",
                                                     "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte",
                                                     "train-labels-idx1-ubyte.gz"]


def test_mnist_checksums_are_those_published():
    """The MD5s torchvision checks MNIST against and those Fashion-MNIST's README lists (a typo here would make
    every user's download fail)."""
    assert mnist.MNIST_MD5["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert mnist.FASHION_MNIST_MD5["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    for table in (mnist.MNIST_MD5, mnist.FASHION_MNIST_MD5):
        assert sorted(table) == sorted(f"{n}.gz" for n in mnist.Distribution.names())
        assert all(len(v) == 32 and int(v, 16) >= 0 for v in table.values())


# ---------------------------------------------------------------- label_mode and a study

def test_label_mode_is_refused_for_mnist(tmp_path):
    write_mnist(tmp_path / "files")
    with pytest.raises(DataError, match="data.label_mode: the mnist dataset has one set of labels; label_mode "
                                        "applies to cifar100: remove it"):
        data.load("mnist", data_dir=str(tmp_path / "files"), label_mode="fine")
    study = write_study(tmp_path, f"""
        name: labels
        data: {{dataset: fashion_mnist, data_dir: {tmp_path / 'files'}, label_mode: coarse}}
        train: {{epochs: 1}}
    """, name="labels")
    with pytest.raises(SpecError, match="labels.yaml: data.label_mode: the fashion_mnist dataset has one set"):
        api.validate(study)


def test_a_fashion_mnist_study_trains_on_one_channel_and_predicts(tmp_path):
    """A real one-trial, one-epoch study on 300 28×28×1 images, then a prediction on an RGB PNG."""
    write_mnist(tmp_path / "files", train=300, test=100)
    path = write_study(tmp_path, f"""
        name: fashion
        data: {{dataset: fashion_mnist, data_dir: {tmp_path / 'files'}, validation_split: 0.2}}
        preprocess: {{standardize: true}}
        model: {{conv_layers: 1, filters: 4, dense_units: 8}}
        train: {{epochs: 1, batch_size: 32}}
        search: {{tuner: random, max_trials: 1}}
    """, name="fashion")
    study = hpstudy.run(path, results_dir=tmp_path / "results")
    assert (study.trials.status == "COMPLETED").all() and len(study.trials) == 1
    assert study.best["class_names"] == FASHION
    png = tmp_path / "shirt.png"
    Image.fromarray(np.stack([images(1)[0]] * 3, -1)).resize((56, 40)).save(png)
    (prediction,) = api.predict(study.path, [png], top=10)
    assert sorted(name for name, _ in prediction.top) == sorted(FASHION)
    assert abs(sum(p for _, p in prediction.top) - 1) < 1e-4
