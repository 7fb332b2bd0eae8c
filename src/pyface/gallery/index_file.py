"""The approximate index on disk: one ``.npz`` beside the gallery, a cache of the store.

It records the store's generation and the model's fingerprint it was built at; one
that does not match the store as it is now (stale, another model's, damaged) is not
used, and the gallery builds a new one from its templates. Like the gallery, it holds
embeddings: it is written readable by its owner only.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..io.npz import ModelFileError, read_npz, write_npz_atomically
from .approximate import ApproximateIndex
from .search import TemplateMatrix


def build(matrix: TemplateMatrix) -> ApproximateIndex:
    """A new index over the templates of everyone in ``matrix``."""
    index = ApproximateIndex(matrix.dimension)
    owners = matrix.owners()
    live = owners >= 0
    if live.any():
        index.add(owners[live], matrix.vectors()[live])
    return index


def load(path, fingerprint: str, dimension: int, generation: int) -> ApproximateIndex | None:
    """The index saved at ``path`` if it was built at ``generation`` with the model ``fingerprint``, else None."""
    if path is None or not os.path.exists(path):
        return None
    try:
        arrays = read_npz(path, kind="pyface gallery index")
        if str(arrays["fingerprint"]) != fingerprint or int(arrays["generation"]) != generation:
            return None
        return ApproximateIndex.from_arrays(arrays, dimension)
    except (ModelFileError, KeyError, ValueError, RuntimeError) as exc:
        # A cache: a damaged one is rebuilt, but said so, since rebuilding a large one takes minutes.
        warnings.warn(f"{os.fspath(path)}: unusable gallery index, rebuilding it ({exc})", stacklevel=2)
        return None


def save(path, index: ApproximateIndex, fingerprint: str, generation: int) -> None:
    arrays = index.to_arrays()
    arrays.update(fingerprint=np.array(fingerprint), generation=np.array(generation, dtype=np.int64))
    write_npz_atomically(path, arrays, mode=0o600)
