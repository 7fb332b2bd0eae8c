import os
from pathlib import Path

import pytest

import pyface

_DEFAULT_ATT_FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "att_faces"


@pytest.fixture(scope="session")
def att_faces_dir() -> Path:
    """The ORL / AT&T faces folder (s1..s40, ten 92x112 PGM images each)."""
    folder = Path(os.environ.get("PYFACE_ATT_FACES", _DEFAULT_ATT_FACES))
    if not folder.is_dir():
        pytest.fail(
            f"ORL / AT&T faces not found at {folder}: set PYFACE_ATT_FACES to the folder "
            "holding s1 .. s40 (PYFACE_ATT_FACES=path/to/att_faces)"
        )
    return folder


@pytest.fixture
def kernel_threads():
    """pyface.set_num_threads, with the thread count restored after the test."""
    before = pyface.get_num_threads()
    yield pyface.set_num_threads
    pyface.set_num_threads(before)
