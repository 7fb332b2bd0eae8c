"""Labeled Faces in the Wild, deep-funneled: a local copy, or the archive its makers publish."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..data.dataset import FaceDataset, load_images
from ..data.preprocess import Preprocessor
from .download import RemoteFile, download, file_digest, get_data_home

__all__ = ["fetch_lfw", "lfw_people"]

# The deep-funneled LFW archive (13,233 photos of 5,749 people, 250 x 250 colour JPEGs) at
# the address its makers give (University of Massachusetts Amherst); they publish no SHA-256,
# so the archive is checked against the MD5 that torchvision's LFW loader records for it.
LFW_DEEPFUNNELED = RemoteFile(
    filename="lfw-deepfunneled.tgz",
    url="http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz",
    digest="68331da3eb755a505a502b5aacb3c201",
    algorithm="md5",
    description="Labeled Faces in the Wild (deep-funneled, 108 MB)",
)
_FOLDERS = ("lfw", "lfw-deepfunneled")


def _local_folder(home: Path) -> Path | None:
    for name in _FOLDERS:
        folder = home / name
        if folder.is_dir() and any(p.is_dir() for p in folder.iterdir()):
            return folder
    return None


def _extract(archive: Path, home: Path) -> Path:
    """Unpack the archive beside it, into a temporary folder renamed only once complete."""
    target = home / "lfw-deepfunneled"
    work = Path(tempfile.mkdtemp(prefix=".lfw-", dir=home))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # The "data" filter refuses links and paths that leave the folder.
            tar.extractall(work, filter="data")
        unpacked = work / "lfw-deepfunneled"
        if not unpacked.is_dir():
            raise OSError(f"{archive} does not hold the folder lfw-deepfunneled/")
        os.replace(unpacked, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def lfw_people(folder: str | os.PathLike, *, min_faces: int = 1, max_faces: int | None = None) -> list[str]:
    """Names of the person folders in ``folder`` with ``min_faces`` to ``max_faces`` images, in order."""
    folder = Path(folder)
    counts = {p.name: sum(1 for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
              for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return sorted(name for name, n in counts.items() if n >= min_faces and (max_faces is None or n <= max_faces))


def fetch_lfw(
    data_home: str | os.PathLike | None = None,
    *,
    min_faces: int = 1,
    max_faces: int | None = None,
    download_if_missing: bool = True,
    preprocessor: Preprocessor | None = None,
    quiet: bool = False,
) -> FaceDataset:
    """Labeled Faces in the Wild (deep-funneled): news photographs of public figures.

    Looked for, without touching the network, as an ``lfw`` or ``lfw-deepfunneled``
    folder of person folders in ``data_home``; otherwise ``lfw-deepfunneled.tgz`` is
    downloaded there (108 MB), checked against its published MD5, unpacked and kept.

    Parameters
    ----------
    data_home : path or None
        Where to look and to cache; None means :func:`get_data_home`
        (``PYFACE_DATA``, else ``~/.cache/pyface``).
    min_faces, max_faces : int, int or None
        Only the people with at least ``min_faces`` and at most ``max_faces`` photos.
    download_if_missing : bool
        False raises ``FileNotFoundError`` instead of downloading.
    preprocessor : Preprocessor or None
        Applied to every photo; None means ``Preprocessor()``.
    quiet : bool
        Do not announce a download on stderr.
    """
    if isinstance(min_faces, bool) or not isinstance(min_faces, int) or min_faces < 1:
        raise ValueError(f"min_faces must be a positive integer, got {min_faces!r}")
    if max_faces is not None and (not isinstance(max_faces, int) or max_faces < min_faces):
        raise ValueError(f"max_faces must be None or an integer >= min_faces, got {max_faces!r}")
    home = get_data_home(data_home)
    folder = _local_folder(home)
    if folder is None:
        archive = home / LFW_DEEPFUNNELED.filename
        if not (archive.is_file() and file_digest(archive, "md5") == LFW_DEEPFUNNELED.digest):
            if not download_if_missing:
                raise FileNotFoundError(f"Labeled Faces in the Wild not found in {home} (no lfw folder, no "
                                        f"intact {LFW_DEEPFUNNELED.filename}) and download_if_missing is False")
            archive = download(LFW_DEEPFUNNELED, home, quiet=quiet)
        folder = _extract(archive, home)
    people = lfw_people(folder, min_faces=min_faces, max_faces=max_faces)
    if not people:
        raise ValueError(f"no person in {folder} has {min_faces} to {max_faces or 'any number of'} photos")
    return load_images(folder, preprocessor=preprocessor, people=people, extensions=[".jpg"])
