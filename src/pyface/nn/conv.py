"""The convolutional front end: 3 x 3 convolutions with ReLU that the LSTMs can read instead of pixels.

Each output pixel of a layer sees a 3 x 3 neighbourhood of the layer below, so an LSTM reading
a row of the last layer's maps reads local edges and corners (and, with a second layer, small
parts made of them) rather than single pixel values, and every stride of 2 halves the
sequences it reads. A layer is a matrix product over 3 x 3 patches (``patches``): for one
64-pixel face the front end costs under a tenth of the LSTMs' work, so it stays in NumPy
(BLAS) rather than in the native kernel.

Shapes, channels last: inputs (N, S, S, C_in), or (N, S, S) for one channel; patches
(N, S', S', 9 * C_in), the 9 taps row-major, each with its C_in values, with
S' = (S - 1) // stride + 1 (zero padding of 1); weight (C_out, 9 * C_in), bias (C_out,);
maps (N, S', S', C_out).
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


def _channels_last(inputs: np.ndarray) -> np.ndarray:
    return inputs[..., None] if inputs.ndim == 3 else inputs


def patches(inputs: np.ndarray, stride: int) -> np.ndarray:
    """The 3 x 3 neighbourhood of every output pixel, (N, S', S', 9 * C_in), zero outside the image."""
    inputs = _channels_last(inputs)
    n, size, _, channels = inputs.shape
    padded = np.zeros((n, size + 2, size + 2, channels), dtype=inputs.dtype)
    padded[:, 1:-1, 1:-1] = inputs
    cols = np.stack([padded[:, rows, cols] for rows, cols in _taps(size, stride)], axis=3)
    return cols.reshape(*cols.shape[:3], KERNEL * KERNEL * channels)


def patches_backward(dpatches: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Gradient w.r.t. the inputs (N, S, S, C_in) given the gradient w.r.t. their patches."""
    n, out = dpatches.shape[:2]
    dpatches = dpatches.reshape(n, out, out, KERNEL * KERNEL, -1)
    padded = np.zeros((n, size + 2, size + 2, dpatches.shape[-1]), dtype=dpatches.dtype)
    for k, (rows, cols) in enumerate(_taps(size, stride)):
        padded[:, rows, cols] += dpatches[:, :, :, k]
    return padded[:, 1:-1, 1:-1]


def conv_forward(inputs: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int
                 ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """ReLU(conv(inputs)) as maps (N, S', S', C_out), and the cache for :func:`conv_backward`."""
    cols = patches(inputs, stride)
    maps = np.maximum(cols @ weight.T + bias, 0)
    return maps, (cols, maps)


def conv_backward(dmaps: np.ndarray, cache: tuple[np.ndarray, np.ndarray], weight: np.ndarray, *,
                  size: int, stride: int, need_dinputs: bool) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(d inputs (N, S, S, C_in) or None, d weight, d bias) given the gradient w.r.t. the maps."""
    cols, maps = cache
    dz = np.where(maps > 0, dmaps, 0).astype(weight.dtype, copy=False)  # ReLU passes where it was open
    channels = weight.shape[0]
    flat = dz.reshape(-1, channels)
    dweight = flat.T @ cols.reshape(-1, weight.shape[1])
    dbias = flat.sum(axis=0)
    dinputs = patches_backward(dz @ weight, size, stride) if need_dinputs else None
    return dinputs, dweight, dbias
