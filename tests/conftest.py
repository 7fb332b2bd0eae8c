"""Fixtures shared by every test: the data they read, tiny fast models, the kernel's thread count, galleries."""

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pytest

import pyface
from pyface.data import from_arrays
from pyface.data.preprocess import Preprocessor
from pyface.datasets import synthetic_faces

# The data sets the tests read live beside the project, never inside it: one setting names
# the folder that holds them (att_faces/, lfw/), by default shared/data next to the checkout.
DATA_SETTING = "PYFACE_TEST_DATA"
_DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _data_folder(name: str, what: str) -> Path:
    folder = Path(os.environ.get(DATA_SETTING, _DEFAULT_DATA)) / name
    if not folder.is_dir():
        pytest.fail(f"{what} not found at {folder}: set {DATA_SETTING} to the folder holding {name}/")
    return folder


@pytest.fixture(scope="session")
def att_faces_dir() -> Path:
    """The ORL / AT&T faces folder (s1..s40, ten 92x112 PGM images each)."""
    return _data_folder("att_faces", "ORL / AT&T faces")


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    """The Labeled Faces in the Wild pool (deep-funneled, people with fewer than 20 photos)."""
    return _data_folder("lfw", "Labeled Faces in the Wild")


@pytest.fixture
def kernel_threads():
    """pyface.set_num_threads, with the thread count restored after the test."""
    before = pyface.get_num_threads()
    yield pyface.set_num_threads
    pyface.set_num_threads(before)


# A network small enough to train in well under a second on a few dozen 16-pixel images.
# The plain network (LSTMs reading pixels, dense head), as files written before the front end
# and the cosine head hold it; the command-line tests train the defaults.
TINY = {"hidden_size": 8, "num_layers": 1, "views": ("rows",), "bidirectional": False, "augment": None,
        "batch_size": 8, "conv_channels": 0, "head": "dense", "blended_people": 0, "descriptor": None}


def _make_images(n_classes=3, per_class=6, size=24, seed=0):
    """uint8 images (N, size, size) and int labels: class k is a bright block in its own place."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    block = size // 3
    for k in range(n_classes):
        row, col = divmod(k % 9, 3)
        for _ in range(per_class):
            image = rng.integers(0, 60, (size, size)).astype(np.uint8)
            dr, dc = rng.integers(-1, 2, 2)
            r0 = int(np.clip(row * block + dr, 0, size - block))
            c0 = int(np.clip(col * block + dc, 0, size - block))
            image[r0 : r0 + block, c0 : c0 + block] = rng.integers(200, 256, (block, block))
            images.append(image)
            labels.append(k)
    return np.stack(images), np.array(labels, dtype=np.int64)


def _make_dataset(n_classes=3, per_class=6, image_size=16, seed=0):
    images, labels = _make_images(n_classes, per_class, seed=seed)
    names = [f"person{k}" for k in range(n_classes)]
    return from_arrays(images, labels, names=names, preprocessor=Preprocessor(size=image_size))


@pytest.fixture(scope="session")
def make_images():
    """Factory of raw uint8 images and labels; see ``_make_images``."""
    return _make_images


@pytest.fixture(scope="session")
def make_dataset():
    """Factory of FaceDatasets of ``make_images`` preprocessed to ``image_size`` pixels square."""
    return _make_dataset


@pytest.fixture(scope="session")
def tiny():
    """Training options of a tiny network without augmentation or descriptor."""
    return dict(TINY)


@pytest.fixture(scope="session")
def small_faces():
    """Synthetic faces: 3 people, 6 images each, 16 pixels square (do not modify it)."""
    return synthetic_faces(n_people=3, per_person=6, size=16, seed=0)


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny recognizer of three people, trained on 16-pixel images (do not modify it)."""
    from pyface.training import train

    return train(_make_dataset(per_class=8), epochs=25, quiet=True, **TINY)


# ---------------------------------------------------------------- a real Dask cluster


def _needs(module: str):
    """``module`` imported; a failure in CI (where the test extra installs it), a skip elsewhere."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is missing: install the test extra (pip install '.[test]')")
        pytest.skip(f"{module} is not installed (pip install 'pyface[dask]')")


def _start_dask_cluster(n_workers: int = 2):
    """A LocalCluster of ``n_workers`` single-threaded worker processes on loopback, and its client."""
    distributed = _needs("distributed")
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    return cluster, distributed.Client(cluster)


@pytest.fixture(scope="module")
def dask_client():
    """A client of a two-worker cluster shared by the tests of a module (which must not kill its workers)."""
    cluster, client = _start_dask_cluster(2)
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def own_dask_client():
    """A client of a two-worker cluster of the test's own, whose workers it may kill."""
    cluster, client = _start_dask_cluster(2)
    yield client
    client.close()
    cluster.close()


def _kill_a_worker_once_busy(client, *, timeout: float = 120.0) -> dict:
    """Wait until a worker has a task running, then kill its process (SIGKILL); returns what was done.

    The result's ``pid`` is the killed process and ``killed`` whether it happened within ``timeout``.
    """
    pids = client.run(os.getpid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [address for address, keys in client.processing().items() if keys and address in pids]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            return {"killed": True, "pid": pids[busy[0]], "address": busy[0]}
        time.sleep(0.005)
    return {"killed": False}


@pytest.fixture
def kill_a_worker_once_busy():
    """``kill(client)``: wait until a worker of ``client`` runs a task, SIGKILL its process, say what was done."""
    return _kill_a_worker_once_busy


# ---------------------------------------------------------------------------- galleries
# One SQLite file or one fresh PostgreSQL database per test. PostgreSQL comes from env
# PYFACE_TEST_POSTGRES (a URL; CI sets it, see .ci/postgres). Without it, the session starts
# a throw-away cluster itself when the server's programs are installed, so plain ``pytest``
# works on a developer's machine; in CI (env CI set) a missing server fails the PostgreSQL
# tests instead of skipping them.


def _pg_bin() -> str | None:
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    return folders[-1] if folders and os.path.exists(os.path.join(folders[-1], "initdb")) else None


def _start_postgres_cluster(folder: Path):
    """Start PostgreSQL in ``folder`` on a Unix socket there; returns (url, stop)."""
    pg_bin = _pg_bin()
    if pg_bin is None:
        return None, None
    prefix, user = [], subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        prefix, user = ["runuser", "-u", "postgres", "--"], "postgres"
        shutil.chown(folder, user="postgres")
    data = folder / "data"
    subprocess.run([*prefix, f"{pg_bin}/initdb", "-D", str(data), "-U", user, "-A", "trust", "--no-sync"],
                   check=True, capture_output=True)
    options = f"-c listen_addresses='' -c unix_socket_directories='{folder}' -c fsync=off"
    subprocess.run([*prefix, f"{pg_bin}/pg_ctl", "-D", str(data), "-l", str(folder / "log"), "-w", "-o", options,
                    "start"], check=True, capture_output=True)

    def stop():
        subprocess.run([*prefix, f"{pg_bin}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)

    return f"postgresql://{user}@/postgres?host={folder}", stop


@pytest.fixture(scope="session")
def postgres_server():
    """URL of a PostgreSQL server's maintenance database."""
    url = os.environ.get("PYFACE_TEST_POSTGRES")
    if url:
        yield url
        return
    if os.environ.get("CI"):
        pytest.fail("PYFACE_TEST_POSTGRES is not set: CI must start PostgreSQL (source .ci/postgres)")
    # Not under pytest's own temporary folder: as root, the server's user could not reach it.
    folder = Path(tempfile.mkdtemp(prefix="pyface-postgres-"))
    url, stop = _start_postgres_cluster(folder)
    if url is None:
        shutil.rmtree(folder)
        pytest.skip("no PostgreSQL server: set PYFACE_TEST_POSTGRES or install PostgreSQL (apt-get install postgresql)")
    yield url
    stop()
    shutil.rmtree(folder, ignore_errors=True)


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture()
def postgres_url(postgres_server):
    """URL of a new, empty database, dropped after the test."""
    import psycopg

    name = f"pyface_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield _with_database(postgres_server, name)
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def gallery_url(request, tmp_path):
    """Where a new gallery goes: an SQLite file, or an empty PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "faces.db")
    return request.getfixturevalue("postgres_url")
