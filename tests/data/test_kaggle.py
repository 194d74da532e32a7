"""Tests for hpstudy.data.kaggle: KaggleApi.dataset_download_files (the network) is replaced, and in
the two tests of new-style tokens KaggleApi._introspect_token (kaggle's own network check of a token).

Credential checks, KaggleApi construction and ``authenticate()``, and the extraction all run for
real, against a home folder, config folders and environment of the test's own.
"""

import ast
import io
import os
import sys
import traceback
import zipfile
from pathlib import Path

import pytest
import requests
from PIL import Image

from hpstudy.data import kaggle
from hpstudy.errors import DataError
from tests.helpers import run_unprivileged

KEY = "f00dfacecafe5ec12e7k3y0123456789"  # distinctive: must never appear in an error
TOKEN = "KGAT_5ec12e7t0k3nabcdef0123456789"
SLUG = "mengcius/cinic10"
CLASSES = ("airplane", "cat")


def png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, "PNG")
    return buf.getvalue()


class FakeKaggle:
    """Stands in for the network: writes ``<path>/<dataset-name>.zip`` laid out as Kaggle's CINIC-10."""

    def __init__(self):
        self.calls, self.error, self.top, self.extra, self.corrupt = [], None, "", {}, False

    def __call__(self, api, dataset, path=None, force=False, quiet=True, unzip=False, licenses=()):
        self.calls.append(dict(dataset=dataset, path=path, quiet=quiet, config=dict(api.config_values),
                               token_env=os.environ.get("KAGGLE_API_TOKEN")))
        if self.error is not None:
            raise self.error
        archive = Path(path) / f"{dataset.split('/')[1]}.zip"
        archive.parent.mkdir(parents=True, exist_ok=True)
        if self.corrupt:
            archive.write_bytes(b"PK\x03\x04 this is not a zip file")
            return
        with zipfile.ZipFile(archive, "w") as z:
            for split in ("train", "valid", "test"):
                for c, name in enumerate(CLASSES):
                    for n in range(2):
                        z.writestr(f"{self.top}{split}/{name}/{n}.png", png((200 * c, 10 * n, 50)))
            for member, data in self.extra.items():
                z.writestr(member, data)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home folder of the test's own, with no Kaggle credentials anywhere."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in ("KAGGLE_CONFIG_DIR", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE",
                 "HPSTUDY_CINIC10_SLUG"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def fake(home, monkeypatch):
    # Imported only now, so kaggle's import-time config folder lands in the test's home.
    from kaggle.api.kaggle_api_extended import KaggleApi
    fake = FakeKaggle()
    monkeypatch.setattr(KaggleApi, "dataset_download_files", lambda self, *a, **kw: fake(self, *a, **kw))
    return fake


@pytest.fixture
def env_creds(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", KEY)


def write_config(folder: Path, text=None, mode=0o600) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kaggle.json"
    path.write_text(text if text is not None else f'{{"username": "bob", "key": "{KEY}"}}')
    path.chmod(mode)
    return path


def download_error(dest, slug=SLUG) -> str:
    with pytest.raises(DataError) as info:
        kaggle.download_dataset(slug, dest)
    text = "".join(traceback.format_exception(info.value))
    assert KEY not in text and TOKEN not in text
    return str(info.value)


def assert_layout(dest: Path, top=""):
    for split in ("train", "valid", "test"):
        for name in CLASSES:
            assert sorted(p.name for p in (dest / top / split / name).iterdir()) == ["0.png", "1.png"]
    with Image.open(dest / top / "train" / "cat" / "1.png") as im:
        assert im.size == (4, 4)
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # no zip, download or temporary folder


# ---------------------------------------------------------------- credentials

def test_env_credentials_download_and_unpack(fake, env_creds, tmp_path):
    dest = tmp_path / "data" / "cinic10"
    assert kaggle.download_dataset(SLUG, dest) == dest
    assert_layout(dest)
    (call,) = fake.calls
    assert call["dataset"] == SLUG and call["quiet"] is False
    assert call["config"]["username"] == "alice" and call["config"]["key"] == KEY
    assert os.environ["KAGGLE_KEY"] == KEY and "KAGGLE_CONFIG_DIR" not in os.environ  # environment restored


@pytest.mark.parametrize("where", ["home", "xdg", "config_dir"])
def test_kaggle_json_credentials(fake, home, tmp_path, monkeypatch, where):
    folder = {"home": home / ".kaggle", "xdg": home / ".config" / "kaggle", "config_dir": tmp_path / "conf"}[where]
    if where == "config_dir":
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(folder))
    write_config(folder)
    assert kaggle.credentials() == kaggle.Credentials("bob", KEY, str(folder / "kaggle.json"))
    assert KEY not in repr(kaggle.credentials())
    kaggle.download_dataset(SLUG, tmp_path / "data" / "cinic10")
    assert fake.calls[0]["config"]["username"] == "bob" and fake.calls[0]["config"]["key"] == KEY
    assert "KAGGLE_USERNAME" not in os.environ and "KAGGLE_KEY" not in os.environ


@pytest.mark.parametrize("where", ["env", "kaggle.json"])
def test_key_never_printed_on_success(fake, home, tmp_path, monkeypatch, capfd, where):
    if where == "env":
        monkeypatch.setenv("KAGGLE_USERNAME", "alice")
        monkeypatch.setenv("KAGGLE_KEY", KEY)
    else:
        write_config(home / ".kaggle")
    capfd.readouterr()
    assert_layout(kaggle.download_dataset(SLUG, tmp_path / "data" / "cinic10"))
    out, err = capfd.readouterr()
    assert fake.calls and KEY not in out and KEY not in err


_CREDENTIALS = """
from hpstudy.data import kaggle
from hpstudy.errors import DataError
try:
    print(kaggle.credentials())
except DataError as e:
    print("DataError:", e)
"""


def test_unreadable_kaggle_json_or_folder(home):
    path = write_config(home / ".kaggle", mode=0)
    try:
        assert run_unprivileged(_CREDENTIALS) == (f"DataError: {path}: cannot read it (Permission denied); make it "
                                                  f"readable by you only: chmod 600 {path}\n")
        path.chmod(0o600)
        path.parent.chmod(0)
        assert run_unprivileged(_CREDENTIALS) == (f"DataError: {path.parent}: cannot look for kaggle.json in it "
                                                  f"(Permission denied); make it yours and accessible to you: "
                                                  f"chmod 700 {path.parent}\n")
    finally:
        path.parent.chmod(0o700)
        path.chmod(0o600)


def test_dest_that_cannot_be_a_folder(fake, env_creds, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("a file")
    for dest in (afile, afile / "cinic10"):
        message = download_error(dest)
        assert message.startswith(f"{afile}: is a file, not a folder; choose another folder")
    assert not fake.calls and afile.read_text() == "a file"


def test_group_readable_kaggle_json_refused(fake, home, tmp_path):
    path = write_config(home / ".kaggle", mode=0o644)
    message = download_error(tmp_path / "cinic10")
    assert f"chmod 600 {path}" in message and not fake.calls


@pytest.mark.parametrize("config_dir", [False, True])
def test_missing_credentials_names_the_path(fake, home, tmp_path, monkeypatch, config_dir):
    expected = home / ".kaggle" / "kaggle.json"
    if config_dir:
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "conf"))
        expected = tmp_path / "conf" / "kaggle.json"
    message = download_error(tmp_path / "cinic10")
    assert f"save it as {expected}" in message and f"chmod 600 {expected}" in message
    assert "https://www.kaggle.com/settings" in message and "KAGGLE_USERNAME and KAGGLE_KEY" in message
    assert not fake.calls and not (tmp_path / "cinic10").exists()


@pytest.mark.parametrize("present, missing", [("KAGGLE_USERNAME", "KAGGLE_KEY"), ("KAGGLE_KEY", "KAGGLE_USERNAME")])
def test_only_one_env_var(fake, monkeypatch, tmp_path, present, missing):
    monkeypatch.setenv(present, KEY if present == "KAGGLE_KEY" else "alice")
    message = download_error(tmp_path / "cinic10")
    assert message.startswith(f"{present} is set but {missing} is not") and not fake.calls


@pytest.mark.parametrize("text", [f'{{"username": "bob", "key": "{KEY}"', f'["bob", "{KEY}"]',
                                  f'{{"username": "bob", "token": "{KEY}"}}', f'{{"username": 7, "key": "{KEY}"}}'])
def test_invalid_kaggle_json(fake, home, tmp_path, text):
    path = write_config(home / ".kaggle", text)
    message = download_error(tmp_path / "cinic10")
    assert message.startswith(str(path)) and not fake.calls


def test_api_token_hidden_when_a_key_is_set(fake, env_creds, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    kaggle.download_dataset(SLUG, tmp_path / "cinic10")
    assert fake.calls[0]["token_env"] is None and fake.calls[0]["config"]["username"] == "alice"
    assert os.environ["KAGGLE_API_TOKEN"] == TOKEN


def test_api_token_alone_is_left_to_kaggle(fake, monkeypatch, tmp_path):
    from kaggle.api.kaggle_api_extended import KaggleApi
    monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    monkeypatch.setattr(KaggleApi, "_introspect_token", lambda self, token: "carol" if token == TOKEN else None)
    assert kaggle.credentials() is None
    kaggle.download_dataset(SLUG, tmp_path / "cinic10")
    assert fake.calls[0]["config"]["username"] == "carol" and fake.calls[0]["token_env"] == TOKEN
    fake.error = http_error(403, f"Forbidden: bearer {TOKEN}")
    message = download_error(tmp_path / "other")
    assert "for user carol" in message


def test_api_token_rejected_by_kaggle(fake, monkeypatch, tmp_path):
    from kaggle.api.kaggle_api_extended import KaggleApi
    monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    monkeypatch.setattr(KaggleApi, "_introspect_token", lambda self, token: None)  # kaggle then exits
    message = download_error(tmp_path / "cinic10")
    assert message.startswith("Kaggle did not accept the token in KAGGLE_API_TOKEN") and not fake.calls


# ---------------------------------------------------------------- download failures

def http_error(status: int, text: str) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(text, response=response)


@pytest.mark.parametrize("status, expected", [
    (401, "Kaggle refused the credentials for user alice (HTTP 401"),
    (403, "Kaggle refused the credentials for user alice (HTTP 403"),
    (404, f"no dataset {SLUG} on Kaggle (HTTP 404): check the name or set HPSTUDY_CINIC10_SLUG"),
    (500, f"Kaggle answered HTTP 500 for {SLUG}"),
])
def test_http_errors(fake, env_creds, tmp_path, status, expected):
    fake.error = http_error(status, f"{status} Client Error for https://api.kaggle.com/v1/x?key={KEY} auth=alice:{KEY}")
    message = download_error(tmp_path / "cinic10")
    assert message.startswith(expected) and ("***" in message) == (status != 404)
    if status in (401, 403):
        assert f"https://www.kaggle.com/datasets/{SLUG}" in message
    assert not (tmp_path / "cinic10").exists()


def test_network_and_other_errors(fake, env_creds, tmp_path):
    fake.error = requests.ConnectionError(f"Max retries exceeded (key {KEY})")
    assert download_error(tmp_path / "cinic10").startswith("cannot reach Kaggle (Max retries exceeded (key ***))")
    fake.error = ValueError("Downloaded file size (3) does not match expected size (9)")
    assert "failed (ValueError: Downloaded file size" in download_error(tmp_path / "cinic10")


def test_kaggle_package_missing(fake, env_creds, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kaggle.api.kaggle_api_extended", None)  # makes the import fail
    assert download_error(tmp_path / "cinic10").endswith("needs the kaggle package: pip install kaggle")


# ---------------------------------------------------------------- unpacking

def test_top_level_folder_is_kept(fake, env_creds, tmp_path):
    fake.top = "CINIC-10/"
    assert_layout(kaggle.download_dataset(SLUG, tmp_path / "data" / "cinic10"), top="CINIC-10")


def test_zip_slip_refused(fake, env_creds, tmp_path):
    fake.extra = {"../evil.txt": b"gotcha"}
    message = download_error(tmp_path / "data" / "cinic10")
    assert "refused to extract '../evil.txt'" in message
    assert not list((tmp_path / "data").iterdir())  # zip and download folder deleted, nothing extracted


def test_corrupt_zip(fake, env_creds, tmp_path):
    fake.corrupt = True
    message = download_error(tmp_path / "cinic10")
    assert message.startswith(f"{tmp_path / '.cinic10.download' / 'cinic10.zip'}: not a valid zip file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_existing_dest_is_not_downloaded_again(fake, tmp_path):
    dest = tmp_path / "cinic10"
    (dest / "train").mkdir(parents=True)
    assert kaggle.download_dataset(SLUG, dest) == dest and not fake.calls  # not even credentials are needed


def test_empty_dest_is_filled(fake, env_creds, tmp_path):
    (tmp_path / "data" / "cinic10").mkdir(parents=True)
    assert_layout(kaggle.download_dataset(SLUG, tmp_path / "data" / "cinic10"))


def test_crash_mid_extract_leaves_no_dest(fake, env_creds, tmp_path, monkeypatch):
    def crash(self, path=None, *args, **kwargs):
        Path(path, "train").mkdir()
        raise KeyboardInterrupt("pressed while unpacking")
    dest = tmp_path / "data" / "cinic10"
    with monkeypatch.context() as m:
        m.setattr(zipfile.ZipFile, "extractall", crash)
        with pytest.raises(KeyboardInterrupt, match="pressed while unpacking"):
            kaggle.download_dataset(SLUG, dest)
    assert sorted(p.name for p in dest.parent.iterdir()) == [".cinic10.download"]  # zip kept, to unpack again
    assert_layout(kaggle.download_dataset(SLUG, dest))


# ---------------------------------------------------------------- slugs

@pytest.mark.parametrize("slug", ["cinic10", "a/b/c", "../x", "a/..", "a/", "/b", "a b/c", "", "mengcius/cinic10\n"])
def test_bad_slug(fake, env_creds, tmp_path, slug):
    assert "is not a Kaggle dataset name" in download_error(tmp_path / "cinic10", slug) and not fake.calls


def test_cinic10_slug(monkeypatch):
    monkeypatch.delenv("HPSTUDY_CINIC10_SLUG", raising=False)
    assert kaggle.cinic10_slug() == kaggle.CINIC10_SLUG == "mengcius/cinic10"
    monkeypatch.setenv("HPSTUDY_CINIC10_SLUG", "someone/cinic-10-mirror")
    assert kaggle.cinic10_slug() == "someone/cinic-10-mirror"
    monkeypatch.setenv("HPSTUDY_CINIC10_SLUG", "cinic10")
    with pytest.raises(DataError, match="^HPSTUDY_CINIC10_SLUG 'cinic10' is not a Kaggle dataset name"):
        kaggle.cinic10_slug()


def test_kaggle_is_imported_only_when_downloading():
    # Statically (a subprocess importing hpstudy.data would take seconds): kaggle authenticates at import.
    tree = ast.parse(Path(kaggle.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top for a in n.names] + [n.module for n in top if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n and n.split(".")[0] in ("kaggle", "kagglesdk", "requests")]
