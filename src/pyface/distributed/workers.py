"""What each Dask worker keeps: the models it was sent, loaded once, and its share of the cores.

A model travels to the workers as the bytes of its model file, scattered once to every
worker (``client.scatter(..., broadcast=True)``), and each worker process turns them into
a recognizer the first time a task needs it. The bytes, not a path: the workers need not
see the driver's files, a model that exists only in memory travels the same way, and the
scheduler hands the bytes to a replacement worker from a surviving one. The cache is keyed
by the bytes' SHA-256, so a model changed on disk is a new model, never a stale one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass

import cv2

from ..kernel.malloc import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, set_malloc_option
from ..kernel.runtime import set_num_threads
from ..recognition.recognizer import FaceRecognizer, load_model

# Models a worker keeps loaded at once; a long-lived worker serving many jobs stays bounded.
_KEPT_MODELS = 4

_models: OrderedDict[str, FaceRecognizer] = OrderedDict()
_models_lock = threading.Lock()
# Dask's nanny starts each worker with MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's
# mmap threshold at 128 kB: every megabyte-sized array of a batch is then mapped afresh and
# faulted in page by page (ORL, 2,000 images: 160,000 page faults instead of 18,000, and 5-8 %
# of the worker's time). Blocks up to _MMAP_THRESHOLD come from the heap again, and up to
# _TRIM_THRESHOLD of freed memory stays for the next batch instead of going back to the OS.
_MMAP_THRESHOLD = 4 << 20
_TRIM_THRESHOLD = 32 << 20
_malloc_tuned = False
# The kernel's thread count is one setting per process: tasks running side by side in one
# worker take turns at the network, each with all the worker's cores, rather than
# oversubscribing them. Reading and decoding images still overlap.
_network_lock = threading.Lock()


@dataclass(frozen=True)
class ShippedModel:
    """A model on its way to the workers: the future of its file's bytes, their digest, its embedding size."""

    data: object  # a dask Future of the bytes
    digest: str
    embedding_size: int


def model_file_bytes(model) -> tuple[bytes, FaceRecognizer]:
    """The bytes of ``model``'s file (a FaceRecognizer or a model file path) and the recognizer.

    A path is loaded here too, so that a bad file is a clear ModelFileError on the driver
    before any task runs.
    """
    if isinstance(model, FaceRecognizer):
        with tempfile.TemporaryDirectory(prefix="pyface-") as folder:
            path = os.path.join(folder, "model.pyface")
            model.save(path)
            with open(path, "rb") as f:
                return f.read(), model
    recognizer = load_model(model)
    with open(model, "rb") as f:
        return f.read(), recognizer


def ship_model(client, model) -> ShippedModel:
    """Send ``model`` (a FaceRecognizer or a model file path) to every worker of ``client`` once."""
    data, recognizer = model_file_bytes(model)
    # A key of its own for every call (hash=False): with the content's hash as the key, a job
    # started right after another with the same model re-scattered a key the scheduler was
    # still releasing, and its partitions were cancelled for "lost dependencies". The workers'
    # cache is keyed by the digest, so the model is still loaded once per worker process.
    future = client.scatter(data, broadcast=True, hash=False)
    return ShippedModel(data=future, digest=_digest(data), embedding_size=recognizer.embedding_size)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_digest(model) -> str:
    """The key under which workers keep ``model`` (a FaceRecognizer or a model file path)."""
    return _digest(model_file_bytes(model)[0])


def loaded_models() -> list[str]:
    """The keys of the models this worker process holds, least recently used first."""
    with _models_lock:
        return list(_models)


def worker_model(data: bytes, digest: str) -> FaceRecognizer:
    """The recognizer of the model file ``data``, loaded once per worker process.

    Also keeps OpenCV's decoding and face detection to the worker's share of the cores:
    by default OpenCV spreads them over every core of the machine, which workers sharing
    it would oversubscribe, and lets the process keep freed memory for the next batch
    (see ``_MMAP_THRESHOLD``).
    """
    cv2.setNumThreads(worker_threads())
    with _models_lock:
        _keep_batch_memory()
        model = _models.get(digest)
        if model is None:
            with tempfile.TemporaryDirectory(prefix="pyface-") as folder:
                path = os.path.join(folder, "model.pyface")
                with open(path, "wb") as f:
                    f.write(data)
                model = load_model(path)
            _models[digest] = model
            while len(_models) > _KEPT_MODELS:
                _models.popitem(last=False)
        _models.move_to_end(digest)
        return model


def _keep_batch_memory() -> None:
    """Once per process: glibc serves and keeps blocks up to a few MB from its heap (see above)."""
    global _malloc_tuned
    if not _malloc_tuned:
        set_malloc_option(M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        set_malloc_option(M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
        _malloc_tuned = True


def worker_threads() -> int:
    """The cores this Dask worker was given (its ``nthreads``); 1 outside a worker."""
    from distributed import get_worker

    try:
        return int(get_worker().state.nthreads)
    except ValueError:  # not running inside a worker
        return 1


@contextlib.contextmanager
def network_turn():
    """Run the network on this worker's share of the cores, one task at a time per process."""
    with _network_lock:
        set_num_threads(worker_threads())
        yield
