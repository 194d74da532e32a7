"""What the tests share, one meaning per name: tiny study files, the command line run in this process or its own,
the one-line error check, a folder's digest, a model's layers and weights, datasets written in their real on-disk
formats. Fixtures and hooks live in conftest.py, which imports from here; tests import from here, never from
conftest.py or from another test file. Nothing here imports Keras."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import io
import json
import os
import pickle
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tarfile
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]          # the repository: studies/, benchmarks/, hpstudy/ below it
HPSTUDY_COMMAND = [sys.executable, "-m", "hpstudy.cli"]   # `hpstudy` as a user runs it, in a process of its own


# ---------------------------------------------------------------- study files

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

# Three searched hyperparameters of two values each (dropout, a flip, the batch size): a grid of eight.
SIX = """
name: six
data:
  dataset: digits
  subset: {train: 12, validation: 4, test: 6}
model:
  builder: plain_cnn
  conv_layers: 1
  filters: 4
  dense_units: 8
  dropout: {tune: choice, values: [0.0, 0.5]}
preprocess:
  flip: {tune: choice, values: [false, true]}
train:
  epochs: 2
  batch_size: {tune: choice, values: [4, 8]}
search:
  tuner: grid
  seed: 1
"""


def write_study(folder, text=None, name="tiny", **extra):
    """Write a study file into `folder` and return its path; `text` replaces the tiny default, and each keyword
    adds a section of that name with the given lines."""
    path = folder / f"{name}.yaml"
    body = textwrap.dedent(text) if text is not None else TINY.format(name=name)
    for section, lines in extra.items():
        body += f"{section}:\n" + textwrap.indent(textwrap.dedent(lines), "  ")
    path.write_text(body)
    return path


def epochs_study(folder, name: str, epochs: list[int]):
    """Write the tiny study with a fixed dropout and `epochs` as its one searched choice, in the grid's order: the
    trial with many epochs is long enough for a kill to land inside it, the one with few ends in a second."""
    text = TINY.format(name=name).replace("dropout: {tune: choice, values: [0.0, 0.5]}", "dropout: 0.0")
    return write_study(folder, text.replace("epochs: 2", f"epochs: {{tune: choice, values: {epochs}}}"), name=name)


# Each property test sets its own number of examples, and the default profile (CI's) draws exactly those. The dev
# profile (HYPOTHESIS_PROFILE=dev, registered by conftest.py) draws at most DEV_EXAMPLES of each.
DEV_EXAMPLES = 10


def examples(count: int) -> int:
    """A property test's number of examples: `count`, or fewer under the dev profile."""
    return min(count, DEV_EXAMPLES) if os.environ.get("HYPOTHESIS_PROFILE") == "dev" else count


# ---------------------------------------------------------------- the command line

def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """`hpstudy ARGV` in this process: (exit code, standard output, standard error) of `cli.main`."""
    from hpstudy import cli
    code = cli.main([str(a) for a in argv])
    return (code, *capsys.readouterr())


def run_command(*argv, timeout: float = 300, **options) -> subprocess.CompletedProcess:
    """`hpstudy ARGV` in a process of its own, as a user runs it; its output captured as text. `options` go to
    subprocess.run (env, cwd)."""
    return subprocess.run([*HPSTUDY_COMMAND, *map(str, argv)], capture_output=True, text=True, timeout=timeout,
                          **options)


def one_error_line(output, *names: str) -> str:
    """The one line a user error printed, returned: standard error holds exactly one printable line that starts
    with "hpstudy: error: ", ends with a newline and names each of `names`, with no traceback; standard output holds
    nothing. `output` is pytest's capsys (read here) or a command's (stdout, stderr)."""
    out, err = output.readouterr() if hasattr(output, "readouterr") else output
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n") and lines[0].startswith("hpstudy: error: "), err
    assert lines[0].isprintable(), lines[0]        # no escape sequence, C1 or bidirectional control
    missing = [name for name in names if name not in lines[0]]
    assert not missing, (missing, lines[0])
    assert out == "", out
    return lines[0]


@contextlib.contextmanager
def no_hang(seconds: int = 30):
    """Fail with TimeoutError instead of hanging when the block takes longer than `seconds` (far above the work of
    any block it guards: only a hang reaches it)."""
    def hang(signum, frame):
        raise TimeoutError(f"blocked for {seconds} s")
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_unprivileged(code: str, *args: str) -> str:
    """Run python ``code`` where file permissions apply; returns its standard output. Root (as in CI) ignores
    permissions, so there the code runs under setpriv without the capabilities that override them
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)."""
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv to test file permissions as root")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    done = subprocess.run([*prefix, sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


# ---------------------------------------------------------------- folders

def folder_digest(root: Path, skip=()) -> dict:
    """Every entry under `root` (by its path relative to it, but those in `skip`): its kind, what it holds (a
    file's SHA-256, a link's target) and its modification time in nanoseconds. Only regular files are opened, so a
    named pipe cannot hang it; links are not followed. Two digests are equal when nothing under `root` was
    written, made, deleted or touched."""
    out = {}
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        name = str(path.relative_to(root))
        if name in skip:
            continue
        facts = os.lstat(path)
        if stat.S_ISLNK(facts.st_mode):
            held = ("link", os.readlink(path))
        elif stat.S_ISREG(facts.st_mode):
            held = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
        elif stat.S_ISDIR(facts.st_mode):
            held = ("folder", None)
        else:
            held = ("kind", stat.S_IFMT(facts.st_mode))
        out[name] = (*held, facts.st_mtime_ns)
    return out


def digest_changes(before: dict, after: dict, ignore=(), rewritten=()) -> list[str]:
    """The names whose entry differs between two folder digests (made, deleted, changed or touched), but those in
    `ignore`; those in `rewritten` may have been written again, with the same content."""
    def same(name):
        old, new = before.get(name), after.get(name)
        return old[:-1] == new[:-1] if name in rewritten and old and new else old == new
    return sorted(name for name in before.keys() | after.keys() if not same(name) and name not in ignore)


# ---------------------------------------------------------------- the live view (`hpstudy serve`)

@contextlib.contextmanager
def serving(*paths, host="127.0.0.1"):
    """`hpstudy serve` of results folders `paths` on a free loopback port, in a thread of this process."""
    from hpstudy.serve.server import open_server
    server = open_server([str(p) for p in paths], host=host, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def get(server, target: str, method: str = "GET", host: str | None = None) -> tuple[int, bytes]:
    """(status, body) of a request sent exactly as given (no normalizing of the path)."""
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    headers = {"Host": host} if host else {}
    connection.request(method, target, headers=headers)
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    return answer.status, body


def state(server) -> dict:
    """The first study's state, as the page's poll of /state.json gets it."""
    status, body = get(server, "/state.json")
    assert status == 200
    return json.loads(body)["studies"][0]


# ---------------------------------------------------------------- models

def layers_of(model, *kinds) -> list:
    """The layers of `model` that are instances of any of `kinds`, in order."""
    return [layer for layer in model.layers if isinstance(layer, kinds)]


def trainable(model) -> int:
    """The number of trainable parameters of `model`."""
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


# ---------------------------------------------------------------- datasets in their real on-disk formats

def npz(folder: Path, name: str = "d.npz", **arrays) -> Path:
    """A .npz file named exactly `name` in `folder` holding `arrays` (those given as None left out); its path."""
    path = folder / name
    with open(path, "wb") as f:
        np.savez(f, **{key: value for key, value in arrays.items() if value is not None})
    return path


def pattern(i, h=32, w=32):
    """A distinct, known RGB image for each ``i``."""
    r, c = np.mgrid[0:h, 0:w]
    return np.stack([(7 * r + c + i) % 256, (3 * r + 5 * i) % 256, (11 * c + 13 * i) % 256], -1).astype(np.uint8)


def write_png(path, rgb, mode="RGB"):
    """Save ``rgb`` as a PNG in ``mode``; returns the RGB pixels a reader must get back."""
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(rgb)
    if mode == "L":
        image = image.convert("L")
    elif mode == "RGBA":
        image = Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]), "RGBA")
    elif mode == "P":
        image = image.quantize(16)
    image.save(path)
    return np.asarray(image.convert("RGB"))


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CINIC_CLASSES = CIFAR_NAMES        # CINIC-10 has CIFAR-10's classes, in the same order


def write_tree(folder, classes, per_class, start=0, size=(32, 32), modes=None):
    """A split folder of class folders of PNGs; returns (x, y) as a reader must return them."""
    xs, ys = [], []
    for label, name in enumerate(classes):
        for k in range(per_class):
            i = start + 100 * label + k
            mode = (modes or {}).get((name, k), "RGB")
            xs.append(write_png(folder / name / f"img{k:03d}.png", pattern(i, *size), mode))
            ys.append(label)
    return np.stack(xs), np.array(ys, np.int64)


PER_BATCH = 20   # 2 images of each class per data batch -> 10 per class in train
TEST_SIZE = 30   # 3 per class


def cifar_batch(n, batch_no):
    """A batch dict as in the official files: labels cycle through the 10 classes."""
    rng = np.random.default_rng(batch_no)
    rows = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    if batch_no == 1:
        # Image 0: pure red. Image 1: red = 7*row + col, green = row, blue = col.
        rows[0] = np.concatenate([np.full(1024, 255), np.zeros(2048)]).astype(np.uint8)
        r, c = np.mgrid[0:32, 0:32]
        rows[1] = np.concatenate([(7 * r + c).ravel(), r.ravel(), c.ravel()]).astype(np.uint8)
    return {
        b"batch_label": b"training batch %d of 5" % batch_no,
        b"labels": [i % 10 for i in range(n)],
        b"data": rows,
        b"filenames": [b"img_%d_%d.png" % (batch_no, i) for i in range(n)],
    }


class _Py2Pickler(pickle._Pickler):
    """Writes bytes with Python 2's str opcodes, as in the official (Python 2) CIFAR files."""
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def pickle_file(obj, path, style="py2"):
    """Pickle ``obj`` to ``path`` as Python 2 wrote CIFAR ("py2"), or as Python 3 does (a protocol number)."""
    if style == "py2":
        buf = io.BytesIO()
        _Py2Pickler(buf, protocol=2).dump(obj)
        # Files written before numpy 2 name numpy.core, not numpy._core.
        raw = buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    else:
        raw = pickle.dumps(obj, protocol=style)
    path.write_bytes(raw)


class EvilPickle:
    """An object whose unpickling runs `command` in a shell: what a hostile CIFAR file holds."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_cifar(parent):
    """Write a small cifar-10-batches-py folder under ``parent``; return the folder."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        pickle_file(cifar_batch(PER_BATCH, i), folder / f"data_batch_{i}")
    pickle_file(cifar_batch(TEST_SIZE, 99), folder / "test_batch")
    pickle_file({b"label_names": [n.encode() for n in CIFAR_NAMES],
                 b"num_cases_per_batch": PER_BATCH, b"num_vis": 3072}, folder / "batches.meta")
    return folder


def write_archive(tmp_path):
    """A cifar-10-python.tar.gz in the official layout; returns (path, md5)."""
    src = tmp_path / "src"
    write_cifar(src)
    archive = tmp_path / "upstream" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


FINE = [f"fine_{i}" for i in range(100)]
COARSE = [f"coarse_{i}" for i in range(20)]
PER_FINE = 10   # training images of each fine class; the test split has one


def cifar100_batch(n, seed):
    """A train or test dict as in the official files: fine labels cycle through the 100 classes, coarse = fine // 5."""
    rows = np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    fine = [i % 100 for i in range(n)]
    return {b"filenames": [b"img_%d.png" % i for i in range(n)], b"batch_label": b"batch %d" % seed,
            b"fine_labels": fine, b"coarse_labels": [f // 5 for f in fine], b"data": rows}


def write_cifar100(parent):
    """A small cifar-100-python folder (train, test, meta) under ``parent``, pickled as by Python 2; the folder."""
    folder = parent / "cifar-100-python"
    folder.mkdir(parents=True)
    pickle_file(cifar100_batch(100 * PER_FINE, 1), folder / "train")
    pickle_file(cifar100_batch(100, 2), folder / "test")
    pickle_file({b"fine_label_names": [n.encode() for n in FINE],
                 b"coarse_label_names": [n.encode() for n in COARSE]}, folder / "meta")
    return folder


def write_cifar100_archive(tmp_path):
    """A cifar-100-python.tar.gz in the official layout; returns (path, sha256)."""
    write_cifar100(tmp_path / "src100")
    archive = tmp_path / "upstream100" / "cifar-100-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src100" / "cifar-100-python", arcname="cifar-100-python")
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


MNIST_TRAIN, MNIST_TEST = 100, 20      # images per split of the small MNIST files (10 and 2 of each class)


def idx_bytes(array, code=0x08) -> bytes:
    """The IDX encoding of ``array``: 00 00, the type code, the number of dimensions, each dimension as a
    big-endian uint32, then the values big-endian."""
    stored = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    array = np.asarray(array)
    return (bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.astype(stored).tobytes())


def mnist_images(n, start=0):
    """``n`` distinct, known 28×28 images."""
    r, c = np.mgrid[0:28, 0:28]
    return np.stack([(7 * r + c + 13 * (start + i)) % 256 for i in range(n)]).astype(np.uint8)


def write_mnist(folder, gz=True, train=MNIST_TRAIN, test=MNIST_TEST):
    """The four IDX files as distributed (``gz``: gzipped, named NAME.gz); returns {split: (x, y)}."""
    from hpstudy.data import mnist
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, start in (("train", train, 0), ("test", test, 1000)):
        x, y = mnist_images(n, start), np.arange(n, dtype=np.uint8) % 10
        for name, array in zip(mnist.FILES[split], (x, y)):
            body = idx_bytes(array)
            (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(body) if gz else body)
        out[split] = (x, y)
    return out


def md5s(folder):
    """{name: MD5} of each .gz file in `folder`: the checksums a download of them must match."""
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.glob("*.gz")}
