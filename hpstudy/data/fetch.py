"""Downloading and unpacking: checksummed downloads and archive extraction that cannot escape."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import secrets
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from hpstudy.data.paths import kind
from hpstudy.errors import DataError
from hpstudy.text import exception_line

# A checksum names its algorithm by its length: the sites publish MD5 (32 hex digits) or SHA-256 (64).
_ALGORITHMS = {32: ("md5", "MD5"), 64: ("sha256", "SHA-256")}


def fetch(url: str, dest: Path, checksum: str) -> Path:
    """Download ``url`` to ``dest`` (checked against ``checksum``, an MD5 or SHA-256 hex digest) unless a good
    copy is there."""
    dest = Path(dest)
    algorithm, label = _ALGORITHMS[len(checksum)]
    if dest.is_file() and digest_of(dest, algorithm) == checksum:
        return dest
    # Write to .part and rename only once verified, so ``dest`` is never a partial file.
    part = dest.with_suffix(dest.suffix + ".part")
    digest = hashlib.new(algorithm, usedforsecurity=False)
    make_folder(dest.parent)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise DataError(f"cannot download {url} ({reason}); download it by hand and save it "
                        f"as {dest}") from e
    if digest.hexdigest() != checksum:
        part.unlink(missing_ok=True)
        raise DataError(f"{url}: checksum mismatch: expected {label} {checksum}, got {digest.hexdigest()}; "
                        f"try again, or download it by hand and save it as {dest}")
    try:
        os.replace(part, dest)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise DataError(f"{dest}: cannot save the download here ({exception_line(e)}); move what is "
                        f"there away, or check the permissions of {dest.parent}") from e
    return dest


def digest_of(path: Path, algorithm: str = "md5") -> str:
    """The hex digest of a file by ``algorithm`` ("md5", "sha256"), read in chunks."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def make_folder(folder: Path, fix: str = "choose another folder") -> Path:
    """Create ``folder`` and the folders above it as needed; a file in the way or no permission is a DataError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError as e:
        error = e
    for above in (folder, *folder.parents):  # name the file in the way, if that is the trouble
        with contextlib.suppress(OSError):
            if kind(above) not in (None, "folder"):
                raise DataError(f"{above}: is a file, not a folder; {fix}") from error
    raise DataError(f"{error.filename or folder}: cannot create this folder ({exception_line(error)}); "
                    f"check the permissions of the folder above it, or {fix}") from error


@contextlib.contextmanager
def staged(target: Path, inner: str = "", fix: str = "choose another folder"):
    """Yield a new hidden folder beside ``target`` to fill; on success rename it (or its ``inner``
    sub-folder) to ``target`` in one step, so that ``target`` only ever appears complete.

    An empty folder at ``target`` is replaced; if a non-empty one is there, another process finished
    first and this copy is dropped. The hidden folder is deleted in every case.
    """
    make_folder(target.parent, fix)
    # Not tempfile.mkdtemp: its folders are private (0700); this one honours the umask, as caches are shared.
    tmp = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        tmp.mkdir()
    except OSError as e:
        raise DataError(f"{target.parent}: cannot create a folder here ({exception_line(e)}); check its "
                        f"permissions, or {fix}") from e
    try:
        yield tmp
        try:
            if kind(target) == "folder" and not any(target.iterdir()):
                target.rmdir()  # os.replace onto a folder fails on Windows
            os.replace(tmp / inner, target)
        except OSError as e:
            if not _filled(target):
                raise DataError(f"cannot move {tmp / inner} to {target} ({exception_line(e)}); check the "
                                f"permissions of {target.parent}, or {fix}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _filled(folder: Path) -> bool:
    """Whether ``folder`` is a folder with something in it."""
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:
        return False


def extract(archive: Path, root: Path, folder: str) -> Path:
    """Extract ``archive`` (.tar.gz or .zip) and move its ``folder`` into ``root`` in one rename.

    Only a complete folder ever appears at ``root / folder``; members with absolute paths, ``..``
    or links out of the archive are refused.
    """
    with staged(root / folder, inner=folder) as tmp:
        try:
            if zipfile.is_zipfile(archive):
                extract_zip(archive, tmp)
            else:
                with tarfile.open(archive, "r:*") as tar:
                    tar.extractall(tmp, filter="data")  # refuses absolute paths, "..", devices
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as e:
            raise DataError(f"{archive}: cannot extract ({e}); delete it and try again") from e
        if not (tmp / folder).is_dir():
            raise DataError(f"{archive}: holds no {folder} folder; delete it and download it again")
    return root / folder


def extract_zip(archive: Path, dest: Path) -> None:
    """Extract a zip into ``dest``, refusing members that would land outside it."""
    with zipfile.ZipFile(archive) as z:
        for member in z.namelist():
            target = (dest / member).resolve()
            if member.startswith(("/", "\\")) or not target.is_relative_to(dest.resolve()):
                raise DataError(f"{archive}: refused to extract {member!r}, which points outside the archive's folder")
        z.extractall(dest)
