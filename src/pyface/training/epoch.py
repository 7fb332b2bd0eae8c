"""One epoch: a pass over the training images in random mini-batches, and the validation loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.functional import softmax_cross_entropy
from ..nn.network import Network, non_finite_parameters
from ..nn.optim import Adam, clip_grad_norm, learning_rate
from .settings import TrainingSettings
from .step import GradientFunction, batch_gradients, draw_batch


@dataclass(frozen=True)
class Schedule:
    """Steps of the whole run and of its warm-up, for the learning rate."""

    total_steps: int
    warmup_steps: int

    @classmethod
    def of(cls, n_images: int, settings: TrainingSettings) -> Schedule:
        steps_per_epoch = -(-n_images // settings.batch_size)
        return cls(steps_per_epoch * settings.epochs, steps_per_epoch * settings.warmup_epochs)


def train_epoch(network: Network, optimizer: Adam, images: np.ndarray, labels: np.ndarray,
                weights: np.ndarray | None, settings: TrainingSettings, rngs: dict, schedule: Schedule, *,
                gradients: GradientFunction = batch_gradients) -> tuple[float, float, float]:
    """One pass over the training images in random mini-batches.

    Returns (weighted mean loss, accuracy, last learning rate). Raises
    ``FloatingPointError`` as soon as the loss or the gradients stop being finite,
    before they reach the weights. ``gradients`` computes each batch's gradients.
    """
    order = rngs["batch"].permutation(len(labels))
    loss_sum, weight_sum, correct = 0.0, 0.0, 0
    lr = settings.learning_rate
    for step, start in enumerate(range(0, len(order), settings.batch_size), 1):
        batch = draw_batch(network, images, labels, order[start : start + settings.batch_size],
                           augment=settings.augment, weights=weights, rngs=rngs)
        result = gradients(network, batch, settings.label_smoothing)
        if not np.isfinite(result.loss):
            raise FloatingPointError(f"the training loss became {result.loss} at step {step}")
        norm = clip_grad_norm(result.grads, settings.clip_norm)
        if not np.isfinite(norm):
            raise FloatingPointError(f"the gradients became {norm} at step {step}")
        lr = learning_rate(optimizer.t, schedule.total_steps, settings.learning_rate,
                           schedule=settings.lr_schedule, warmup_steps=schedule.warmup_steps)
        optimizer.step(result.grads, lr=lr)
        batch_weight = len(batch) if batch.sample_weight is None else float(batch.sample_weight.sum())
        loss_sum += result.loss * batch_weight
        weight_sum += batch_weight
        correct += result.correct
    check_usable(network, images[: settings.batch_size])
    return loss_sum / weight_sum, correct / len(labels), lr


def check_usable(network: Network, images: np.ndarray) -> None:
    """Raise ``FloatingPointError`` when the weights are not finite, or so large that the scores overflow."""
    broken = non_finite_parameters(network.params)
    if broken:
        raise FloatingPointError(f"the weights became non-finite (in {', '.join(broken)})")
    # Finite weights can still be so large that the scores overflow: such a model only
    # ever answers NaN, so it must not become the last good one.
    logits, _ = network.forward(images)
    if not np.isfinite(logits).all():
        raise FloatingPointError("the weights became so large that the scores overflow")


def evaluate_loss(network: Network, images: np.ndarray, labels: np.ndarray,
                  batch_size: int = 256) -> tuple[float, float]:
    """Mean loss and accuracy of the network on labelled images, without dropout."""
    losses, correct = 0.0, 0
    for start in range(0, len(labels), batch_size):
        logits, _ = network.forward(images[start : start + batch_size])
        loss, _, probs = softmax_cross_entropy(logits, labels[start : start + batch_size])
        losses += loss * len(logits)
        correct += int((probs.argmax(axis=1) == labels[start : start + batch_size]).sum())
    return losses / len(labels), correct / len(labels)
