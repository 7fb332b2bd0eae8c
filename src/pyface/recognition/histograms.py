"""Fixed descriptions of a face: histograms of its gradients' orientations and of its local
binary patterns, cell by cell.

Both read the preprocessed face the network reads, in cells of 8 x 8 pixels, and learn
nothing; :mod:`.descriptor` projects them onto what tells people apart. Gradient histograms
(OpenCV's ``HOGDescriptor``: 9 orientations, blocks of 2 x 2 cells normalised together)
describe the shape of edges; local binary patterns (each pixel's 8 neighbours, brighter or
not, as one of 58 uniform patterns or "other") describe texture and are unchanged by any
change of brightness that keeps the order of the grey levels. Every value is square-rooted
(the Hellinger mapping, under which the Euclidean distance of two histograms behaves like a
distance of distributions).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["KINDS", "CELL", "BINS", "PATTERNS", "LAYOUT", "MIN_SIZE", "face_histograms", "histogram_size",
           "gradient_histograms", "pattern_histograms"]

CELL = 8  # pixels: the side of a cell, and the stride of the gradient histograms' 2 x 2-cell blocks
BINS = 9  # gradient orientations over 0-180 degrees
# Faces whose patterns are counted at once: the patterns are int64 per pixel.
_PATTERN_BATCH = 256
# Each pixel against its 8 neighbours, clockwise from the top left.
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
# The smallest face both can describe: one block of 2 x 2 cells.
MIN_SIZE = 2 * CELL
# What a descriptor may read: one of the two histograms, or both side by side.
KINDS = ("hog", "lbp", "hog+lbp")


def _uniform_patterns() -> np.ndarray:
    """Each 8-bit pattern's bin: the 58 with at most two changes between 0 and 1 around the
    circle (edges, corners, spots, flat) have one each, all others share the last."""
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1
    changes = (bits != np.roll(bits, -1, axis=1)).sum(axis=1)
    uniform = np.flatnonzero(changes <= 2)
    lookup = np.full(256, len(uniform), dtype=np.int64)
    lookup[uniform] = np.arange(len(uniform))
    return lookup


_PATTERN_BIN = _uniform_patterns()
PATTERNS = int(_PATTERN_BIN.max()) + 1  # 59
# What fixes the histograms' values, as model files record it: a file made with another
# layout would be read with the wrong features.
LAYOUT = {"cell": CELL, "bins": BINS, "patterns": PATTERNS}


def _window(size: int) -> tuple[int, int]:
    """(side, start): the centred square of whole cells the histograms read in a face of ``size`` pixels."""
    side = size - size % CELL
    if side < MIN_SIZE:
        raise ValueError(f"face histograms need faces of at least {MIN_SIZE} pixels, got {size}")
    return side, (size - side) // 2


def _hog(size: int) -> cv2.HOGDescriptor:
    side, _ = _window(size)
    return cv2.HOGDescriptor((side, side), (2 * CELL, 2 * CELL), (CELL, CELL), (CELL, CELL), BINS)


def _kinds(kind: str) -> list[str]:
    if kind not in KINDS:
        raise ValueError(f"descriptor kind must be one of {KINDS}, got {kind!r}")
    return kind.split("+")


def histogram_size(size: int, kind: str = "hog") -> int:
    """Values in the histograms ``kind`` of a face of ``size`` x ``size`` pixels."""
    side, _ = _window(size)
    sizes = {"hog": lambda: int(_hog(size).getDescriptorSize()), "lbp": lambda: (side // CELL) ** 2 * PATTERNS}
    return sum(sizes[part]() for part in _kinds(kind))


def _levels(images: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Grey levels (N, S, S) uint8 of preprocessed faces in [0, 1], and their window (side, start)."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"expected preprocessed faces (N, S, S), got shape {images.shape}")
    side, start = _window(images.shape[1])
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8), side, start


def gradient_histograms(images: np.ndarray) -> np.ndarray:
    """Histograms of oriented gradients (N, F) float32 of preprocessed faces (N, S, S) in [0, 1], square-rooted.

    Faces whose side is no multiple of 8 pixels are read in their centred part that is.
    """
    levels, side, start = _levels(images)
    hog = _hog(levels.shape[1])
    out = np.empty((len(levels), hog.getDescriptorSize()), dtype=np.float32)
    for k, face in enumerate(levels):
        out[k] = hog.compute(np.ascontiguousarray(face[start : start + side, start : start + side])).ravel()
    return np.sqrt(np.maximum(out, 0.0))


def pattern_histograms(images: np.ndarray) -> np.ndarray:
    """Histograms of uniform local binary patterns (N, cells x 59) float32 of preprocessed faces, square-rooted.

    Each pixel's pattern sets bit i when its i-th neighbour is at least as bright (the
    face's edge repeated beyond it); each cell's histogram counts its 64 pixels' patterns,
    as a share of them. Read in the same centred window of whole cells as the gradients.
    """
    levels, side, start = _levels(images)
    parts = [_pattern_counts(levels[k : k + _PATTERN_BATCH], side, start) for k in range(0, len(levels), _PATTERN_BATCH)]
    return np.concatenate(parts) if parts else np.zeros((0, (side // CELL) ** 2 * PATTERNS), dtype=np.float32)


def _pattern_counts(levels: np.ndarray, side: int, start: int) -> np.ndarray:
    n, size = len(levels), levels.shape[1]
    padded = np.pad(levels, ((0, 0), (1, 1), (1, 1)), mode="edge")
    codes = np.zeros(levels.shape, dtype=np.int64)
    for bit, (dy, dx) in enumerate(_NEIGHBOURS):
        codes |= (padded[:, 1 + dy : 1 + dy + size, 1 + dx : 1 + dx + size] >= levels).astype(np.int64) << bit
    cells = side // CELL
    window = _PATTERN_BIN[codes[:, start : start + side, start : start + side]]
    cell_of = window.reshape(n, cells, CELL, cells, CELL).transpose(0, 1, 3, 2, 4).reshape(n, cells * cells, CELL * CELL)
    # One bincount over (face, cell, pattern) at once.
    index = (np.arange(n * cells * cells).reshape(n, cells * cells, 1) * PATTERNS + cell_of).ravel()
    counts = np.bincount(index, minlength=n * cells * cells * PATTERNS).astype(np.float32)
    return np.sqrt(counts.reshape(n, cells * cells * PATTERNS) / (CELL * CELL))


def face_histograms(images: np.ndarray, kind: str = "hog") -> np.ndarray:
    """The histograms ``kind`` (one of ``KINDS``) of preprocessed faces (N, S, S), side by side: (N, F) float32."""
    readers = {"hog": gradient_histograms, "lbp": pattern_histograms}
    return np.hstack([readers[part](images) for part in _kinds(kind)])
