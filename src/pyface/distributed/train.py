"""Data-parallel training on a Dask cluster: every step's batch split across the workers.

The driver runs pyface's training loop unchanged (:func:`pyface.training.loop.fit`), with
one difference: each step's gradients are the sum of the gradients of the batch's parts,
computed on the workers (:func:`pyface.training.step.batch_gradients`). The driver draws
all of a step's randomness (batch, augmentation, dropout masks) and sends each worker its
part with the weights; the parts' gradients come back, are summed in part order, and the
driver applies the one update (synchronous data parallelism). A task lost with its worker
runs again on another: being a pure function of the weights and its part, it gives the
same gradients, and training continues from the same step.
"""

from __future__ import annotations

import time

import numpy as np

from ..data.preprocess import Preprocessor
from ..nn.network import Network
from ..training.augment import Augmentation
from ..training.data import as_dataset
from ..training.loop import fit
from ..training.settings import options_from
from ..training.step import Batch, Gradients, batch_gradients, sum_gradients
from .jobs import default_client
from .workers import network_turn


def _part_task(arch, params: dict, part: Batch, label_smoothing: float) -> tuple[Gradients, float]:
    """The worker's task: a part's share of the step, and the seconds spent computing it."""
    started = time.perf_counter()
    # Arrays unpickled from a message may sit at any address; the kernel reads aligned rows.
    params = {name: np.require(value, np.float32, ["C", "A"]) for name, value in params.items()}
    with network_turn():
        result = batch_gradients(Network(arch, params), part, label_smoothing)
    return result, time.perf_counter() - started


class ClusterGradients:
    """A step's gradients from ``parts`` tasks on the cluster, summed in part order.

    ``step_seconds`` and ``compute_seconds`` add up, over the steps, the time a step took
    as the driver saw it and the longest part's computing time on its worker: the rest is
    communication and scheduling.
    """

    def __init__(self, client, parts: int):
        self.client = client
        self.parts = parts
        self.step_seconds = 0.0
        self.compute_seconds = 0.0

    def __call__(self, network: Network, batch: Batch, label_smoothing: float) -> Gradients:
        if getattr(network.kernel, "__name__", None) != "pyface.kernel.lstm":
            raise ValueError("distributed training runs the native kernel; kernel= is for pyface.train's tests")
        started = time.perf_counter()
        cuts = np.linspace(0, len(batch), min(self.parts, len(batch)) + 1).round().astype(int)
        futures = [self.client.submit(_part_task, network.arch, network.params, batch.part(start, stop),
                                      label_smoothing, pure=False)
                   for start, stop in zip(cuts[:-1], cuts[1:])]
        answers = self.client.gather(futures)
        self.step_seconds += time.perf_counter() - started
        self.compute_seconds += max(seconds for _, seconds in answers)
        return sum_gradients([result for result, _ in answers])

    @property
    def communication_share(self) -> float:
        """The share of the steps' time not spent computing gradients on the slowest worker."""
        return 0.0 if self.step_seconds == 0 else max(0.0, 1.0 - self.compute_seconds / self.step_seconds)


def train(data, labels=None, *, client=None, shards: int | None = None, names=None,
          preprocessor: Preprocessor | None = None, validation_data=None,
          hidden_size: int | str = "auto", num_layers: int = 2, bidirectional: bool = True,
          views: tuple[str, ...] = ("rows", "columns"), pooling: str = "mean", dropout: float = 0.4,
          head: str = "cosine", cosine_scale: float | str = "auto", conv_channels: int | tuple[int, ...] | str = "auto",
          conv_stride: int = 2,
          epochs: int | str = "auto", batch_size: int = 32, learning_rate: float = 3e-3, lr_schedule: str = "cosine",
          warmup_epochs: int = 2, weight_decay: float = 0.2, clip_norm: float | None = 5.0,
          label_smoothing: float = 0.0, class_weight: str | None = "balanced",
          augment: Augmentation | dict | bool | str | None = "auto",
          validation_fraction: float = 0.0, patience: int = 20, blended_people: int | str = "auto",
          open_set: bool = False, target_far: float = 0.01, calibration_people: float = 0.2,
          precision: str = "float32", descriptor: str | None = "auto", seed: int | None = 0,
          quiet: bool | None = None, checkpoint=None, checkpoint_every: int | None = 1, resume=None):
    """:func:`pyface.train` with every step's batch split across the workers of a Dask cluster.

    The same data, options, checkpoints and resumption as :func:`pyface.train`, and the
    same model for the same seed, up to float summation order, whatever the number of
    workers. ``client`` is a ``distributed.Client`` (default: the current one);
    ``shards`` the parts each batch is cut into, one task each (default: the cluster's
    worker threads). The returned model's ``history["communication_share"]`` is the share
    of the steps' time spent outside the workers' gradient computation.
    """
    client = default_client(client)
    if shards is None:
        shards = max(sum(client.nthreads().values()), 1)
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a positive integer, got {shards!r}")
    options = options_from(locals())
    gradients = ClusterGradients(client, shards)
    model = fit(as_dataset(data, labels, names, preprocessor), options, gradients=gradients,
                validation_data=validation_data, seed=seed, quiet=quiet, checkpoint=checkpoint,
                checkpoint_every=checkpoint_every, resume=resume)
    model.history["communication_share"] = gradients.communication_share
    return model
