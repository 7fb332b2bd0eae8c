"""Galleries under test: one SQLite file or one fresh PostgreSQL database per test.

PostgreSQL comes from env PYFACE_TEST_POSTGRES (a URL; CI sets it, see .ci/postgres).
Without it, the session starts a throw-away cluster itself when the server's programs
are installed, so plain ``pytest`` works on a developer's machine; in CI (env CI set)
a missing server fails the PostgreSQL tests instead of skipping them.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

WORKER = Path(__file__).with_name("worker.py")


def _pg_bin() -> str | None:
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    return folders[-1] if folders and os.path.exists(os.path.join(folders[-1], "initdb")) else None


def _start_cluster(folder: Path):
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
    url, stop = _start_cluster(folder)
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


@pytest.fixture(scope="session")
def model_file(tiny_model, tmp_path_factory):
    """The tiny model saved, for worker processes."""
    path = tmp_path_factory.mktemp("model") / "tiny.pyface"
    tiny_model.save(path)
    return path


@pytest.fixture()
def run_worker():
    """Start ``worker.py`` with arguments in a new process (a Popen); any still running at the end is killed."""
    started = []

    def start(*args):
        started.append(subprocess.Popen([sys.executable, str(WORKER), *map(str, args)], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()
