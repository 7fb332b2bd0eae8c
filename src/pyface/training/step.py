"""One training step split into what is drawn once and what any number of workers can compute.

The driver draws all the randomness of a step: which images form the batch, and for each
image two seeds, one for its augmentation and one for its dropout masks. The gradients of
the batch are then the sum of the gradients of any split of it into shards
(:func:`shard_gradients`, a pure function of the weights, the shard and its seeds), each
shard's loss weighted by the whole batch's total weight. An image's randomness comes from
its own seeds, never from which shard it is in, so one shard (``pyface.train``) and many
(``pyface.distributed.train``) give the same model up to float summation order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..nn.network import Architecture, Network, softmax_cross_entropy
from ..nn.optim import Adam, clip_grad_norm, learning_rate
from ..recognition.model_file import non_finite_parameters

_SEED_BOUND = 2**63


class RowRandom:
    """Random draws whose row i comes from the generator of seed i alone.

    Offers the two methods that :class:`~pyface.training.augment.Augmentation` and the
    network's dropout draw from (``random`` and ``uniform``, with the rows first in
    ``size``), so an image gets the same values in any batch and on any worker.
    """

    def __init__(self, seeds: np.ndarray):
        self._generators = [np.random.default_rng(int(s)) for s in seeds]

    def _rows(self, draw: Callable, size) -> np.ndarray:
        size = (size,) if np.isscalar(size) else tuple(size)
        if size[0] != len(self._generators):
            raise ValueError(f"{size[0]} rows asked of the random draws of {len(self._generators)} images")
        if not self._generators:
            return np.zeros(size)
        return np.stack([draw(g, size[1:]) for g in self._generators])

    def random(self, size) -> np.ndarray:
        return self._rows(lambda g, rest: g.random(rest), size)

    def uniform(self, low=0.0, high=1.0, size=None) -> np.ndarray:
        return self._rows(lambda g, rest: g.uniform(low, high, rest), size)


@dataclass(frozen=True)
class StepDraw:
    """The randomness of one step: positions of the batch's images, and each image's two seeds."""

    positions: np.ndarray
    augment_seeds: np.ndarray
    dropout_seeds: np.ndarray

    def shards(self, count: int) -> list[StepDraw]:
        """The step cut into ``count`` consecutive, nearly equal parts (empty ones left out)."""
        cuts = np.array_split(np.arange(len(self.positions)), count)
        return [StepDraw(self.positions[c], self.augment_seeds[c], self.dropout_seeds[c]) for c in cuts if len(c)]


def epoch_draws(rngs: dict, n_images: int, batch_size: int) -> list[StepDraw]:
    """Every step of one epoch, drawn from the run's ``batch``, ``augment`` and ``dropout`` generators."""
    order = rngs["batch"].permutation(n_images)
    draws = []
    for start in range(0, n_images, batch_size):
        batch = order[start : start + batch_size]
        draws.append(StepDraw(batch, rngs["augment"].integers(_SEED_BOUND, size=len(batch)),
                              rngs["dropout"].integers(_SEED_BOUND, size=len(batch))))
    return draws


@dataclass(frozen=True)
class ShardResult:
    """Summed gradients of a shard, its summed weighted loss and its count of right answers."""

    grads: dict[str, np.ndarray]
    loss_sum: float
    correct: int


def shard_gradients(arch: Architecture, params: dict, images: np.ndarray, labels: np.ndarray, weights, draw: StepDraw,
                    augment, label_smoothing: float, total_weight: float, kernel=None) -> ShardResult:
    """Gradients of a shard's images ``images[draw.positions]`` towards the loss of the whole batch.

    ``weights`` are the per-person loss weights (or None); ``total_weight`` the sum of the
    batch's sample weights, by which the shard's weighted loss is divided, so that the
    shards' gradients add up to the batch's.
    """
    network = Network(arch, params, kernel=kernel)
    x, y = images[draw.positions], labels[draw.positions]
    if augment is not None:
        x = augment(x, RowRandom(draw.augment_seeds))
    sample_weight = None if weights is None else weights[y]
    logits, cache = network.forward(x, training=True, rng=RowRandom(draw.dropout_seeds))
    loss, dlogits, probs = softmax_cross_entropy(logits, y, sample_weight=sample_weight,
                                                 label_smoothing=label_smoothing)
    shard_weight = len(y) if sample_weight is None else float(sample_weight.sum())
    if shard_weight != total_weight:
        dlogits *= dlogits.dtype.type(shard_weight / total_weight)
    grads = network.backward(dlogits, cache)
    return ShardResult(grads, loss * shard_weight, int((probs.argmax(axis=1) == y).sum()))


def add_results(results: list[ShardResult]) -> ShardResult:
    """The shards' results summed, in the order given (so the same order gives the same floats)."""
    grads = {name: value.copy() for name, value in results[0].grads.items()}
    for result in results[1:]:
        for name, value in result.grads.items():
            grads[name] += value
    return ShardResult(grads, sum(r.loss_sum for r in results), sum(r.correct for r in results))


# What computes a step: (weights, the step's draw, the batch's total weight) -> the summed result.
StepGradients = Callable[[dict, StepDraw, float], ShardResult]


def local_gradients(network: Network, images, labels, weights, settings) -> StepGradients:
    """The step's gradients computed here, the whole batch as one shard."""
    def gradients(params: dict, draw: StepDraw, total_weight: float) -> ShardResult:
        return shard_gradients(network.arch, params, images, labels, weights, draw, settings.augment,
                               settings.label_smoothing, total_weight, kernel=network.kernel)

    return gradients


def train_epoch(network: Network, optimizer: Adam, images, labels, weights, settings, rngs: dict,
                total_steps: int, warmup_steps: int, gradients: StepGradients) -> tuple[float, float, float]:
    """One pass over the training images in random mini-batches.

    Returns (weighted mean loss, accuracy, last learning rate). Raises
    ``FloatingPointError`` as soon as the loss or the gradients stop being finite,
    before they reach the weights.
    """
    loss_sum, weight_sum, correct = 0.0, 0.0, 0
    for step, draw in enumerate(epoch_draws(rngs, len(labels), settings.batch_size), 1):
        total_weight = len(draw.positions) if weights is None else float(weights[labels[draw.positions]].sum())
        result = gradients(network.params, draw, total_weight)
        if not np.isfinite(result.loss_sum):
            raise FloatingPointError(f"the training loss became {result.loss_sum / total_weight} at step {step}")
        norm = clip_grad_norm(result.grads, settings.clip_norm)
        if not np.isfinite(norm):
            raise FloatingPointError(f"the gradients became {norm} at step {step}")
        lr = learning_rate(optimizer.t, total_steps, settings.learning_rate,
                           schedule=settings.lr_schedule, warmup_steps=warmup_steps)
        optimizer.step(result.grads, lr=lr)
        loss_sum += result.loss_sum
        weight_sum += total_weight
        correct += result.correct
    broken = non_finite_parameters(network.params)
    if broken:
        raise FloatingPointError(f"the weights became non-finite (in {', '.join(broken)})")
    # Finite weights can still be so large that the scores overflow: such a model only
    # ever answers NaN, so it must not become the last good one.
    logits, _ = network.forward(images[: settings.batch_size])
    if not np.isfinite(logits).all():
        raise FloatingPointError("the weights became so large that the scores overflow")
    return loss_sum / weight_sum, correct / len(labels), lr
