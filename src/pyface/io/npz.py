"""Checked ``.npz`` archives: model files and checkpoints are plain arrays plus a JSON member.

Files are read with pickling disabled, so opening one never runs code from it, and every
member's checksum is verified before any array is trusted.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib

import numpy as np

from .atomic import atomic_write

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"
METADATA = "metadata"


class ModelFileError(ValueError):
    """A file that is not a readable pyface model or checkpoint: corrupt, truncated, foreign or too new."""

    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def write_npz_atomically(path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an ``.npz`` at ``path``: the file is either the old one or the complete new one."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def read_npz(path, kind: str = "pyface model") -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive at ``path``, its checksums verified.

    Pickled members are refused. Anything but an intact archive of plain arrays raises
    :class:`ModelFileError` naming ``kind``; a missing file raises ``FileNotFoundError``.
    """
    with open(path, "rb") as f:
        magic = f.read(len(_NPY_MAGIC))
    if magic == _NPY_MAGIC:
        raise ModelFileError(path, f"not a {kind} file (a bare array, not an archive)")
    if not magic.startswith(_ZIP_MAGIC):
        raise ModelFileError(path, f"not a {kind} file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            # Checksums first: a damaged array header could claim an array of any size.
            damaged = npz.zip.testzip()
            if damaged is not None:
                raise ModelFileError(path, f"corrupt {kind} file (member {damaged} fails its checksum)")
            return {name: npz[name] for name in npz.files}
    except ModelFileError:
        raise
    except zipfile.BadZipFile as exc:
        raise ModelFileError(path, f"corrupt or truncated {kind} file ({exc})") from exc
    # What zipfile and numpy raise on damaged headers: a compression method or zip version
    # that does not exist (NotImplementedError), an "encrypted" flag (RuntimeError), data
    # that does not inflate (zlib.error), sizes past the end (EOFError).
    except (ValueError, OSError, EOFError, KeyError, NotImplementedError, RuntimeError, zlib.error) as exc:
        raise ModelFileError(path, f"not a {kind} file or corrupt ({exc})") from exc


def read_metadata(path, members: dict[str, np.ndarray], kind: str) -> dict:
    """The JSON member of an archive read by :func:`read_npz`, as a dict."""
    if METADATA not in members:
        raise ModelFileError(path, f"not a {kind} file (no metadata)")
    try:
        metadata = json.loads(str(members[METADATA]))
    except (ValueError, TypeError) as exc:
        raise ModelFileError(path, f"corrupt metadata ({exc})") from exc
    if not isinstance(metadata, dict):
        raise ModelFileError(path, f"not a {kind} file (unknown format)")
    return metadata


def check_format(path, metadata: dict, *, format: str, version: int, kind: str) -> int:
    """The file's format version, after checking that it is ``format`` at most at ``version``."""
    if metadata.get("format") != format:
        raise ModelFileError(path, f"not a {kind} file (unknown format)")
    found = metadata.get("format_version")
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        raise ModelFileError(path, f"corrupt metadata (format version {found!r})")
    if found > version:
        raise ModelFileError(path, f"{kind} format version {found} is newer than this pyface reads ({version}); "
                                   "upgrade pyface to load it")
    return found
