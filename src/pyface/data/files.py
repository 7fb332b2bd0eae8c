"""Finding the image files to name: folders searched recursively, in a stable natural order."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "image_files"]

# Folders are searched for files with these suffixes (the formats OpenCV decodes); a file
# named explicitly is read whatever its suffix.
IMAGE_SUFFIXES = frozenset(
    ".bmp .dib .jpeg .jpg .jpe .jp2 .png .webp .pbm .pgm .ppm .pxm .pnm .sr .ras .tiff .tif .exr .hdr .pic".split()
)


def _natural_key(path: Path) -> list[tuple]:
    # Digit runs compare as numbers, so that 2.png comes before 10.png, as in load_images.
    return [tuple(int(run) if run.isdigit() else run for run in re.split(r"(\d+)", part.lower()))
            for part in path.parts]


def image_files(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The image files of ``inputs``: files as given, folders searched recursively.

    A folder contributes its files with an image suffix (hidden files and folders left
    out) in natural order (``2.png`` before ``10.png``). Raises ``FileNotFoundError``
    for an input that does not exist and ``ValueError`` for a folder without images.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                     and not any(part.startswith(".") for part in p.relative_to(path).parts)]
            if not found:
                raise ValueError(f"no images found in the folder {os.fspath(item)}")
            files.extend(sorted(found, key=lambda p: _natural_key(p.relative_to(path))))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"image file not found: {os.fspath(item)}")
    return files
