"""A gallery's templates in memory, and the exact search over them.

The rows of one person are contiguous; a removed person's rows stay in place, masked,
until they are a quarter of all rows and the matrix is compacted, so a removal costs
no copy of a million templates. The exact search is the open-set rule of
``FaceRecognizer.identify``: float32 products of blocks of faces with every template,
each person's score from their templates' cosines (``pyface.recognition.identity``), less
the mean of the face's and the person's offsets where the model normalizes scores
(``pyface.recognition.cohort``), the most similar people first.
"""

from __future__ import annotations

import numpy as np

from ..recognition.cohort import identity_offsets, normalized
from ..recognition.identity import identity_scores, run_starts, template_sum_norms

# Faces per block: a block's similarities to every template stay near this many floats.
_BLOCK_FLOATS = 1 << 24


class TemplateMatrix:
    """Templates (rows, d) float32 unit vectors, each row owned by a person id and with its offset
    (``FaceRecognizer.score_offsets``); people named by id."""

    def __init__(self, dimension: int):
        self.dimension = dimension
        self._vectors = np.zeros((0, dimension), dtype=np.float32)
        self._owners = np.zeros(0, dtype=np.int64)
        self._offsets = np.zeros(0, dtype=np.float64)
        self._rows = 0  # rows in use; the arrays grow by doubling
        self.names: dict[int, str] = {}  # person id -> name, people present only
        self._spans: dict[int, tuple[int, int]] = {}  # person id -> (first row, end row)
        self._dead_rows = 0
        # (starts, owners, sum norms, offsets) of the people's runs of rows, rebuilt when stale
        self._segments = None

    def __len__(self) -> int:
        return len(self.names)

    @property
    def n_templates(self) -> int:
        return self._rows - self._dead_rows

    def vectors(self) -> np.ndarray:
        """Rows in use, removed people's included (see :meth:`owners`)."""
        return self._vectors[: self._rows]

    def owners(self) -> np.ndarray:
        """Person id of each row of :meth:`vectors`; -1 for removed people."""
        return self._owners[: self._rows]

    def counts(self) -> dict[str, int]:
        """Each person's name and number of templates, in order of their rows."""
        ordered = sorted(self._spans.items(), key=lambda item: item[1][0])
        return {self.names[person]: end - start for person, (start, end) in ordered}

    def add(self, person: int, name: str, vectors: np.ndarray, offsets: np.ndarray) -> tuple[int, int]:
        """Append ``vectors`` (k, d) as ``person``'s templates, with their ``offsets`` (k,); returns
        their rows (start, end)."""
        k = len(vectors)
        if self._rows + k > len(self._vectors):
            capacity = max(self._rows + k, 2 * len(self._vectors), 1024)
            grown = np.empty((capacity, self.dimension), dtype=np.float32)
            grown[: self._rows] = self._vectors[: self._rows]
            owners = np.full(capacity, -1, dtype=np.int64)
            owners[: self._rows] = self._owners[: self._rows]
            grown_offsets = np.zeros(capacity, dtype=np.float64)
            grown_offsets[: self._rows] = self._offsets[: self._rows]
            self._vectors, self._owners, self._offsets = grown, owners, grown_offsets
        start = self._rows
        self._vectors[start : start + k] = vectors
        self._owners[start : start + k] = person
        self._offsets[start : start + k] = offsets
        self._rows += k
        self.names[person] = name
        self._spans[person] = (start, start + k)
        self._segments = None
        return start, start + k

    def remove(self, person: int) -> None:
        start, end = self._spans.pop(person)
        del self.names[person]
        self._owners[start:end] = -1
        self._dead_rows += end - start
        self._segments = None

    def needs_compacting(self) -> bool:
        return self._dead_rows > max(1024, self._rows // 4)

    def compact(self) -> None:
        """Drop the rows of removed people (row numbers change: an index over them must be rebuilt)."""
        keep = self._owners[: self._rows] >= 0
        vectors, owners = self._vectors[: self._rows][keep], self._owners[: self._rows][keep]
        self._offsets = self._offsets[: self._rows][keep]
        self._vectors, self._owners, self._rows, self._dead_rows = vectors, owners, len(owners), 0
        self._spans = {}
        starts = run_starts(owners)
        for start, end in zip(starts, np.r_[starts[1:], len(owners)]):
            self._spans[int(owners[start])] = (int(start), int(end))
        self._segments = None

    def _runs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Start row, owner, length of the templates' sum and mean offset of every run of rows
        with one owner (removed rows form runs of owner -1)."""
        if self._segments is None:
            owners = self._owners[: self._rows]
            starts = run_starts(owners)
            self._segments = (starts, owners[starts], template_sum_norms(self.vectors(), starts),
                              identity_offsets(self._offsets[: self._rows], starts))
        return self._segments

    def search(self, queries: np.ndarray, k: int, *, best_share: float,
               query_offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar people to each query (N, d): person ids (N, k) and scores (N, k).

        A person's score is the open-set rule's over their templates, the best template's
        share of it ``best_share`` (the model's), less the mean of the query's offset and the
        person's when ``query_offsets`` (N,) are given. Fewer than ``k`` people pad with id -1
        and score -inf.
        """
        n = len(queries)
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        if not self.names or n == 0:
            return ids, scores
        starts, run_owners, norms, run_offsets = self._runs()
        live = run_owners >= 0
        run_ids = run_owners[live]
        take = min(k, len(run_ids))
        block = max(1, _BLOCK_FLOATS // max(1, self._rows))
        vectors = self.vectors()
        for first in range(0, n, block):
            similar = queries[first : first + block] @ vectors.T
            per_run = identity_scores(similar, starts, norms, best_share=best_share)
            if query_offsets is not None:
                per_run = normalized(per_run, query_offsets[first : first + block], run_offsets)
            per_run = per_run[:, live]
            if take == 1:
                best = per_run.argmax(axis=1)[:, None]
            else:
                best = np.argpartition(-per_run, take - 1, axis=1)[:, :take]
                order = np.argsort(-np.take_along_axis(per_run, best, axis=1), axis=1, kind="stable")
                best = np.take_along_axis(best, order, axis=1)
            ids[first : first + block, :take] = run_ids[best]
            scores[first : first + block, :take] = np.take_along_axis(per_run, best, axis=1)
        return ids, scores

    def score_people(self, queries: np.ndarray, ids: np.ndarray, *, best_share: float,
                     query_offsets: np.ndarray | None = None) -> np.ndarray:
        """Each query's (N, d) score for each of its people ``ids`` (N, k), as :meth:`search`
        gives it; -inf where the id is -1. For the few people an approximate index proposes."""
        scores = np.full(ids.shape, -np.inf, dtype=np.float32)
        for person in np.unique(ids[ids >= 0]):
            start, end = self._spans[int(person)]
            rows, columns = np.nonzero(ids == person)
            templates = self._vectors[start:end]
            similar = queries[rows] @ templates.T
            one_run = np.zeros(1, dtype=np.int64)
            scored = identity_scores(similar, one_run, template_sum_norms(templates, one_run),
                                     best_share=best_share)
            if query_offsets is not None:
                scored = normalized(scored, query_offsets[rows], identity_offsets(self._offsets[start:end], one_run))
            scores[rows, columns] = scored[:, 0]
        return scores
