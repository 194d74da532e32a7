"""Kaggle datasets: credential checks, then a download that appears at ``dest`` only when complete. The key or
token never appears in an error: messages are scrubbed and kaggle's exceptions not chained.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shutil
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from hpstudy.data.fetch import extract_zip, make_folder, staged
from hpstudy.data.paths import kind
from hpstudy.errors import DataError
from hpstudy.text import exception_line

CINIC10_SLUG = "mengcius/cinic10"
_SETTINGS = 'https://www.kaggle.com/settings (Account → "Create New Token")'
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_ENV = ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR")


@dataclass(frozen=True)
class Credentials:
    """A Kaggle username and API key, and where they came from (for messages); repr hides the key."""

    username: str
    key: str = field(repr=False)
    source: str = ""


def cinic10_slug() -> str:
    """The Kaggle dataset holding CINIC-10: $HPSTUDY_CINIC10_SLUG if set, else CINIC10_SLUG."""
    slug = os.environ.get("HPSTUDY_CINIC10_SLUG", "").strip() or CINIC10_SLUG
    return _check_slug(slug, "HPSTUDY_CINIC10_SLUG" if slug != CINIC10_SLUG else "slug")


def _check_slug(slug: str, what: str = "slug") -> str:
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise DataError(f"{what} {slug!r} is not a Kaggle dataset name: use owner/name, as in {CINIC10_SLUG}")
    return slug


# Credentials: KAGGLE_USERNAME + KAGGLE_KEY, else ``kaggle.json`` in $KAGGLE_CONFIG_DIR, else ~/.kaggle,
# else $XDG_CONFIG_HOME/kaggle (kaggle's order), checked here with one-line DataErrors before the
# ``kaggle`` package is imported. With no key anywhere, a new-style token (KAGGLE_API_TOKEN,
# ~/.kaggle/access_token, ``kaggle auth login``) is left to kaggle to use itself.
def credentials() -> Credentials | None:
    """The Kaggle username and key to use; None when only a new-style token is set up for kaggle."""
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if user or key:
        if not (user and key):
            missing, present = ("KAGGLE_KEY", "KAGGLE_USERNAME") if user else ("KAGGLE_USERNAME", "KAGGLE_KEY")
            raise DataError(f"{present} is set but {missing} is not: set both, or unset both to use kaggle.json")
        return Credentials(user, key, "KAGGLE_USERNAME/KAGGLE_KEY")
    files = _config_files()
    for path in files:
        if _is_file(path):
            return _read_config(path)
    if _token_source():
        return None
    raise DataError(f"no Kaggle credentials: create an API token at {_SETTINGS}, save it as {files[0]} "
                    f"and run chmod 600 {files[0]}; or set KAGGLE_USERNAME and KAGGLE_KEY")


def _config_files() -> list[Path]:
    """Where kaggle.json may be, read now (not at import) since the environment can change."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return [Path(os.environ["KAGGLE_CONFIG_DIR"]).expanduser() / "kaggle.json"]
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path.home() / ".kaggle" / "kaggle.json", xdg / "kaggle" / "kaggle.json"]


def _token_source() -> str | None:
    """Where a new-style Kaggle token is, if any (kaggle reads and checks these itself)."""
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    folder = Path.home() / ".kaggle"
    found = [folder / n for n in ("access_token", "access_token.txt", "credentials.json") if _is_file(folder / n)]
    return str(found[0]) if found else None


def _is_file(path: Path) -> bool:
    """Whether the file ``path`` is there; a folder on the way that cannot be entered is a DataError."""
    try:
        return path.is_file()
    except OSError as e:
        raise DataError(f"{path.parent}: cannot look for {path.name} in it ({exception_line(e)}); make it yours and "
                        f"accessible to you: chmod 700 {path.parent}") from None


def _read_config(path: Path) -> Credentials:
    fix = f"download a new token at {_SETTINGS}"
    try:
        if os.name == "posix" and path.stat().st_mode & 0o044:
            raise DataError(f"{path} holds your Kaggle API key and is readable by other users: run chmod 600 {path}")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({exception_line(e)}); make it readable by you only: "
                        f"chmod 600 {path}") from None
    except ValueError as e:  # JSONDecodeError or UnicodeDecodeError; never chained: it holds the text
        raise DataError(f"{path} is not valid JSON ({type(e).__name__}); {fix}") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data[k] for k in ("username", "key")):
        raise DataError(f'{path} must be a JSON object with string "username" and "key"; {fix}')
    return Credentials(data["username"], data["key"], str(path))


def download_dataset(slug: str, dest: Path, fix: str = "choose another folder") -> Path:
    """Download Kaggle dataset ``slug`` (owner/name) and unpack all of it as the folder ``dest``.

    ``dest`` appears in one rename, complete; a non-empty ``dest`` is returned without a download.
    ``fix`` says what to do when ``dest`` cannot be made (a file is in the way, no permission).
    """
    slug, dest = _check_slug(slug), Path(dest).expanduser()
    found = kind(dest)
    if found == "folder" and any(dest.iterdir()):
        return dest
    if found not in (None, "folder"):
        raise DataError(f"{dest}: is a file, not a folder; {fix}")
    creds = credentials()
    # A fixed folder (not a temporary one) so that kaggle resumes an interrupted download; made (with
    # the folders above dest) before downloading, so that a folder that cannot be made fails at once.
    folder = make_folder(dest.parent / f".{dest.name}.download", fix)
    archive = _download(slug, folder, creds)
    _extract(archive, dest, fix)
    shutil.rmtree(folder, ignore_errors=True)
    return dest


def _download(slug: str, folder: Path, creds: Credentials | None) -> Path:
    """Authenticate and download ``slug`` into ``folder``; returns the zip kaggle wrote."""
    secrets = _secrets(creds)
    # stdout is silenced around kaggle's authentication (which its import runs too): its help would contradict ours.
    with _kaggle_environment(creds):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                from kaggle.api.kaggle_api_extended import KaggleApi
        except ImportError:
            raise DataError("downloading from Kaggle needs the kaggle package: pip install kaggle") from None
        api = KaggleApi()
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                api.authenticate()  # exits when it finds nothing it accepts
            secrets.append(api.config_values.get("token") or "")
            api.dataset_download_files(slug, path=str(folder), quiet=False)  # prints its progress bar
        except SystemExit:
            what = f"the credentials from {creds.source}" if creds else f"the token in {_token_source()}"
            raise DataError(f"Kaggle did not accept {what}: create a new token at {_SETTINGS}") from None
        except Exception as e:  # noqa: BLE001 - every failure becomes one scrubbed line
            who = creds.username if creds else api.config_values.get("username") or "(token)"
            raise DataError(_scrub(_failure(e, slug, who, folder), secrets)) from None
    archive = folder / f"{slug.split('/')[1]}.zip"
    if not archive.is_file():
        raise DataError(f"the Kaggle download of {slug} left no {archive}; delete {folder} and run again")
    return archive


# The credentials reach kaggle as KAGGLE_USERNAME / KAGGLE_KEY, set only around its import, ``authenticate()``
# and the download; KAGGLE_API_TOKEN is hidden meanwhile, so kaggle uses exactly those (without its network check
# of the token).
@contextlib.contextmanager
def _kaggle_environment(creds: Credentials | None):
    """Pass ``creds`` to kaggle through its environment variables; restore them afterwards."""
    saved = {name: os.environ.get(name) for name in _ENV}
    try:
        if creds is not None:
            os.environ.update(KAGGLE_USERNAME=creds.username, KAGGLE_KEY=creds.key)
            os.environ.pop("KAGGLE_API_TOKEN", None)  # else kaggle prefers it to the key we checked
            if creds.source.endswith("kaggle.json"):  # its import then creates no config folder elsewhere
                os.environ["KAGGLE_CONFIG_DIR"] = str(Path(creds.source).parent)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _secrets(creds: Credentials | None) -> list[str]:
    """Strings that must never be shown: the key, as sent in HTTP basic auth too, and any token."""
    found = [os.environ.get("KAGGLE_API_TOKEN", "")]
    if creds is not None:
        found += [creds.key, base64.b64encode(f"{creds.username}:{creds.key}".encode()).decode()]
    return found


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _failure(e: Exception, slug: str, who: str, folder: Path) -> str:
    """One line saying why the Kaggle download of ``slug`` failed and what to do."""
    import requests
    import urllib3

    text = exception_line(e)
    page = f"https://www.kaggle.com/datasets/{slug}"
    status = getattr(getattr(e, "response", None), "status_code", None)
    if isinstance(e, requests.HTTPError) and status in (401, 403):
        return (f"Kaggle refused the credentials for user {who} (HTTP {status}: {text}): check the token "
                f"(new one at {_SETTINGS}) and accept the dataset's terms on {page}")
    if isinstance(e, requests.HTTPError) and status == 404:
        hint = " or set HPSTUDY_CINIC10_SLUG" if slug == cinic10_slug() else ""
        return f"no dataset {slug} on Kaggle (HTTP 404): check the name{hint}"
    if isinstance(e, requests.HTTPError) and status:
        return f"Kaggle answered HTTP {status} for {slug} ({text}); try again later"
    if isinstance(e, (requests.RequestException, urllib3.exceptions.HTTPError)):
        return f"cannot reach Kaggle ({text}); check the network and run again (the download resumes)"
    if isinstance(e, OSError):
        return f"cannot save the download of {slug} in {folder} ({text})"
    return f"downloading {slug} from Kaggle failed ({type(e).__name__}: {text}); run again to resume"


def _extract(archive: Path, dest: Path, fix: str) -> None:
    """Unpack ``archive`` into a temporary folder beside ``dest``, rename it to ``dest``, delete the zip."""
    with staged(dest, fix=fix) as tmp:
        try:
            extract_zip(archive, tmp)  # refuses members that point outside tmp
        except (zipfile.BadZipFile, zlib.error, EOFError, DataError) as e:
            archive.unlink(missing_ok=True)  # else kaggle would find it up to date and not download it again
            with contextlib.suppress(OSError):
                archive.parent.rmdir()  # the download folder, if now empty
            if isinstance(e, DataError):  # a member pointing outside the folder
                raise DataError(f"{e}; deleted the zip") from None
            raise DataError(f"{archive}: not a valid zip file ({e}); deleted it, run again to download it "
                            "again") from None
        except OSError as e:
            raise DataError(f"cannot extract {archive} into {dest.parent} ({e})") from e
    archive.unlink(missing_ok=True)
