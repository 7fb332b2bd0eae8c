"""Gallery fixtures: a saved tiny model and worker processes writing into a gallery.

The galleries under test (``gallery_url``: SQLite and PostgreSQL) come from tests/conftest.py.
"""

import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("worker.py")


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
