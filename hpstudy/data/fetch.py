"""Downloading and unpacking: checksummed downloads and archive extraction that cannot escape."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from hpstudy.errors import DataError


def fetch(url: str, dest: Path, md5: str) -> Path:
    """Download ``url`` to ``dest`` (checked against ``md5``) unless a good copy is there."""
    dest = Path(dest)
    if dest.is_file() and md5_of(dest) == md5:
        return dest
    # Write to .part and rename only once verified, so ``dest`` is never a partial file.
    part = dest.with_suffix(dest.suffix + ".part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise DataError(f"cannot download {url} ({reason}); download it by hand and save it "
                        f"as {dest}") from e
    if digest.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise DataError(f"{url}: checksum mismatch: expected MD5 {md5}, got {digest.hexdigest()}; "
                        f"try again, or download it by hand and save it as {dest}")
    os.replace(part, dest)
    return dest


def md5_of(path: Path) -> str:
    """The MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def extract(archive: Path, root: Path, folder: str) -> Path:
    """Extract ``archive`` (.tar.gz or .zip) and move its ``folder`` into ``root`` in one rename.

    Only a complete folder ever appears at ``root / folder``; members with absolute paths, ``..``
    or links out of the archive are refused.
    """
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
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
        try:
            os.replace(tmp / folder, root / folder)
        except OSError:
            if not (root / folder).is_dir():  # else another process finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root / folder


def extract_zip(archive: Path, dest: Path) -> None:
    """Extract a zip into ``dest``, refusing members that would land outside it."""
    with zipfile.ZipFile(archive) as z:
        for member in z.namelist():
            target = (dest / member).resolve()
            if member.startswith(("/", "\\")) or not target.is_relative_to(dest.resolve()):
                raise DataError(f"{archive}: refused to extract {member!r}, which points outside the archive's folder")
        z.extractall(dest)
