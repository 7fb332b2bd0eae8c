"""The files of a batch job: listed once on the driver, cut into partitions for the workers."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..data.images import list_image_files


def listed_files(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The files of a job, in order: a folder's images, or the paths given, as strings.

    A folder is searched recursively on the driver (see
    :func:`pyface.data.images.list_image_files`). Paths given are taken as they are: a missing
    or unreadable file is that file's error in the results, not a failed job. The
    workers must see the paths as the driver does: one machine, or a shared filesystem.
    """
    if isinstance(source, (str, os.PathLike)):
        if os.path.isdir(source):
            return [os.fspath(p) for p in list_image_files([source])]
        return [os.fspath(source)]
    if isinstance(source, (bytes, bytearray)) or not isinstance(source, Sequence):
        raise TypeError(f"expected a folder, a file path or a sequence of paths, got {type(source).__name__}")
    return [os.fspath(p) for p in source]


def partitions(paths: Sequence[str], size: int) -> list[list[str]]:
    """``paths`` cut into consecutive runs of ``size`` (the last one shorter)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"partition_size must be a positive integer, got {size!r}")
    return [list(paths[start : start + size]) for start in range(0, len(paths), size)]
