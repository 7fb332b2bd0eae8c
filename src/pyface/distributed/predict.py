"""Batch recognition on a Dask cluster: name or embed the faces of many image files."""

from __future__ import annotations

import numpy as np

from ..data.dataset import FaceDataset
from . import parquet
from .files import listed_files, partitions
from .jobs import default_client, run_in_order
from .workers import network_turn, ship_model, worker_model

COLUMNS = ("path", "name", "score", "error")


def _message(exc: BaseException) -> str:
    """One line saying why a file could not be used."""
    text = str(exc).strip().splitlines()
    # pyface's own errors name the file and the problem; anything else also says what it was.
    if isinstance(exc, (OSError, ValueError)) and text:
        return text[0]
    return f"{type(exc).__name__}: {text[0] if text else 'no message'}"


def _read(model, paths: list[str]) -> tuple[FaceDataset, list[int], list[str | None]]:
    """The readable files of ``paths`` preprocessed for ``model``, their positions, and each file's error."""
    images, good, errors = [], [], [None] * len(paths)
    for i, path in enumerate(paths):
        try:
            images.append(model.preprocess(path)[0])
            good.append(i)
        # Whatever one file does to the decoder is that file's error, never the job's.
        except Exception as exc:
            errors[i] = _message(exc)
    size = model.network.arch.image_size
    stack = np.stack(images) if images else np.zeros((0, size, size), dtype=np.float32)
    dataset = FaceDataset(stack, np.zeros(len(good), dtype=np.int64), model.names[:1],
                          [paths[i] for i in good], model.preprocessor)
    return dataset, good, errors


def predict_partition(data: bytes, digest: str, threshold, batch_size: int, paths: list[str]):
    """The worker's task: the (path, name, score, error) table of ``paths``."""
    import pandas as pd

    model = worker_model(data, digest)
    dataset, good, errors = _read(model, paths)
    names = np.full(len(paths), None, dtype=object)
    scores = np.full(len(paths), np.nan)
    if good:
        with network_turn():
            answer, score = model.predict(dataset, threshold=threshold, batch_size=batch_size, return_scores=True)
        names[good] = answer
        scores[good] = score
    return pd.DataFrame({"path": paths, "name": names, "score": scores, "error": errors}, columns=list(COLUMNS))


def embed_partition(data: bytes, digest: str, batch_size: int, paths: list[str]):
    """The worker's task: embeddings (n, d) float32, NaN rows for unreadable files, and each file's error."""
    model = worker_model(data, digest)
    dataset, good, errors = _read(model, paths)
    out = np.full((len(paths), model.embedding_size), np.nan, dtype=np.float32)
    if good:
        with network_turn():
            out[good] = model.embed(dataset, batch_size=batch_size)
    return out, errors


def predict_files(model, files, *, client=None, threshold: float | str | None = None,
                  partition_size: int = 256, batch_size: int = 64, out=None, quiet: bool = False):
    """Name the person in every image file, on the workers of a Dask cluster.

    ``model`` is a FaceRecognizer or a model file path; it is sent to every worker once.
    ``files`` is a folder (searched recursively once, on this machine), one file, or a
    sequence of paths, which the workers must be able to read. The files are processed
    ``partition_size`` at a time, ``batch_size`` images per network pass; ``threshold``
    is that of :meth:`FaceRecognizer.predict`. ``client`` is a ``distributed.Client``
    (default: the current one).

    Returns a pandas DataFrame with one row per file, in input order: ``path``, ``name``
    (missing for a file that could not be read), ``score`` (the probability, or the open-set
    rule's score with a threshold or enrolled people; NaN when unread) and ``error``
    (missing, or why the file could not be read). With ``out`` (a ``.parquet`` path), the rows are
    written there partition by partition instead, the file appearing complete or not at
    all, and only the rows with an error are returned.

    A worker lost mid-job costs its partitions a second run elsewhere; the results still
    hold every file exactly once.
    """
    client = default_client(client)
    writer = None if out is None else parquet.TableWriter(out)  # a bad path fails before the job, not after
    paths = listed_files(files)
    parts = partitions(paths, partition_size)
    shipped = ship_model(client, model)
    args = (shipped.data, shipped.digest, threshold, batch_size)
    if writer is not None:
        with writer:
            run_in_order(client, predict_partition, parts, args, lambda k, table: writer.write(table), quiet=quiet)
        return writer.failed()
    import pandas as pd

    tables = []
    run_in_order(client, predict_partition, parts, args, lambda k, table: tables.append(table), quiet=quiet)
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "score" else object) for c in COLUMNS})
    return pd.concat(tables, ignore_index=True)


def embed_files(model, files, *, client=None, partition_size: int = 256, batch_size: int = 64,
                return_errors: bool = False, quiet: bool = False):
    """Unit-length embeddings (N, embedding_size) float32 of image files, in input order, on a Dask cluster.

    ``model``, ``files``, ``client``, ``partition_size`` and ``batch_size`` as for
    :func:`predict_files`. A file that cannot be read gets a row of NaN; with
    ``return_errors`` the second return value says why, per file (None for files read).
    """
    client = default_client(client)
    paths = listed_files(files)
    parts = partitions(paths, partition_size)
    shipped = ship_model(client, model)
    blocks, errors = [], []

    def deliver(k, result):
        blocks.append(result[0])
        errors.extend(result[1])

    run_in_order(client, embed_partition, parts, (shipped.data, shipped.digest, batch_size), deliver, quiet=quiet)
    embedded = np.concatenate(blocks) if blocks else np.zeros((0, shipped.embedding_size), dtype=np.float32)
    return (embedded, errors) if return_errors else embedded

