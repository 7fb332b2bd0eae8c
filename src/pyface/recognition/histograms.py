"""Fixed descriptions of a face: histograms of its gradients' orientations, of its local
binary patterns and of its local phase, cell by cell.

All read the preprocessed face the network reads, in cells of 8 x 8 pixels, and learn
nothing; :mod:`.descriptor` projects them onto what tells people apart. Gradient histograms
(``"hog"``, OpenCV's ``HOGDescriptor``: 9 orientations, blocks of 2 x 2 cells normalised
together) describe the shape of edges; local binary patterns (each pixel's 8 neighbours,
brighter or not, as one of 58 uniform patterns or "other") describe texture and are unchanged
by any change of brightness that keeps the order of the grey levels: of neighbours 1 pixel away
(``"lbp"``), 2 pixels away (``"lbp2"``), and of the face at half its size (``"lbph"``, coarser
texture in cells twice as large). Local phase (``"lpq"``, local phase quantization) describes
each pixel's 7 x 7 neighbourhood by the signs of the real and imaginary parts of four of its
lowest spatial frequencies, one of 256 codes that a little blur leaves as they are. Every
value is square-rooted (the Hellinger mapping, under which the Euclidean distance of two
histograms behaves like a distance of distributions).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

__all__ = ["KINDS", "PARTS", "CELL", "BINS", "PATTERNS", "PHASES", "PHASE_WINDOW", "LAYOUT", "MIN_SIZE",
           "face_histograms", "histogram_size", "gradient_histograms", "pattern_histograms", "phase_histograms"]

CELL = 8  # pixels: the side of a cell, and the stride of the gradient histograms' 2 x 2-cell blocks
BINS = 9  # gradient orientations over 0-180 degrees
# Faces whose patterns are counted at once: the patterns are int64 per pixel.
_PATTERN_BATCH = 256
# Each pixel against its 8 neighbours, clockwise from the top left.
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
# The smallest face each can describe: one block of 2 x 2 cells (of the half-size face for "lbph").
MIN_SIZE = 2 * CELL
# The histograms a descriptor may read, in the order they lie side by side.
PARTS = ("hog", "lbp", "lbp2", "lbph", "lpq")
# What a descriptor may read: one histogram, gradients and patterns, or all of them (the
# open-set recipe's: docs/experiments.md, "Local phase, wider patterns and weighted directions").
KINDS = ("hog", "lbp", "hog+lbp", "hog+lbp+lbp2+lbph+lpq")
# Local phase: the side of the neighbourhood (pixels) and the codes (4 frequencies x real and
# imaginary part, one bit each).
PHASE_WINDOW = 7
PHASES = 256


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
    cells = lambda side: (_window(side)[0] // CELL) ** 2  # noqa: E731
    sizes = {"hog": lambda: int(_hog(size).getDescriptorSize()), "lbp": lambda: cells(size) * PATTERNS,
             "lbp2": lambda: cells(size) * PATTERNS, "lbph": lambda: cells(_half_size(size)) * PATTERNS,
             "lpq": lambda: cells(size) * PHASES}
    return sum(sizes[part]() for part in _kinds(kind))


def _faces(images: np.ndarray) -> np.ndarray:
    """``images`` as an array, or ValueError unless they are preprocessed faces (N, S, S)."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"expected preprocessed faces (N, S, S), got shape {images.shape}")
    return images


def _levels(images: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Grey levels (N, S, S) uint8 of preprocessed faces in [0, 1], and their window (side, start)."""
    images = _faces(images)
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


def pattern_histograms(images: np.ndarray, radius: int = 1) -> np.ndarray:
    """Histograms of uniform local binary patterns (N, cells x 59) float32 of preprocessed faces, square-rooted.

    Each pixel's pattern sets bit i when its i-th neighbour, ``radius`` >= 1 pixels away
    along a row, a column or a diagonal, is at least as bright (the face's edge repeated
    beyond it); each cell's histogram counts its 64 pixels' patterns, as a share of them.
    Read in the same centred window of whole cells as the gradients.
    """
    if not (isinstance(radius, (int, np.integer)) and radius >= 1):
        raise ValueError(f"the patterns' radius must be a whole number of pixels >= 1, got {radius!r}")
    levels, side, start = _levels(images)
    bins = (_PATTERN_BIN[_pattern_codes(levels[k : k + _PATTERN_BATCH], int(radius))]
            for k in range(0, len(levels), _PATTERN_BATCH))
    return _cell_histograms(bins, side, start, PATTERNS)


def _pattern_codes(levels: np.ndarray, radius: int) -> np.ndarray:
    size = levels.shape[1]
    padded = np.pad(levels, ((0, 0), (radius, radius), (radius, radius)), mode="edge")
    codes = np.zeros(levels.shape, dtype=np.int64)
    for bit, (dy, dx) in enumerate(_NEIGHBOURS):
        dy, dx = radius + radius * dy, radius + radius * dx
        codes |= (padded[:, dy : dy + size, dx : dx + size] >= levels).astype(np.int64) << bit
    return codes


def _cell_histograms(bins: Iterable[np.ndarray], side: int, start: int, values: int) -> np.ndarray:
    """Square roots of each cell's shares of ``values`` bins (N, cells x values) float32, from
    batches of each pixel's bin (n, S, S), read in the window (side, start)."""
    cells = side // CELL
    out = []
    for batch in bins:
        n = len(batch)
        window = batch[:, start : start + side, start : start + side]
        cell_of = window.reshape(n, cells, CELL, cells, CELL).transpose(0, 1, 3, 2, 4)
        cell_of = cell_of.reshape(n, cells * cells, CELL * CELL)
        # One bincount over (face, cell, bin) at once.
        index = (np.arange(n * cells * cells).reshape(n, cells * cells, 1) * values + cell_of).ravel()
        counts = np.bincount(index, minlength=n * cells * cells * values).astype(np.float32)
        out.append(np.sqrt(counts.reshape(n, cells * cells * values) / (CELL * CELL)))
    return np.concatenate(out) if out else np.zeros((0, cells * cells * values), dtype=np.float32)


def _half_size(size: int) -> int:
    if size // 2 < MIN_SIZE:
        raise ValueError(f"patterns of the half-size face need faces of at least {2 * MIN_SIZE} pixels, got {size}")
    return size // 2


def _half(images: np.ndarray) -> np.ndarray:
    """Faces (N, S, S) at half their size (S // 2), each new pixel the mean of the old ones it covers."""
    images = _faces(images).astype(np.float32, copy=False)
    half = _half_size(images.shape[1])
    out = np.empty((len(images), half, half), dtype=np.float32)
    for k, face in enumerate(images):
        out[k] = cv2.resize(face, (half, half), interpolation=cv2.INTER_AREA)
    return out


def _phase_kernels() -> list[np.ndarray]:
    """The real and imaginary parts of the 7 x 7 windows' four frequencies (a, 0), (0, a), (a, a),
    (a, -a) with a = 1 / 7 cycles per pixel: 8 float32 kernels, one per bit of the code."""
    offsets = np.arange(PHASE_WINDOW) - PHASE_WINDOW // 2
    flat = np.ones(PHASE_WINDOW)
    wave = np.exp(-2j * np.pi * offsets / PHASE_WINDOW)
    kernels = [np.outer(flat, wave), np.outer(wave, flat), np.outer(wave, wave), np.outer(wave, np.conj(wave))]
    return [part.astype(np.float32) for kernel in kernels for part in (kernel.real, kernel.imag)]


_PHASE_KERNELS = _phase_kernels()


def phase_histograms(images: np.ndarray) -> np.ndarray:
    """Histograms of local phase codes (N, cells x 256) float32 of preprocessed faces, square-rooted.

    Bit i of a pixel's code is set when the i-th of the 8 responses of its 7 x 7
    neighbourhood (the face mirrored at its edge) to ``_PHASE_KERNELS`` is positive; each
    cell's histogram counts its 64 pixels' codes, as a share of them, in the same centred
    window of whole cells as the others.
    """
    images = _faces(images)
    side, start = _window(images.shape[1])
    codes = (_phase_codes(images[k : k + _PATTERN_BATCH]) for k in range(0, len(images), _PATTERN_BATCH))
    return _cell_histograms(codes, side, start, PHASES)


def _phase_codes(images: np.ndarray) -> np.ndarray:
    codes = np.zeros(images.shape, dtype=np.uint8)
    for k, face in enumerate(images.astype(np.float32)):
        for bit, kernel in enumerate(_PHASE_KERNELS):
            response = cv2.filter2D(face, -1, kernel, borderType=cv2.BORDER_REFLECT)
            codes[k] |= (response > 0).astype(np.uint8) << bit
    return codes


def face_histograms(images: np.ndarray, kind: str = "hog") -> np.ndarray:
    """The histograms ``kind`` (one of ``KINDS``) of preprocessed faces (N, S, S), side by side: (N, F) float32."""
    readers = {"hog": gradient_histograms, "lbp": pattern_histograms,
               "lbp2": lambda faces: pattern_histograms(faces, radius=2),
               "lbph": lambda faces: pattern_histograms(_half(faces)), "lpq": phase_histograms}
    return np.hstack([readers[part](images) for part in _kinds(kind)])
