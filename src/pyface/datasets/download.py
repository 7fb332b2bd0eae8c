"""Where data sets are kept, and downloading a file so that the cache never holds a partial or wrong one."""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..io.atomic import atomic_write

__all__ = ["RemoteFile", "get_data_home", "file_digest", "download"]

_NAMES = {"sha256": "SHA-256", "md5": "MD5"}


@dataclass(frozen=True)
class RemoteFile:
    """A file to download, and the digest (``algorithm``: ``"sha256"`` or ``"md5"``) its publisher gives."""

    filename: str
    url: str
    digest: str
    algorithm: str = "sha256"
    description: str = "the file"


_CHUNK = 1 << 16


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """The folder pyface keeps data sets in.

    ``data_home`` if given, else the environment variable ``PYFACE_DATA``, else ``pyface`` in
    the user's cache folder (``$XDG_CACHE_HOME``, by default ``~/.cache``).
    """
    if data_home is not None:
        return Path(data_home).expanduser()
    if os.environ.get("PYFACE_DATA"):
        return Path(os.environ["PYFACE_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "pyface"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of the file at ``path``."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(remote: RemoteFile, folder: Path, *, quiet: bool) -> Path:
    """Fetch ``remote`` into ``folder``, keeping it only if its SHA-256 matches.

    The bytes go to a temporary file in ``folder`` that is renamed to its final name only
    once complete and its digest verified, so the cache never holds a partial or wrong file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / remote.filename
    if not quiet:
        print(f"Downloading {remote.description} from {remote.url} to {folder}", file=sys.stderr)
    digest = hashlib.new(remote.algorithm)
    with atomic_write(target, mode=0o644) as out:
        try:
            with urllib.request.urlopen(remote.url, timeout=60) as response:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OSError(f"could not download {remote.url}: {reason}") from exc
        if digest.hexdigest() != remote.digest:
            raise OSError(
                f"the file downloaded from {remote.url} has {_NAMES[remote.algorithm]} {digest.hexdigest()}, expected "
                f"{remote.digest}: it is corrupt or was changed, and was not kept"
            )
    return target


