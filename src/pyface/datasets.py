"""Ready-made face data sets: the ORL / AT&T faces, and synthetic faces that need no download."""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io.atomic import atomic_write
from .data.dataset import FaceDataset, from_arrays, load_images
from .data.matfile import read_matrix
from .data.preprocess import Preprocessor
from .data.synthetic import synthetic_faces

__all__ = ["fetch_att_faces", "synthetic_faces", "get_data_home"]


@dataclass(frozen=True)
class _RemoteFile:
    filename: str
    url: str
    sha256: str


# The Olivetti copy of the ORL / AT&T faces (400 images of 40 people, cropped and
# scaled to 64 x 64 grey levels) that scikit-learn's fetch_olivetti_faces downloads;
# address and SHA-256 as scikit-learn publishes them.
OLIVETTI = _RemoteFile(
    filename="olivettifaces.mat",
    url="https://ndownloader.figshare.com/files/5976027",
    sha256="b612fb967f2dc77c9c62d3e1266e0c73d5fca46a4b8906c18e454d41af987794",
)
_N_PEOPLE, _PER_PERSON, _SIDE = 40, 10, 64
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(remote: _RemoteFile, folder: Path, *, quiet: bool) -> Path:
    """Fetch ``remote`` into ``folder``, keeping it only if its SHA-256 matches.

    The bytes go to a temporary file in ``folder`` that is renamed to its final name only
    once complete and verified, so the cache never holds a partial or wrong file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / remote.filename
    if not quiet:
        print(f"Downloading the ORL/AT&T faces from {remote.url} to {folder}", file=sys.stderr)
    digest = hashlib.sha256()
    with atomic_write(target, mode=0o644) as out:
        try:
            with urllib.request.urlopen(remote.url, timeout=60) as response:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OSError(f"could not download {remote.url}: {reason}") from exc
        if digest.hexdigest() != remote.sha256:
            raise OSError(
                f"the file downloaded from {remote.url} has SHA-256 {digest.hexdigest()}, expected "
                f"{remote.sha256}: it is corrupt or was changed, and was not kept"
            )
    return target


def _olivetti_images(path: Path) -> np.ndarray:
    """uint8 (400, 64, 64) upright images from the Olivetti MAT file.

    The file holds one matrix ``faces`` of shape (4096, 400): column n is image n, a
    64 x 64 image flattened in MATLAB's column-major order; images are grouped by
    person, 10 at a time. Values are grey levels, rescaled here to 0..255 from their
    own minimum and maximum, since the copy's value range is not documented.
    """
    faces = read_matrix(path, "faces").astype(np.float64)
    expected = (_SIDE * _SIDE, _N_PEOPLE * _PER_PERSON)
    if faces.shape != expected:
        raise ValueError(f"{path}: matrix 'faces' has shape {faces.shape}, expected {expected}")
    low, high = faces.min(), faces.max()
    scaled = (faces - low) / (high - low if high > low else 1.0)
    images = scaled.T.reshape(-1, _SIDE, _SIDE).transpose(0, 2, 1)
    return np.rint(images * 255).astype(np.uint8)


def _local_folder(home: Path) -> Path | None:
    for folder in (home / "att_faces", home):
        if (folder / "s1").is_dir():
            return folder
    return None


def fetch_att_faces(
    data_home: str | os.PathLike | None = None,
    *,
    download_if_missing: bool = True,
    preprocessor: Preprocessor | None = None,
    quiet: bool = False,
) -> FaceDataset:
    """The ORL / AT&T faces: 400 grey images of 40 people, 10 each.

    Looked for, in order, without touching the network:

    1. an ``att_faces`` folder in ``data_home`` (or ``data_home`` itself) holding the
       original ``s1`` .. ``s40`` folders of ten 92 x 112 PGM images;
    2. ``olivettifaces.mat`` in ``data_home``: the copy scikit-learn distributes, 64 x 64
       pixels, used only if its SHA-256 is the published one.

    Otherwise the MAT file is downloaded into ``data_home``, verified and kept for next
    time.

    Parameters
    ----------
    data_home : path or None
        Where to look and to cache; None means :func:`get_data_home`
        (``PYFACE_DATA``, else ``~/.cache/pyface``).
    download_if_missing : bool
        False raises ``FileNotFoundError`` instead of downloading.
    preprocessor : Preprocessor or None
        Applied to every image; None means ``Preprocessor()`` (64 x 64, equalised).
    quiet : bool
        Do not announce a download on stderr.

    Returns
    -------
    FaceDataset
        400 images, labels 0..39, names ``s1`` .. ``s40`` (from the folders, or in the
        MAT file's order of people); paths are the files for a folder, empty for the MAT copy.

    Raises
    ------
    FileNotFoundError
        Nothing local and ``download_if_missing=False``.
    OSError
        The download failed, or its SHA-256 differs from the published one (nothing is kept).
    """
    home = get_data_home(data_home)
    folder = _local_folder(home)
    if folder is not None:
        return load_images(folder, preprocessor=preprocessor)
    cached = home / OLIVETTI.filename
    if not (cached.is_file() and _sha256(cached) == OLIVETTI.sha256):
        if not download_if_missing:
            problem = "has the wrong SHA-256" if cached.is_file() else "not found"
            raise FileNotFoundError(
                f"ORL/AT&T faces not found in {home} (no att_faces folder; {OLIVETTI.filename} {problem}) "
                "and download_if_missing is False"
            )
        cached = _download(OLIVETTI, home, quiet=quiet)
    images = _olivetti_images(cached)
    labels = np.repeat(np.arange(_N_PEOPLE), _PER_PERSON)
    names = [f"s{k + 1}" for k in range(_N_PEOPLE)]
    return from_arrays(images, labels, names=names, preprocessor=preprocessor)
