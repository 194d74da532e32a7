"""`hpstudy data list|info|download`, and CINIC-10 from a Kaggle-style zip to a trained study.

Only the network is replaced: KaggleApi.dataset_download_files writes a zip laid out as Kaggle's
CINIC-10 download (train/, valid/, test/ of class folders of 32×32 PNGs).
"""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import hpstudy
from hpstudy import cli, data
from tests.conftest import write_study
from tests.test_data import COARSE, write_archive, write_cifar, write_cifar100, write_cifar100_archive
from tests.test_data_files import CINIC_CLASSES, write_tree
from tests.test_data_mnist import md5s, write_mnist

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("HPSTUDY_DATA_DIR", str(path))
    return path


@pytest.fixture
def kaggle_zip(tmp_path, monkeypatch, cache):
    """Kaggle credentials in the environment and a fake network that serves a CINIC-10 zip."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in ("KAGGLE_CONFIG_DIR", "KAGGLE_API_TOKEN", "HPSTUDY_CINIC10_SLUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "0123456789abcdef")
    tree = tmp_path / "tree"
    expected = {split: write_tree(tree / split, CINIC_CLASSES, 2, start=1000 * n)
                for n, split in enumerate(["train", "valid", "test"])}
    calls = []

    def download(api, dataset, path=None, **kwargs):   # the network boundary
        calls.append(dataset)
        with zipfile.ZipFile(f"{path}/{dataset.split('/')[1]}.zip", "w") as z:
            for png in sorted(tree.rglob("*.png")):
                z.write(png, png.relative_to(tree).as_posix())

    from kaggle.api.kaggle_api_extended import KaggleApi
    monkeypatch.setattr(KaggleApi, "dataset_download_files", download)
    return calls, expected


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_data_list_shows_each_dataset_where_and_whether_present(capsys, cache):
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0 and str(cache) in out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:]}
    assert rows == {"cifar10": "no", "cifar100": "no", "cinic10": "no", "digits": "yes", "fashion_mnist": "no",
                    "folder": "no", "mnist": "no", "npz": "no"}
    write_cifar(cache)
    _, out, _ = run_cli(capsys, "data", "list")
    assert any(line.startswith("cifar10") and " yes " in line and "cifar-10-batches-py" in line
               for line in out.splitlines())


def test_data_info_digits_counts_every_image(capsys):
    code, out, _ = run_cli(capsys, "data", "info", "digits")
    assert code == 0
    assert "splits: train 1,293, validation 144, test 360" in out
    assert "split off train (stratified, seeded): test and validation" in out
    total = next(line for line in out.splitlines() if line.startswith("total")).split()[1:]
    assert list(map(int, total)) == [1293, 144, 360]


@pytest.mark.parametrize("argv, fragment", [
    (["data", "info", "cifar10"], "run `hpstudy data download cifar10`"),
    (["data", "info", "cifr10"], "did you mean 'cifar10'"),
    (["data", "download", "digits"], "digits: nothing to download"),
    (["data", "download", "cifar10", "--slug", "a/b"], "--slug: only for cinic10"),
    (["data", "info", "folder"], "needs data.data_dir"),
    (["data", "info", "fashion_mnist"], "run `hpstudy data download fashion_mnist`"),
    (["data", "info", "cifar100"], "run `hpstudy data download cifar100`"),
    (["data", "info", "mnist", "--label-mode", "coarse"], "data.label_mode: the mnist dataset has one set of labels"),
])
def test_data_command_errors_are_one_line(capsys, cache, argv, fragment):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("hpstudy: error: ") and err.count("\n") == 1 and fragment in err


def test_data_download_cifar10(capsys, cache, tmp_path, monkeypatch):
    archive, md5 = write_archive(tmp_path)
    monkeypatch.setattr(data.cifar10, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(data.cifar10, "CIFAR10_MD5", md5)
    code, out, _ = run_cli(capsys, "data", "download", "cifar10", "--dest", str(tmp_path / "here"))
    assert code == 0 and f"ready in {tmp_path / 'here' / 'cifar-10-batches-py'}" in out
    assert data.load("cifar10", data_dir=str(tmp_path / "here"), download=False).train.x.shape[1:] == (32, 32, 3)


def test_data_download_fashion_mnist_and_cifar100_then_info(capsys, cache, tmp_path, monkeypatch):
    write_mnist(tmp_path / "upstream")
    monkeypatch.setattr(data.mnist, "FASHION_MNIST_URL", (tmp_path / "upstream").as_uri() + "/")
    monkeypatch.setattr(data.mnist, "FASHION_MNIST_MD5", md5s(tmp_path / "upstream"))
    archive, sha256 = write_cifar100_archive(tmp_path)
    monkeypatch.setattr(data.cifar100, "CIFAR100_URL", archive.as_uri())
    monkeypatch.setattr(data.cifar100, "CIFAR100_SHA256", sha256)
    code, out, err = run_cli(capsys, "data", "download", "fashion_mnist", "--dest", str(tmp_path / "fm"))
    assert code == 0 and f"fashion_mnist: ready in {tmp_path / 'fm'}" in out, err
    code, out, _ = run_cli(capsys, "data", "info", "fashion_mnist", "--data-dir", str(tmp_path / "fm"))
    assert code == 0 and "fashion_mnist: 10 classes, images 28x28x1 uint8" in out
    assert "splits: train 90, validation 10, test 20" in out and "Ankle boot" in out
    code, out, err = run_cli(capsys, "data", "download", "cifar100")
    assert code == 0 and f"ready in {cache / 'cifar-100-python'}" in out, err
    code, out, _ = run_cli(capsys, "data", "info", "cifar100", "--label-mode", "coarse")
    assert code == 0 and "cifar100: 20 classes, images 32x32x3 uint8" in out and COARSE[19] in out
    _, out, _ = run_cli(capsys, "data", "list")
    assert any(line.startswith("cifar100") and " yes " in line for line in out.splitlines()), out


def test_data_download_cinic10_then_info(capsys, kaggle_zip, cache):
    calls, expected = kaggle_zip
    code, out, err = run_cli(capsys, "data", "download", "cinic10")
    assert code == 0 and calls == ["mengcius/cinic10"] and str(cache / "cinic10") in out, err
    code, out, _ = run_cli(capsys, "data", "info", "cinic10")
    assert code == 0 and "splits: train 20, validation 20, test 20" in out and "split off" not in out
    run_cli(capsys, "data", "download", "cinic10")
    assert calls == ["mengcius/cinic10"], "a second download finds the data in place"


def test_data_download_cinic10_other_slug(capsys, kaggle_zip, tmp_path):
    calls, _ = kaggle_zip
    code, _, _ = run_cli(capsys, "data", "download", "cinic10", "--slug", "someone/cinic-copy",
                         "--dest", str(tmp_path / "mine"))
    assert code == 0 and calls == ["someone/cinic-copy"]
    assert (tmp_path / "mine" / "valid" / "truck").is_dir()


def test_a_cinic10_study_downloads_decodes_and_trains(tmp_path, kaggle_zip):
    """From nothing on disk to a finished study: Kaggle zip, extraction, decoding, cache, training."""
    calls, expected = kaggle_zip
    path = write_study(tmp_path, """
        name: cinic
        data: {dataset: cinic10}
        preprocess: {flip: true, crop_padding: 4}
        model: {conv_layers: 1, filters: 4, dense_units: 8}
        train: {epochs: 1, batch_size: 16}
        search: {tuner: random, max_trials: 1}
    """, name="cinic")
    study = hpstudy.run(path, results_dir=tmp_path / "results")
    assert calls == ["mengcius/cinic10"]
    assert (study.trials.status == "COMPLETED").all()
    assert study.best["class_names"] == CINIC_CLASSES
    dataset = data.load("cinic10", download=False)
    for split, (x, y) in zip((dataset.train, dataset.validation, dataset.test), expected.values()):
        np.testing.assert_array_equal(split.x, x)
        np.testing.assert_array_equal(split.y, y)


def test_data_list_presence_checks_the_right_kind(capsys, cache, tmp_path):
    (tmp_path / "file.npz").write_bytes(b"")
    for given, folder, npz in ((tmp_path / "file.npz", "no", "yes"), (tmp_path, "yes", "no")):
        code, out, _ = run_cli(capsys, "data", "list", "--data-dir", str(given))
        rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:]}
        assert code == 0 and (rows["folder"], rows["npz"]) == (folder, npz), out
    code, _, err = run_cli(capsys, "data", "info", "folder", "--data-dir", str(tmp_path / "file.npz"))
    assert code == 2 and f"{tmp_path / 'file.npz'}: is a file, not a folder" in err
    code, _, err = run_cli(capsys, "data", "info", "npz", "--data-dir", str(tmp_path))
    assert code == 2 and f"{tmp_path}: is a folder, not a file" in err


def test_data_list_shows_decoded_copies(capsys, cache, tmp_path):
    write_tree(tmp_path / "imgs", ["a", "b"], 10)

    def decoded(out):
        return {line.split()[0]: line for line in out.splitlines()[2:]}
    _, out, _ = run_cli(capsys, "data", "list")
    assert "decoded" in out.splitlines()[1] and " - " in decoded(out)["folder"]
    data.load("folder", data_dir=str(tmp_path / "imgs"))
    data.load("folder", data_dir=str(tmp_path / "imgs"), image_size=8)
    size = sum(f.stat().st_size for f in (cache / "decoded").rglob("*") if f.is_file())
    _, out, _ = run_cli(capsys, "data", "list")
    assert f" 2 ({size / 1000:.1f} kB) " in decoded(out)["folder"], out
    assert " - " in decoded(out)["cinic10"] and str(cache / "decoded") not in decoded(out)["folder"]


def test_data_info_image_size(capsys, cache, tmp_path):
    code, out, err = run_cli(capsys, "data", "info", "digits", "--image-size", "64")
    assert code == 2 and out == "" and "data.image_size: the digits dataset has one image size" in err
    write_tree(tmp_path / "imgs", ["a", "b"], 10)
    code, out, _ = run_cli(capsys, "data", "info", "folder", "--data-dir", str(tmp_path / "imgs"), "--image-size", "8")
    assert code == 0 and "images 8x8x3" in out
    for bad in ("4", "1025", "x"):   # the range of data.image_size in a study file
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["data", "info", "folder", "--image-size", bad])
        assert exit_info.value.code == 2 and "expected an integer in [8, 1024]" in capsys.readouterr().err


# ---------------------------------------------------------------- download destinations

def assert_error(result, *parts):
    code, out, err = result
    assert code == 2 and out == "" and err.startswith("hpstudy: error: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err, err
    return err


def test_cinic10_download_into_a_folder_holding_something_else(capsys, kaggle_zip, cache, tmp_path):
    calls, _ = kaggle_zip
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own files")
    for extra in ([], ["--slug", "someone/cinic-copy"]):
        err = assert_error(run_cli(capsys, "data", "download", "cinic10", "--dest", str(mine), *extra),
                           str(mine), "is not empty", "choose an empty or new folder")
        assert "delete" not in err
    assert not calls and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    (cache / "cinic10" / "junk").mkdir(parents=True)   # the cache folder is ours: deleting it is fine
    assert_error(run_cli(capsys, "data", "download", "cinic10"), f"delete {cache / 'cinic10'} and run again")
    assert not calls


def test_cinic10_download_without_cinic10_inside(capsys, kaggle_zip, cache, tmp_path):
    calls, _ = kaggle_zip
    shutil.rmtree(tmp_path / "tree" / "test")   # the Kaggle dataset lacks test/
    err = assert_error(run_cli(capsys, "data", "download", "cinic10", "--dest", str(tmp_path / "new"), "--slug", "a/b"),
                       str(tmp_path / "new"), "the Kaggle dataset a/b holds no CINIC-10", "--slug")
    assert "delete" not in err and calls == ["a/b"]
    assert_error(run_cli(capsys, "data", "download", "cinic10"), f"delete {cache / 'cinic10'} and run again")


def test_cinic10_slug_downloads_into_the_cache(capsys, kaggle_zip, cache):
    calls, _ = kaggle_zip
    code, out, err = run_cli(capsys, "data", "download", "cinic10", "--slug", "someone/cinic-copy")
    assert code == 0 and calls == ["someone/cinic-copy"] and f"ready in {cache / 'cinic10'}" in out, err
    assert data.load("cinic10", download=False).num_classes == 10


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "mnist", "cinic10"])
def test_download_destination_that_is_a_file(capsys, kaggle_zip, tmp_path, monkeypatch, name):
    calls, _ = kaggle_zip
    monkeypatch.setattr(data.cifar10, "CIFAR10_URL", (tmp_path / "unreachable.tar.gz").as_uri())
    monkeypatch.setattr(data.cifar100, "CIFAR100_URL", (tmp_path / "unreachable.tar.gz").as_uri())
    monkeypatch.setattr(data.mnist, "MNIST_URL", (tmp_path / "unreachable").as_uri() + "/")
    afile = tmp_path / "afile"
    afile.write_text("a file")
    for dest in (afile, afile / "below"):
        assert_error(run_cli(capsys, "data", "download", name, "--dest", str(dest)),
                     f"{afile}: is a file, not a folder", "choose")
    monkeypatch.setenv("HPSTUDY_DATA_DIR", str(afile))
    assert_error(run_cli(capsys, "data", "download", name), f"{afile}: is a file, not a folder",
                 "set HPSTUDY_DATA_DIR to a folder")
    assert not calls and afile.read_text() == "a file"


# ---------------------------------------------------------------- permissions

def run_unprivileged(code: str, *args: str) -> str:
    """Run python ``code`` where file permissions apply; returns its standard output.

    Root (as in CI) ignores permissions, so there the code runs under setpriv without the
    capabilities that override them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH).
    """
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv to test file permissions as root")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    done = subprocess.run([*prefix, sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


_CLI = """
import contextlib, io, json, sys, traceback
from hpstudy import cli
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except BaseException:
            traceback.print_exc()
            code = "traceback"
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def cli_unprivileged(*argvs: list[str]) -> list[tuple]:
    """(exit code, stdout, stderr) of each command line, run in one unprivileged process."""
    return [tuple(r) for r in json.loads(run_unprivileged(_CLI, json.dumps(argvs)).splitlines()[-1])]


@pytest.fixture
def locked(tmp_path):
    """Make folders and files unreadable (mode 000) for the test, and readable again afterwards."""
    done = []

    def lock(*paths):
        for path in paths:
            done.append((path, path.stat().st_mode))
            path.chmod(0)

    yield lock
    for path, mode in reversed(done):
        path.chmod(mode)


def test_unreadable_data_is_a_one_line_error(cache, tmp_path, locked):
    shut = tmp_path / "shut"                        # cannot be entered: everything below is out of reach
    write_tree(shut / "imgs", ["a", "b"], 2)
    write_cifar(shut)
    write_cifar100(shut)
    write_mnist(shut / "mnist")
    np.savez(shut / "d.npz", x_train=np.zeros((2, 8, 8, 3), np.uint8), y_train=np.arange(2))
    closed = tmp_path / "closed"                    # a folder that cannot be listed itself
    for split in ("train", "valid", "test"):
        write_tree(closed / split, ["a", "b"], 2)
    (tmp_path / "d.npz").write_bytes((shut / "d.npz").read_bytes())
    write_tree(tmp_path / "imgs", ["a", "b"], 3)
    write_mnist(tmp_path / "idx")
    labels = tmp_path / "idx" / "train-labels-idx1-ubyte.gz"
    locked(shut, closed, tmp_path / "d.npz", tmp_path / "imgs" / "b" / "img001.png", labels)
    cases = {
        ("info", "folder", "--data-dir", str(shut / "imgs")):
            [str(shut / "imgs"), "cannot read it (Permission denied)"],
        ("info", "folder", "--data-dir", str(closed)): [str(closed), "cannot read it (Permission denied)"],
        ("info", "cinic10", "--data-dir", str(shut / "x")): [str(shut / "x"), "Permission denied"],
        ("info", "cinic10", "--data-dir", str(closed)): [str(closed), "Permission denied"],
        ("info", "cifar10", "--data-dir", str(shut)): [str(shut), "Permission denied"],
        ("info", "cifar100", "--data-dir", str(shut)): [str(shut), "Permission denied"],
        ("info", "mnist", "--data-dir", str(shut / "mnist")): [str(shut / "mnist"), "Permission denied"],
        ("info", "mnist", "--data-dir", str(tmp_path / "idx")): [f"{labels}: cannot read it (Permission denied)"],
        ("info", "npz", "--data-dir", str(shut / "d.npz")): [str(shut / "d.npz"), "Permission denied"],
        ("info", "npz", "--data-dir", str(tmp_path / "d.npz")): [str(tmp_path / "d.npz"), "Permission denied"],
        ("list", "--data-dir", str(shut / "imgs")): [str(shut / "imgs"), "Permission denied", "permissions"],
        ("download", "cinic10", "--dest", str(shut / "cinic10")): [str(shut / "cinic10"), "Permission denied"],
        ("info", "folder", "--data-dir", str(tmp_path / "imgs")):
            [f"{tmp_path / 'imgs' / 'b' / 'img001.png'}: cannot read it (Permission denied); fix its permissions"],
    }
    for argv, result in zip(cases, cli_unprivileged(*(["data", *argv] for argv in cases))):
        assert_error(result, *cases[argv])


def test_unreadable_cache_folder(cache, locked):
    cache.mkdir()
    locked(cache)
    results = cli_unprivileged(["data", "list"], ["data", "info", "cinic10"], ["data", "info", "cifar10"])
    for result in results:
        assert_error(result, str(cache), "Permission denied")
