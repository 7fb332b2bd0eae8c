"""Writing a file so that readers see either the old file or the complete new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO


@contextlib.contextmanager
def atomic_write(path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces ``path`` only once the block completes.

    The data goes to a temporary file in the same folder, is flushed to disk, and only
    then renamed over ``path``; a failure at any point (an interrupt included) removes
    the temporary file and leaves whatever was at ``path`` untouched. ``mode`` is the
    permission of the new file; None keeps the mode of the file replaced, or 0o644.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if mode is None:
            # mkstemp makes the file private; a model file is as readable as any other file.
            mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
