"""`hpstudy data list|info|download`, and CINIC-10 from a Kaggle-style zip to a trained study.

Only the network is replaced: KaggleApi.dataset_download_files writes a zip laid out as Kaggle's
CINIC-10 download (train/, valid/, test/ of class folders of 32×32 PNGs).
"""
import zipfile

import numpy as np
import pytest

import hpstudy
from hpstudy import cli, data
from tests.conftest import write_study
from tests.test_data import write_archive, write_cifar
from tests.test_data_files import CINIC_CLASSES, write_tree


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
    assert rows == {"cifar10": "no", "cinic10": "no", "digits": "yes", "folder": "no", "npz": "no"}
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
    for split, (x, y) in zip((dataset.train, dataset.val, dataset.test), expected.values()):
        np.testing.assert_array_equal(split.x, x)
        np.testing.assert_array_equal(split.y, y)
