"""One training step, split where data parallelism needs it.

The randomness of a step (which images, their augmentation, the dropout masks) is drawn
in one place, :func:`draw_batch`, for the whole batch; :func:`batch_gradients` turns any
part of that batch into its share of the loss and gradients, normalised by the whole
batch's weight, so the shares of the parts add up to the gradients of the batch. One
process computes the batch as one part; a cluster gives each worker a part
(:meth:`Batch.part`) and sums what comes back (:func:`sum_gradients`). Which worker
computes an image never changes what happens to it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..nn.functional import softmax_cross_entropy
from ..nn.network import Network
from .augment import Augmentation

__all__ = ["Batch", "Gradients", "GradientFunction", "class_weights", "draw_batch", "batch_gradients",
           "sum_gradients"]


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Weights inversely proportional to class frequency, averaging 1 over the samples."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights


@dataclass(frozen=True)
class Batch:
    """The images of one step as the network trains on them, with everything random already drawn.

    ``images`` (n, S, S) augmented; ``labels`` (n,); ``sample_weight`` (n,) or None;
    ``dropout_masks`` as :meth:`~pyface.nn.Network.dropout_masks` draws them (row i
    belongs to image i); ``total_weight`` is the weight of the whole batch this one is
    part of, by which every part's loss is divided.
    """

    images: np.ndarray
    labels: np.ndarray
    sample_weight: np.ndarray | None
    dropout_masks: list[np.ndarray]
    total_weight: float

    def __len__(self) -> int:
        return len(self.labels)

    def part(self, start: int, stop: int) -> Batch:
        """Images ``start:stop`` of the batch, still normalised by the whole batch's weight."""
        rows = slice(start, stop)
        return Batch(self.images[rows], self.labels[rows],
                     None if self.sample_weight is None else self.sample_weight[rows],
                     [mask[rows] for mask in self.dropout_masks], self.total_weight)


@dataclass
class Gradients:
    """A part's share of a step: its weighted loss over the batch's weight, gradients, correct answers."""

    loss: float
    grads: dict[str, np.ndarray]
    correct: int


# What computes a batch's gradients with the given network: in this process, or on a cluster.
GradientFunction = Callable[[Network, Batch, float], Gradients]


def draw_batch(network: Network, images: np.ndarray, labels: np.ndarray, indices: np.ndarray, *,
               augment: Augmentation | None, weights: np.ndarray | None,
               rngs: dict[str, np.random.Generator]) -> Batch:
    """The batch of ``images[indices]``: augmented from ``rngs["augment"]``, dropout from ``rngs["dropout"]``."""
    xb, yb = images[indices], labels[indices]
    if augment is not None:
        xb = augment(xb, rngs["augment"])
    sw = None if weights is None else weights[yb]
    masks = network.dropout_masks(len(yb), rngs["dropout"])
    total = float(len(yb)) if sw is None else float(sw.astype(network.dtype).sum())
    return Batch(xb, yb, sw, masks, total)


def batch_gradients(network: Network, batch: Batch, label_smoothing: float) -> Gradients:
    """The share of ``batch`` (a whole batch or a part of one) in the step's loss and gradients."""
    logits, cache = network.forward(batch.images, training=True, dropout_masks=batch.dropout_masks)
    loss, dlogits, probs = softmax_cross_entropy(logits, batch.labels, sample_weight=batch.sample_weight,
                                                 label_smoothing=label_smoothing, normalizer=batch.total_weight)
    grads = network.backward(dlogits, cache)
    return Gradients(loss, grads, int((probs.argmax(axis=1) == batch.labels).sum()))


def sum_gradients(parts: Sequence[Gradients]) -> Gradients:
    """The gradients of a batch from those of its parts."""
    if not parts:
        raise ValueError("no gradients to sum")
    grads = {name: functools.reduce(np.add, (part.grads[name] for part in parts)) for name in parts[0].grads}
    return Gradients(sum(part.loss for part in parts), grads, sum(part.correct for part in parts))
