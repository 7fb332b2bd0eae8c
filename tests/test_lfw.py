"""Labeled Faces in the Wild: the local pool, and the archive downloaded, verified and unpacked."""

import hashlib
import io
import tarfile

import cv2
import numpy as np
import pytest

from pyface.data.preprocess import Preprocessor
from pyface.datasets import fetch_lfw, lfw
from pyface.datasets.download import RemoteFile

SMALL = Preprocessor(size=16)


def test_the_local_pool_reads_the_people_asked_for(lfw_dir, monkeypatch):
    monkeypatch.setenv("PYFACE_DATA", str(lfw_dir.parent))
    faces = fetch_lfw(min_faces=15, preprocessor=SMALL, download_if_missing=False)
    counts = np.bincount(faces.labels)
    assert len(faces.names) >= 10 and counts.min() >= 15 and counts.max() <= 19
    assert all(path.endswith(".jpg") for path in faces.paths)
    assert faces.names == sorted(faces.names, key=str.lower)
    # The same people as counting the files of each folder by hand.
    by_hand = sorted(p.name for p in lfw_dir.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 15)
    assert sorted(faces.names) == by_hand


def _jpeg(value):
    ok, data = cv2.imencode(".jpg", np.full((40, 40, 3), value, np.uint8))
    return data.tobytes()


def _archive(tmp_path, members):
    path = tmp_path / "served" / "lfw-deepfunneled.tgz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def _serve(monkeypatch, path, md5):
    monkeypatch.setattr(lfw, "LFW_DEEPFUNNELED", RemoteFile(path.name, path.as_uri(), md5, "md5", "LFW"))


def test_the_archive_is_verified_unpacked_and_reused(tmp_path, monkeypatch):
    members = {f"lfw-deepfunneled/{p}/{p}_000{k}.jpg": _jpeg(40 * k) for p in ("Ann_A", "Bob_B") for k in (1, 2)}
    members["lfw-deepfunneled/Cy_C/Cy_C_0001.jpg"] = _jpeg(200)
    path, md5 = _archive(tmp_path, members)
    _serve(monkeypatch, path, md5)
    home = tmp_path / "home"
    faces = fetch_lfw(home, min_faces=2, preprocessor=SMALL, quiet=True)
    assert faces.names == ["Ann_A", "Bob_B"] and len(faces) == 4
    assert sorted(p.name for p in home.iterdir()) == ["lfw-deepfunneled", "lfw-deepfunneled.tgz"]
    path.unlink()  # no second download: the unpacked folder is used
    assert fetch_lfw(home, preprocessor=SMALL).names == ["Ann_A", "Bob_B", "Cy_C"]


def test_an_archive_with_the_wrong_md5_is_not_kept(tmp_path, monkeypatch):
    path, md5 = _archive(tmp_path, {"lfw-deepfunneled/Ann_A/Ann_A_0001.jpg": _jpeg(9)})
    _serve(monkeypatch, path, "0" * 32)
    home = tmp_path / "home"
    with pytest.raises(OSError, match="MD5"):
        fetch_lfw(home, quiet=True)
    assert list(home.iterdir()) == []


def test_an_archive_that_writes_outside_its_folder_is_refused(tmp_path, monkeypatch):
    path, md5 = _archive(tmp_path, {"../evil.jpg": _jpeg(1), "lfw-deepfunneled/Ann_A/Ann_A_0001.jpg": _jpeg(9)})
    _serve(monkeypatch, path, md5)
    home = tmp_path / "home"
    with pytest.raises(tarfile.TarError):
        fetch_lfw(home, quiet=True)
    assert not (tmp_path / "evil.jpg").exists() and not (home / "lfw-deepfunneled").exists()


def test_nothing_local_and_no_download_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_if_missing is False"):
        fetch_lfw(tmp_path, download_if_missing=False)


@pytest.mark.parametrize("options", [{"min_faces": 0}, {"min_faces": 3, "max_faces": 2}, {"min_faces": True}])
def test_bad_bounds_are_refused(tmp_path, options):
    with pytest.raises(ValueError, match="faces"):
        fetch_lfw(tmp_path, download_if_missing=False, **options)
