"""What a run carries from epoch to epoch: its random generators, early stopping, and snapshots of both."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.network import Network
from ..nn.optim import Adam
from .checkpoint import TrainingState

RNG_NAMES = ("init", "split", "batch", "augment", "dropout", "blend", "calibrate")
# Generators still drawn from after the first epoch begins, so part of a checkpoint.
EPOCH_RNGS = ("batch", "augment", "dropout")
HISTORY_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


def run_generators(entropy: int) -> dict[str, np.random.Generator]:
    """The run's independent random generators, all derived from one seed."""
    # Spawned children do not depend on how many are spawned: adding a name at the end
    # leaves the others, and so the models of earlier versions, as they were.
    children = np.random.SeedSequence(entropy).spawn(len(RNG_NAMES))
    return {name: np.random.default_rng(child) for name, child in zip(RNG_NAMES, children)}


@dataclass
class EarlyStopping:
    """The best validation score so far (accuracy, then lower loss), its epoch and weights, and the wait since."""

    best_score: tuple[float, float] | None = None
    best_params: dict[str, np.ndarray] | None = None
    best_epoch: int | None = None
    waited: int = 0

    def update(self, epoch: int, accuracy: float, loss: float, params: dict[str, np.ndarray]) -> None:
        score = (accuracy, -loss)
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch, self.waited = score, epoch, 0
            self.best_params = {name: value.copy() for name, value in params.items()}
        else:
            self.waited += 1

    def exhausted(self, patience: int) -> bool:
        return self.waited >= patience


def capture(epoch: int, network: Network, optimizer: Adam, rngs: dict, history: dict,
            stopping: EarlyStopping) -> TrainingState:
    """A copy of everything that training changes, after ``epoch`` completed epochs."""
    return TrainingState(
        epoch=epoch, params=network.params, adam_m=optimizer.m, adam_v=optimizer.v, adam_t=optimizer.t,
        rng_states={name: rngs[name].bit_generator.state for name in EPOCH_RNGS}, history=history,
        best_score=stopping.best_score, best_params=stopping.best_params, best_epoch=stopping.best_epoch,
        waited=stopping.waited,
    ).copy()


def restore(state: TrainingState, network: Network, optimizer: Adam, rngs: dict) -> tuple[dict, EarlyStopping]:
    """Put ``state`` back into the network, optimizer and generators; returns (history, early stopping) to go on."""
    for name in network.params:
        network.params[name][...] = state.params[name]
        optimizer.m[name][...] = state.adam_m[name]
        optimizer.v[name][...] = state.adam_v[name]
    optimizer.t = state.adam_t
    try:
        for name in EPOCH_RNGS:
            rngs[name].bit_generator.state = state.rng_states[name]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the checkpoint's random generator states are unusable ({exc})") from exc
    state = state.copy()
    return state.history, EarlyStopping(state.best_score, state.best_params, state.best_epoch, state.waited)
