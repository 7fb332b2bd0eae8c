"""The network's plain functions: unit-length rows, softmax and the training loss."""

from __future__ import annotations

import numpy as np

__all__ = ["unit_rows", "unit_rows_backward", "softmax", "softmax_cross_entropy"]

# Keeps norms away from zero in divisions: an all-zero row stays zero.
_NORM_EPS = 1e-12


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Every row of x (N, D) divided by its Euclidean norm, in x's dtype (all-zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _NORM_EPS)


def unit_rows_backward(dunit: np.ndarray, x: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Gradient w.r.t. x (N, D) given the gradient w.r.t. ``unit = unit_rows(x)``.

    Normalising removes the component along the row: d(x/|x|) = (I - u u^T) dx / |x|.
    """
    radial = (dunit * unit).sum(axis=1, keepdims=True)
    return (dunit - radial * unit) / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _NORM_EPS)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    label_smoothing: float = 0.0,
    normalizer: float | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted mean cross-entropy against smoothed one-hot targets.

    Returns the loss, its gradient w.r.t. ``logits`` and the probabilities. The weighted
    sum is divided by ``normalizer``, by default the sum of the weights (the number of
    samples without weights); a part of a larger batch passes the batch's total, so that
    the losses and gradients of its parts add up to those of the whole batch.
    """
    n, C = logits.shape
    z = logits - logits.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    target = np.full((n, C), label_smoothing / C, dtype=logits.dtype)
    target[np.arange(n), labels] += 1.0 - label_smoothing
    w = np.ones(n, dtype=logits.dtype) if sample_weight is None else np.asarray(sample_weight, dtype=logits.dtype)
    total = w.sum() if normalizer is None else logits.dtype.type(normalizer)
    per_sample = -(target * log_probs).sum(axis=1)
    probs = np.exp(log_probs)
    dlogits = (probs - target) * (w / total)[:, None]
    return float((w * per_sample).sum() / total), dlogits, probs
