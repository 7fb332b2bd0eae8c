"""The convolutional front end: a 3 x 3 convolution with ReLU that the LSTMs can read instead of pixels.

Each output pixel sees a 3 x 3 neighbourhood, so an LSTM reading a row of the output reads
local edges and corners rather than single pixel values, and a stride of 2 halves the
sequences it reads. The convolution is a matrix product over 3 x 3 patches (``patches``):
for one 64-pixel face it costs under a twentieth of the LSTMs' work, so it stays in NumPy
(BLAS) rather than in the native kernel.

Shapes: images (N, S, S); patches (N, S', S', 9) with S' = (S - 1) // stride + 1 (zero
padding of 1); weight (C, 9), bias (C,); maps (N, S', S', C), channels last.
"""

from __future__ import annotations

import numpy as np

__all__ = ["KERNEL", "output_size", "patches", "patches_backward", "conv_forward", "conv_backward"]

# The side of the square kernel; its taps are numbered row-major, 0..8.
KERNEL = 3


def output_size(size: int, stride: int) -> int:
    """Side of the maps of an image ``size`` pixels square (padding 1, kernel 3)."""
    return (size - 1) // stride + 1


def _taps(size: int, stride: int):
    out = output_size(size, stride)
    for di in range(KERNEL):
        for dj in range(KERNEL):
            yield (slice(di, di + stride * (out - 1) + 1, stride), slice(dj, dj + stride * (out - 1) + 1, stride))


def patches(images: np.ndarray, stride: int) -> np.ndarray:
    """The 3 x 3 neighbourhood of every output pixel, (N, S', S', 9), zero outside the image."""
    n, size, _ = images.shape
    padded = np.zeros((n, size + 2, size + 2), dtype=images.dtype)
    padded[:, 1:-1, 1:-1] = images
    return np.stack([padded[:, rows, cols] for rows, cols in _taps(size, stride)], axis=-1)


def patches_backward(dpatches: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Gradient w.r.t. the images (N, S, S) given the gradient w.r.t. their patches."""
    n = dpatches.shape[0]
    padded = np.zeros((n, size + 2, size + 2), dtype=dpatches.dtype)
    for k, (rows, cols) in enumerate(_taps(size, stride)):
        padded[:, rows, cols] += dpatches[..., k]
    return padded[:, 1:-1, 1:-1]


def conv_forward(images: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int
                 ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """ReLU(conv(images)) as maps (N, S', S', C), and the cache for :func:`conv_backward`."""
    cols = patches(images, stride)
    maps = np.maximum(cols @ weight.T + bias, 0)
    return maps, (cols, maps)


def conv_backward(dmaps: np.ndarray, cache: tuple[np.ndarray, np.ndarray], weight: np.ndarray, *,
                  size: int, stride: int, need_dimages: bool) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(d images or None, d weight, d bias) given the gradient w.r.t. the maps."""
    cols, maps = cache
    dz = np.where(maps > 0, dmaps, 0).astype(weight.dtype, copy=False)  # ReLU passes where it was open
    channels = weight.shape[0]
    flat = dz.reshape(-1, channels)
    dweight = flat.T @ cols.reshape(-1, KERNEL * KERNEL)
    dbias = flat.sum(axis=0)
    dimages = patches_backward(dz @ weight, size, stride) if need_dimages else None
    return dimages, dweight, dbias
