"""Splitting images into two parts with every person in both: the one rule train/test and validation share."""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_split"]


def stratified_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out), sorted, holding out about ``fraction`` of every person's images.

    Each person with n images gives ``floor(fraction * n + 0.5)`` of them (numpy's
    ``round`` would round halves to even), but never all: every held-out person is also
    in the kept part, and a person with a single image is never held out.
    """
    labels = np.asarray(labels)
    held_out = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_out = min(int(np.floor(fraction * len(members) + 0.5)), len(members) - 1)
        held_out[rng.choice(members, size=n_out, replace=False)] = True
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)
