"""Adam with decoupled weight decay, global gradient-norm clipping and the learning-rate schedule."""

from __future__ import annotations

import math

import numpy as np

SCHEDULES = ("constant", "cosine")


class Adam:
    """Adam (Kingma & Ba) with AdamW's decoupled weight decay, updating ``params`` in place.

    Weight decay shrinks only the names in ``decay``: biases are left alone so that,
    for example, the forget-gate bias keeps its meaning.
    """

    def __init__(
        self,
        params: dict[str, np.ndarray],
        *,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decay: set[str] | None = None,
    ):
        self.params = params
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = weight_decay
        self.decay = {n for n, v in params.items() if v.ndim > 1} if decay is None else set(decay)
        self.m = {n: np.zeros_like(v) for n, v in params.items()}
        self.v = {n: np.zeros_like(v) for n, v in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray], lr: float | None = None) -> None:
        lr = self.lr if lr is None else lr
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        correction1 = 1.0 - b1**self.t
        correction2 = 1.0 - b2**self.t
        for name, p in self.params.items():
            g = grads[name]
            m, v = self.m[name], self.v[name]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            if self.weight_decay and name in self.decay:
                p *= 1.0 - lr * self.weight_decay
            p -= (lr / correction1) * m / (np.sqrt(v / correction2) + self.eps)


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float | None) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping; ``None`` or ``inf`` only measures it.
    """
    norm = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads.values()))
    if max_norm is not None and norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= scale
    return norm


def learning_rate(step: int, total_steps: int, base: float, *, schedule: str = "cosine", warmup_steps: int = 0,
                  final_fraction: float = 0.0) -> float:
    """Learning rate for update ``step`` (0-based) out of ``total_steps``.

    A linear warm-up over ``warmup_steps`` updates, then either constant or a cosine
    decay from ``base`` down to ``final_fraction * base`` at the last update.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if step < warmup_steps:
        return base * (step + 1) / warmup_steps
    if schedule == "constant":
        return base
    span = max(total_steps - warmup_steps - 1, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return base * (final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress)))
