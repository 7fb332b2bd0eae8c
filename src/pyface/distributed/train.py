"""Data-parallel training on a Dask cluster: every step's batch split across the workers.

The driver runs :func:`pyface.train` unchanged, with one difference: each step's
gradients are the sum of the gradients of the batch's shards, computed on the workers
(:func:`pyface.training.step.shard_gradients`). The training images are scattered to
every worker once; a step sends the weights and each shard's positions and seeds, and
brings back each shard's gradients. Every worker's shard then contributes to the one
update the driver applies (synchronous data parallelism). A task lost with its worker
runs again on another: being a pure function of the weights, the shard and its seeds,
it gives the same gradients, and training continues from the same step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..training.loop import train as train_here
from ..training.step import ShardResult, StepDraw, add_results, shard_gradients
from .jobs import default_client
from .workers import network_turn


@dataclass(frozen=True)
class _TrainingImages:
    images: np.ndarray
    labels: np.ndarray
    weights: np.ndarray | None


def _shard_task(data: _TrainingImages, arch, params: dict, draw: StepDraw, augment, label_smoothing: float,
                total_weight: float) -> tuple[ShardResult, float]:
    """The worker's task: a shard's gradients, and the seconds spent computing them."""
    started = time.perf_counter()
    # Unpickled arrays carry an equal but distinct float32 dtype object, which the native
    # kernel refuses (it checks identity); a copy as float32 has the canonical one.
    params = {name: value.astype(np.float32) for name, value in params.items()}
    with network_turn():
        result = shard_gradients(arch, params, data.images, data.labels, data.weights, draw, augment,
                                 label_smoothing, total_weight)
    return result, time.perf_counter() - started


class ClusterGradients:
    """Each step's gradients from ``shards`` tasks on the cluster, summed in shard order.

    ``step_seconds`` and ``compute_seconds`` add up, over the steps, the time a step took
    as the driver saw it and the longest shard's computing time on its worker: the rest
    is communication and scheduling.
    """

    def __init__(self, client, shards: int, network, images, labels, weights, settings):
        if getattr(network.kernel, "__name__", None) != "pyface.kernel.lstm":
            raise ValueError("distributed training runs the native kernel; kernel= is for pyface.train's tests")
        self.client = client
        self.shards = shards
        self.arch = network.arch
        self.settings = settings
        self.data = client.scatter(_TrainingImages(images, labels, weights), broadcast=True, hash=False)
        self.step_seconds = 0.0
        self.compute_seconds = 0.0

    def __call__(self, params: dict, draw: StepDraw, total_weight: float) -> ShardResult:
        started = time.perf_counter()
        futures = [self.client.submit(_shard_task, self.data, self.arch, params, shard, self.settings.augment,
                                      self.settings.label_smoothing, total_weight, pure=False)
                   for shard in draw.shards(self.shards)]
        answers = self.client.gather(futures)
        self.step_seconds += time.perf_counter() - started
        self.compute_seconds += max(seconds for _, seconds in answers)
        return add_results([result for result, _ in answers])

    @property
    def communication_share(self) -> float:
        """The share of the steps' time not spent computing gradients on the slowest worker."""
        return 0.0 if self.step_seconds == 0 else max(0.0, 1.0 - self.compute_seconds / self.step_seconds)


def train(data, labels=None, *, client=None, shards: int | None = None, names=None, preprocessor=None,
          validation_data=None, seed: int | None = 0, quiet: bool = False, checkpoint=None,
          checkpoint_every: int | None = 1, resume=None, **options):
    """:func:`pyface.train` with every step's batch split across the workers of a Dask cluster.

    Takes the same data, options, checkpoints and resumption as :func:`pyface.train`.
    ``client`` is a ``distributed.Client`` (default: the current one); ``shards`` the
    parts each batch is cut into (default: the cluster's worker threads), one task each.
    Every image's augmentation and dropout come from seeds drawn on this machine, so the
    same seed gives the same model for any number of workers and shards, up to float
    summation order. The returned model's ``history["communication_share"]`` is the
    share of the steps' time spent outside the workers' gradient computation.
    """
    client = default_client(client)
    if shards is None:
        shards = max(sum(client.nthreads().values()), 1)
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a positive integer, got {shards!r}")
    made = []

    def step_gradients(network, images, labels_, weights, settings):
        made.append(ClusterGradients(client, shards, network, images, labels_, weights, settings))
        return made[-1]

    model = train_here(data, labels, names=names, preprocessor=preprocessor, validation_data=validation_data,
                       seed=seed, quiet=quiet, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                       resume=resume, step_gradients=step_gradients, **options)
    model.history["communication_share"] = made[0].communication_share
    return model
