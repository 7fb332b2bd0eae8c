"""Synthetic faces, the MAT-file reader, and fetching the ORL / AT&T faces (local copies and download)."""

import hashlib
import http.server
import os
import struct
import threading
import urllib.request
import zlib

import numpy as np
import pytest

from pyface.datasets import att
from pyface.datasets.download import RemoteFile
from pyface.data import FaceDataset
from pyface.datasets import fetch_att_faces, get_data_home, synthetic_faces
from pyface.data.matfile import MatFileError, read_matrix
from pyface.data.preprocess import Preprocessor

# ----------------------------------------------------------------------------- a MAT-v5 writer

_MI = {"i1": 1, "u1": 2, "i2": 3, "u2": 4, "i4": 5, "u4": 6, "f4": 7, "f8": 9, "i8": 12, "u8": 13}
_MX = {"f8": 6, "f4": 7, "i1": 8, "u1": 9, "i2": 10, "u2": 11, "i4": 12, "u4": 13, "i8": 14, "u8": 15}


def _element(kind: int, payload: bytes, endian: str, *, small_ok: bool = True) -> bytes:
    if small_ok and len(payload) <= 4:
        return struct.pack(endian + "HH", kind, len(payload)) + payload.ljust(4, b"\0")
    padding = b"\0" * (-len(payload) % 8)
    return struct.pack(endian + "II", kind, len(payload)) + payload + padding


def _matrix_element(name: str, array: np.ndarray, endian: str, *, array_class: str | None = None,
                    stored_as: str | None = None, flags: int = 0) -> bytes:
    array = np.asarray(array)
    array_class = array_class or array.dtype.str[1:]
    stored_as = stored_as or array_class
    data = np.asarray(array, dtype=endian + stored_as).tobytes(order="F")
    body = _element(6, struct.pack(endian + "II", _MX.get(array_class, array_class) | flags, 0), endian, small_ok=False)
    body += _element(5, np.asarray(array.shape, dtype=endian + "i4").tobytes(), endian, small_ok=False)
    body += _element(1, name.encode(), endian)
    body += _element(_MI[stored_as], data, endian, small_ok=False)
    return _element(14, body, endian, small_ok=False)


def write_mat(variables: dict, *, endian: str = "<", compress: bool = False, **options) -> bytes:
    """A level-5 MAT file (as bytes) holding ``variables``: name -> numeric array."""
    text = b"MATLAB 5.0 MAT-file, written by the pyface tests".ljust(116, b" ")
    header = text + b"\0" * 8 + struct.pack(endian + "H", 0x0100) + (b"IM" if endian == "<" else b"MI")
    out = header
    for name, array in variables.items():
        element = _matrix_element(name, array, endian, **options)
        if compress:
            packed = zlib.compress(element)
            element = struct.pack(endian + "II", 15, len(packed)) + packed
        out += element
    return out


# ----------------------------------------------------------------------------- MAT reader


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", ["u1", "i2", "u4", "i8", "f4", "f8"])
def test_read_matrix_round_trips_shape_dtype_and_column_major_order(endian, compress, dtype):
    rng = np.random.default_rng(0)
    wanted = (rng.random((5, 3)) * 100).astype(dtype)
    other = np.arange(7, dtype=np.float64).reshape(1, 7)
    blob = write_mat({"other": other, "x": wanted}, endian=endian, compress=compress)
    got = read_matrix(blob, "x")
    assert got.dtype == np.dtype(dtype).newbyteorder("=")
    assert got.shape == (5, 3)
    np.testing.assert_array_equal(got, wanted)
    np.testing.assert_array_equal(read_matrix(blob, "other"), other)


def test_read_matrix_converts_narrow_storage_to_the_array_class(tmp_path):
    # MATLAB stores integer-valued doubles in uint8 elements; the class still says double.
    values = np.array([[0, 17, 255], [3, 4, 5]], dtype=np.float64)
    path = tmp_path / "narrow.mat"
    path.write_bytes(write_mat({"faces": values}, array_class="f8", stored_as="u1"))
    got = read_matrix(path, "faces")
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, values)


def test_read_matrix_agrees_with_scipy_when_scipy_is_there(tmp_path):
    sio = pytest.importorskip("scipy.io")
    values = np.random.default_rng(1).integers(0, 256, (64 * 64, 12)).astype(np.uint8)
    for compression in (False, True):
        path = tmp_path / f"scipy-{compression}.mat"
        sio.savemat(path, {"faces": values, "label": "text is skipped"}, do_compression=compression)
        np.testing.assert_array_equal(read_matrix(path, "faces"), values)


def test_read_matrix_refuses_what_it_cannot_read():
    blob = write_mat({"x": np.ones((2, 2))})
    with pytest.raises(MatFileError, match="no variable 'y'"):
        read_matrix(blob, "y")
    with pytest.raises(MatFileError, match="not a level-5 MAT file"):
        read_matrix(b"P5 92 112 255\n" + bytes(200), "x")
    with pytest.raises(MatFileError, match="cell array"):
        read_matrix(write_mat({"c": np.ones((1, 1))}, array_class=1, stored_as="f8"), "c")
    with pytest.raises(MatFileError, match="complex"):
        read_matrix(write_mat({"z": np.ones((2, 2))}, flags=0x0800), "z")
    with pytest.raises(MatFileError, match="runs past the end"):
        read_matrix(blob[:-16], "x")


# ----------------------------------------------------------------------------- synthetic faces


def test_synthetic_faces_is_a_labelled_face_dataset():
    faces = synthetic_faces(n_people=4, per_person=5, size=32, seed=3)
    assert isinstance(faces, FaceDataset)
    assert faces.images.shape == (20, 32, 32) and faces.images.dtype == np.float32
    assert 0.0 <= faces.images.min() and faces.images.max() <= 1.0
    np.testing.assert_array_equal(faces.labels, np.repeat(np.arange(4), 5))
    assert faces.names == ["person01", "person02", "person03", "person04"]
    assert faces.preprocessor == Preprocessor(size=32)


def test_synthetic_faces_are_reproducible_and_vary():
    a = synthetic_faces(n_people=3, per_person=4, size=32, seed=7)
    b = synthetic_faces(n_people=3, per_person=4, size=32, seed=7)
    c = synthetic_faces(n_people=3, per_person=4, size=32, seed=8)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    # Every image of a person differs from the others (pose, light, expression).
    for k in range(3):
        person = a.images[a.labels == k].reshape(4, -1)
        distances = np.abs(person[:, None] - person[None]).mean(axis=2)
        assert distances[~np.eye(4, dtype=bool)].min() > 0.01


def test_synthetic_identities_are_learnable_from_pixels():
    # Nearest class mean on raw pixels must beat chance clearly: the identity is in the image.
    faces = synthetic_faces(n_people=8, per_person=10, size=32, seed=0)
    train, test = faces.split(test_size=0.3, seed=0)
    means = np.stack([train.images[train.labels == k].mean(axis=0) for k in range(8)])
    distances = ((test.images[:, None] - means[None]) ** 2).sum(axis=(2, 3))
    accuracy = (distances.argmin(axis=1) == test.labels).mean()
    assert accuracy > 0.5  # chance is 1/8


@pytest.mark.parametrize("kwargs", [{"n_people": 0}, {"per_person": 0}, {"size": 8}, {"n_people": 2.5},
                                    {"n_people": True}])
def test_synthetic_faces_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        synthetic_faces(**kwargs)


# ----------------------------------------------------------------------------- fetch_att_faces


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to open a URL."""

    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _olivetti_like_images() -> np.ndarray:
    """uint8 (400, 64, 64): image n has n // 10 in its top-left pixel and a top-to-bottom ramp."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (400, 64, 64)).astype(np.uint8)
    images[:, :, 5] = np.arange(64, dtype=np.uint8) * 4  # column 5: brighter downwards
    images[:, 0, 0] = np.repeat(np.arange(40), 10)
    images[0, 0, 1], images[0, 1, 0] = 0, 255  # the file's min and max, so no rescaling
    return images


@pytest.fixture(scope="module")
def olivetti_file(tmp_path_factory):
    """A MAT file laid out like the Olivetti copy, its bytes, the images in it, and its SHA-256."""
    images = _olivetti_like_images()
    faces = images.transpose(0, 2, 1).reshape(400, 4096).T  # column n = image n, column-major
    blob = write_mat({"faces": faces.astype(np.float64)}, compress=True, array_class="f8", stored_as="u1")
    path = tmp_path_factory.mktemp("remote") / "olivettifaces.mat"
    path.write_bytes(blob)
    return path, blob, images, hashlib.sha256(blob).hexdigest()


class _Server:
    """An HTTP server on 127.0.0.1 serving ``body`` at every path (or a 404 without one)."""

    def __init__(self, body: bytes | None, *, claimed_length: int | None = None):
        outer = self
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(claimed_length or len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/olivettifaces.mat"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _remote(monkeypatch, url, sha256):
    monkeypatch.setattr(att, "OLIVETTI", RemoteFile("olivettifaces.mat", url, sha256))


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_published_source_is_scikit_learns_olivetti_copy():
    assert att.OLIVETTI.url == "https://ndownloader.figshare.com/files/5976027"
    assert att.OLIVETTI.digest == "b612fb967f2dc77c9c62d3e1266e0c73d5fca46a4b8906c18e454d41af987794"


def test_fetch_reads_a_local_att_faces_folder_without_the_network(att_faces_dir, no_network):
    faces = fetch_att_faces(data_home=att_faces_dir)
    assert len(faces) == 400 and len(faces.names) == 40
    assert faces.names[:3] == ["s1", "s2", "s3"] and faces.images.shape[1:] == (64, 64)
    assert all(path.endswith(".pgm") for path in faces.paths)


def test_fetch_finds_att_faces_under_pyface_data(att_faces_dir, tmp_path, monkeypatch, no_network):
    (tmp_path / "att_faces").symlink_to(att_faces_dir, target_is_directory=True)
    monkeypatch.setenv("PYFACE_DATA", str(tmp_path))
    assert get_data_home() == tmp_path
    faces = fetch_att_faces(preprocessor=Preprocessor(size=32))
    assert faces.images.shape == (400, 32, 32)


def test_download_from_a_local_http_server_is_verified_cached_and_reused(olivetti_file, tmp_path, monkeypatch):
    _, blob, images, sha256 = olivetti_file
    cache = tmp_path / "cache"
    with _Server(blob) as server:
        _remote(monkeypatch, server.url, sha256)
        faces = fetch_att_faces(data_home=cache, preprocessor=Preprocessor(equalize=None), quiet=True)
        assert server.requests == 1
    assert len(faces) == 400 and faces.names == [f"s{k}" for k in range(1, 41)]
    np.testing.assert_array_equal(faces.labels, np.repeat(np.arange(40), 10))
    # Upright and in order: the file's layout was undone exactly.
    np.testing.assert_array_equal(np.rint(faces.images * 255).astype(np.uint8), images)
    assert _leftovers(cache) == ["olivettifaces.mat"]
    assert (cache / "olivettifaces.mat").read_bytes() == blob

    def refuse(*args, **kwargs):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    again = fetch_att_faces(data_home=cache, preprocessor=Preprocessor(equalize=None), download_if_missing=False)
    np.testing.assert_array_equal(again.images, faces.images)


def test_download_from_a_file_url(olivetti_file, tmp_path, monkeypatch):
    path, _, _, sha256 = olivetti_file
    _remote(monkeypatch, path.as_uri(), sha256)
    faces = fetch_att_faces(data_home=tmp_path, quiet=True)
    assert len(faces) == 400 and faces.images.dtype == np.float32


def test_corrupted_download_is_refused_and_not_kept(olivetti_file, tmp_path, monkeypatch):
    _, blob, _, sha256 = olivetti_file
    corrupted = bytearray(blob)
    corrupted[len(blob) // 2] ^= 0xFF
    with _Server(bytes(corrupted)) as server:
        _remote(monkeypatch, server.url, sha256)
        with pytest.raises(OSError, match="SHA-256"):
            fetch_att_faces(data_home=tmp_path, quiet=True)
    assert _leftovers(tmp_path) == []


def test_truncated_download_leaves_no_partial_file(olivetti_file, tmp_path, monkeypatch):
    _, blob, _, sha256 = olivetti_file
    with _Server(blob[: len(blob) // 3], claimed_length=len(blob)) as server:
        _remote(monkeypatch, server.url, sha256)
        with pytest.raises(OSError):
            fetch_att_faces(data_home=tmp_path, quiet=True)
    assert _leftovers(tmp_path) == []


def test_unreachable_source_is_an_os_error(tmp_path, monkeypatch):
    with _Server(None) as server:
        _remote(monkeypatch, server.url, "0" * 64)
        with pytest.raises(OSError, match="could not download"):
            fetch_att_faces(data_home=tmp_path, quiet=True)
    assert _leftovers(tmp_path) == []


def test_a_cached_file_with_the_wrong_checksum_is_not_used(olivetti_file, tmp_path, monkeypatch, no_network):
    _, blob, _, sha256 = olivetti_file
    _remote(monkeypatch, "http://127.0.0.1:9/never", sha256)
    (tmp_path / "olivettifaces.mat").write_bytes(blob[:-1] + b"\0")
    with pytest.raises(FileNotFoundError, match="wrong SHA-256"):
        fetch_att_faces(data_home=tmp_path, download_if_missing=False)
    with pytest.raises(FileNotFoundError, match="not found"):
        fetch_att_faces(data_home=tmp_path / "empty", download_if_missing=False)


def test_a_bad_cached_file_is_replaced_by_a_good_download(olivetti_file, tmp_path, monkeypatch):
    _, blob, _, sha256 = olivetti_file
    (tmp_path / "olivettifaces.mat").write_bytes(b"not the data")
    with _Server(blob) as server:
        _remote(monkeypatch, server.url, sha256)
        assert len(fetch_att_faces(data_home=tmp_path, quiet=True)) == 400
    assert (tmp_path / "olivettifaces.mat").read_bytes() == blob
    assert os.stat(tmp_path / "olivettifaces.mat").st_mode & 0o644 == 0o644
