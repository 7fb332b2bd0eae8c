"""Image files: which files are images, their natural order, and decoding them as training does."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

__all__ = ["IMAGE_SUFFIXES", "natural_key", "decode_image", "read_image", "list_image_files"]

# Folders are searched for files with these suffixes (the formats OpenCV decodes); a file
# named explicitly is read whatever its suffix.
IMAGE_SUFFIXES = frozenset(
    ".bmp .dib .jpeg .jpg .jpe .jp2 .png .webp .pbm .pgm .ppm .pxm .pnm .sr .ras .tiff .tif .exr .hdr .pic".split()
)


def natural_key(text: str) -> tuple:
    """Sort key under which digit runs compare as numbers: s2 before s10, 2.pgm before 10.pgm.

    The text itself breaks ties between names that differ only in case.
    """
    parts = re.split(r"(\d+)", text.lower())
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts)), text


def decode_image(data: bytes | np.ndarray) -> np.ndarray | None:
    """Encoded image bytes decoded by OpenCV, unchanged in depth and channels, or None if unreadable."""
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buffer.size == 0:
        return None
    # Callers report unreadable images themselves; OpenCV's own log lines would only repeat it.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    finally:
        cv2.utils.logging.setLogLevel(level)


def read_image(path) -> np.ndarray:
    """The image file at ``path``, decoded exactly as :func:`pyface.load_images` decodes training images.

    Raises ``FileNotFoundError`` when there is no such file (``IsADirectoryError`` for a
    folder) and ``ValueError`` when the file is not a readable image.
    """
    if os.path.isdir(path):
        raise IsADirectoryError(f"a folder, not an image file: {os.fspath(path)}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {os.fspath(path)}")
    image = decode_image(np.fromfile(path, dtype=np.uint8))
    if image is None:
        raise ValueError(f"{os.fspath(path)}: not a readable image")
    return image


def list_image_files(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files named by ``inputs``: files as given, folders searched recursively for image suffixes.

    A folder's images come in natural order of their paths below it; hidden files and
    folders are passed over. Raises ``FileNotFoundError`` for an input that does not
    exist and ``ValueError`` for a folder without images.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                     and not any(part.startswith(".") for part in p.relative_to(path).parts)]
            if not found:
                raise ValueError(f"no images found in the folder {os.fspath(item)}")
            files.extend(sorted(found, key=lambda p: tuple(natural_key(part) for part in p.relative_to(path).parts)))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"image file not found: {os.fspath(item)}")
    return files
