"""An approximate nearest-template index for large galleries: FAISS's HNSW graph (extra ``pyface[ann]``).

Chosen by measurement among faiss-cpu, usearch and hnswlib (bench/gallery_scale.py,
README "Galleries"): at equal graph settings FAISS and hnswlib found the same nearest
person with the same latency and usearch was slower; hnswlib ships no wheels (it
compiles on install), FAISS does. The index is a cache of the store: it holds one
entry per template in the order they were added, knows each entry's person, and
forgets a removed person by filtering them out of answers until a rebuild. It is
saved next to a SQLite gallery with the store's generation and the model's
fingerprint, and rebuilt from the store when missing or stale.
"""

from __future__ import annotations

import numpy as np

# Graph degree and search breadth: HNSW's M, efConstruction and efSearch.
CONNECTIVITY = 32
EXPANSION_ADD = 80
EXPANSION_SEARCH = 128


def _faiss():
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("approximate search needs FAISS: pip install 'pyface[ann]'") from exc
    return faiss


class ApproximateIndex:
    """HNSW over unit templates by inner product; ``owners[i]`` is the person id of entry i."""

    def __init__(self, dimension: int, *, connectivity: int = CONNECTIVITY, expansion_add: int = EXPANSION_ADD,
                 expansion_search: int = EXPANSION_SEARCH, graph=None, owners: np.ndarray | None = None):
        faiss = _faiss()
        self.dimension = dimension
        if graph is None:
            graph = faiss.IndexHNSWFlat(dimension, connectivity, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = expansion_add
        graph.hnsw.efSearch = expansion_search
        self.graph = graph
        self._owners = np.zeros(0, dtype=np.int64) if owners is None else np.asarray(owners, dtype=np.int64)
        self._removed: set[int] = set()
        self._removed_entries = 0

    def __len__(self) -> int:
        return len(self._owners) - self._removed_entries

    def add(self, owners: np.ndarray, vectors: np.ndarray) -> None:
        """Add templates ``vectors`` (k, d) of the people ``owners`` (k,)."""
        self.graph.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._owners = np.concatenate([self._owners, np.asarray(owners, dtype=np.int64)])

    def remove(self, person: int) -> None:
        self._removed.add(person)
        self._removed_entries += int((self._owners == person).sum())

    def stale(self) -> bool:
        """True when removed people are a quarter of the entries: time to rebuild."""
        return self._removed_entries > max(1024, len(self._owners) // 4)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar people to each query, as :meth:`TemplateMatrix.search` answers."""
        n = len(queries)
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        if len(self) == 0 or n == 0:
            return ids, scores
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        wanted = min(len(self._owners), max(16, 8 * k))
        pending = np.arange(n)
        while len(pending):
            similar, entries = self.graph.search(queries[pending], wanted)
            retry = []
            for row, query in enumerate(pending):
                found = self._people(similar[row], entries[row], k)
                # Fewer than k people among the entries found: look further, unless everything was seen.
                if len(found) < k and wanted < len(self._owners):
                    retry.append(query)
                    continue
                for column, (person, score) in enumerate(found):
                    ids[query, column], scores[query, column] = person, score
            pending = np.array(retry, dtype=np.int64)
            wanted = min(len(self._owners), 4 * wanted)
        return ids, scores

    def _people(self, similar: np.ndarray, entries: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The first ``k`` distinct people present among ``entries`` (best first), with their best score."""
        found: dict[int, float] = {}
        for score, entry in zip(similar, entries):
            if entry < 0:
                break
            person = int(self._owners[entry])
            if person in self._removed or person in found:
                continue
            found[person] = float(score)
            if len(found) == k:
                break
        return list(found.items())

    # ------------------------------------------------------------------ on disk

    @property
    def has_removed(self) -> bool:
        return bool(self._removed_entries)

    def to_arrays(self) -> dict[str, np.ndarray]:
        if self.has_removed:
            raise ValueError("an index with removed people is rebuilt, not saved")
        return {"graph": _faiss().serialize_index(self.graph), "owners": self._owners}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], dimension: int) -> ApproximateIndex:
        graph = _faiss().deserialize_index(np.asarray(arrays["graph"], dtype=np.uint8))
        if graph.d != dimension or graph.ntotal != len(arrays["owners"]):
            raise ValueError("the index does not match its templates")
        return cls(dimension, graph=graph, owners=arrays["owners"])
