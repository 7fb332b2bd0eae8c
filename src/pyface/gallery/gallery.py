"""The Gallery: enrolled people in a database, identified by the model that embedded them.

The store (SQLite or PostgreSQL) is the source of truth. Each Gallery keeps a copy of
the templates in memory for searching, and before every search brings it up to date
with what any process changed since (``SqlStore.changes_since``), reading each change
whole; with ``search="approximate"`` an HNSW index over the same templates follows
along. Methods are safe to call from several threads.
"""

from __future__ import annotations

import threading

import numpy as np

from ..recognition.recognizer import UNKNOWN, identity_name
from . import index_file
from .search import TemplateMatrix
from .store import MAX_TEMPLATES, Changes

SEARCHES = ("exact", "approximate")
# People the approximate index proposes for each face, at least: it finds them by their nearest
# templates, and the open-set rule, which also weighs their mean template, reorders them.
PROPOSED = 16


def _metadata(metadata):
    import json

    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict of JSON values, got {type(metadata).__name__}")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be a dict of JSON values ({exc})") from None
    return metadata


class Gallery:
    """People enrolled with ``model`` into ``store``; open one with :func:`pyface.open_gallery`."""

    def __init__(self, store, model, fingerprint: str, *, search: str = "exact", index_path=None):
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
        self._store = store
        self.model = model
        self.fingerprint = fingerprint
        self.search_kind = search
        self.index_path = index_path
        self.dimension = model.embedding_size
        self._lock = threading.RLock()
        self._matrix = TemplateMatrix(self.dimension)
        self._index = None
        self._generation = None  # of the store, as the copy in memory reflects it
        self._index_saved = None  # generation of the index file on disk

    @property
    def where(self) -> str:
        """The gallery's file or database (without a password)."""
        return self._store.where

    def __repr__(self):
        return f"Gallery({self.where!r}, {len(self)} people, {self.search_kind} search)"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Save the approximate index (if any changed) and close the connection."""
        with self._lock:
            if self._index is not None and self.index_path is not None and self._index_saved != self._generation:
                self._save_index()
            self._store.close()

    # ------------------------------------------------------------------ enrolment

    def enroll(self, name: str, images_or_paths, *, metadata: dict | None = None, batch_size: int = 256) -> int:
        """Add ``name`` from face images (paths or arrays, as ``FaceRecognizer.enroll`` takes); returns templates added.

        All or nothing: the person is stored with every template, or not at all. A
        name already in the gallery is refused (ValueError): remove or rename first.
        ``metadata``, a dict of JSON values (a badge number, say), is stored with them.
        """
        name = identity_name(name)
        vectors = self.model.embed(images_or_paths, batch_size=batch_size)
        if len(vectors) == 0:
            raise ValueError(f"no images to enroll {name!r} from")
        return self.enroll_embeddings(name, vectors, metadata=metadata)

    def enroll_embeddings(self, name: str, embeddings: np.ndarray, *, metadata: dict | None = None) -> int:
        """Add ``name`` from embeddings (k, embedding_size) made by this gallery's model; returns k."""
        return self.enroll_many([(name, embeddings, metadata)])

    def enroll_many(self, people) -> int:
        """Add every (name, embeddings (k, embedding_size), metadata or None) in one transaction; returns templates added.

        All or nothing: one name already in the gallery (or given twice) adds nobody.
        """
        rows, seen = [], set()
        for name, embeddings, metadata in people:
            name = identity_name(name)
            if name in seen:
                raise ValueError(f"{name!r} is given twice")
            seen.add(name)
            rows.append((name, self._checked(name, embeddings), _metadata(metadata)))
        if not rows:
            return 0
        with self._lock:
            return self._store.add(rows)

    def _checked(self, name: str, embeddings) -> np.ndarray:
        vectors = np.asarray(embeddings, dtype=np.float32)
        d = self.dimension
        if vectors.ndim != 2 or vectors.shape[1] != d or not 1 <= len(vectors) <= MAX_TEMPLATES:
            raise ValueError(f"{name!r} needs 1 to {MAX_TEMPLATES} embeddings of {d} values, got shape {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.isfinite(vectors).all() or not (norms > 0).all():
            raise ValueError(f"{name!r} has embeddings that are not finite, non-zero vectors")
        return (vectors / norms).astype(np.float32)

    def import_recognizer(self, model=None, *, trained: bool = True) -> int:
        """Copy the people a FaceRecognizer knows into the gallery, in one transaction; returns templates added.

        ``model`` (default: the gallery's own) must embed as the gallery's model does.
        Its enrolled people come with their templates, and with ``trained`` also the
        trained people who have templates (those of their training images), so the
        gallery answers as ``model.identify`` does. Anyone already in the gallery
        makes the whole import fail.
        """
        from .fingerprint import model_fingerprint

        model = self.model if model is None else model
        if model is not self.model and model_fingerprint(model) != self.fingerprint:
            raise ValueError("that model embeds faces differently from the gallery's model; its templates do not fit")
        people = []
        if trained and model.templates is not None:
            for k in np.unique(model.template_labels):
                people.append((model.names[k], model.templates[model.template_labels == k], None))
        people.extend((name, vectors, None) for name, vectors in model.enrolled_templates().items())
        return self.enroll_many(people)

    def remove(self, name: str) -> None:
        """Forget ``name`` and their templates (KeyError when nobody is called so)."""
        with self._lock:
            self._store.remove(name)

    def rename(self, old: str, new: str) -> None:
        """Call ``old`` ``new`` from now on (KeyError: no ``old``; ValueError: ``new`` taken)."""
        new = identity_name(new)
        with self._lock:
            self._store.rename(old, new)

    # ------------------------------------------------------------------ who is there

    def names(self) -> list[str]:
        """Everyone in the gallery, in order of enrolment."""
        with self._lock:
            return self._store.names()

    def __len__(self) -> int:
        with self._lock:
            return self._store.count()

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and self.metadata(name, missing_ok=True) is not None

    def metadata(self, name: str, *, missing_ok: bool = False) -> dict | None:
        """The metadata stored with ``name`` ({} when none); KeyError when nobody is called so."""
        with self._lock:
            found = self._store.person(name)
        if found is None:
            if missing_ok:
                return None
            raise KeyError(f"nobody called {name!r} is in the gallery")
        return found[1] or {}

    @property
    def enrolled(self) -> dict[str, int]:
        """Everyone and their number of templates, from the copy searches use, brought up to date."""
        with self._lock:
            self._sync()
            return self._matrix.counts()

    # ------------------------------------------------------------------ searching

    def identify(self, images, *, threshold: float | str = "auto", batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Open-set identification as ``FaceRecognizer.identify``: (names (N,), scores (N,)).

        Each face gets the person it is most similar to (the open-set rule of
        ``FaceRecognizer.identify``), or ``"unknown"`` below ``threshold`` (a score as
        that rule gives it, or ``"auto"``: the model's own).
        """
        limit = self.model.resolve_threshold(threshold)
        names, scores = self.search(images, k=1, batch_size=batch_size)
        answer, best = names[:, 0].astype(object), scores[:, 0]
        answer[best < limit] = UNKNOWN
        return answer.astype(str), best

    def search(self, images, *, k: int = 5, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar people to each face: names (N, k') and scores (N, k'), best first.

        ``k'`` is ``k``, or the number of people when fewer. A person's similarity is
        the open-set rule's over their templates (``pyface.recognition.identity``).
        Raises ValueError on an empty gallery.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")  # before the embedding work
        return self.search_embeddings(self.model.embed(images, batch_size=batch_size), k=k)

    def search_embeddings(self, embeddings: np.ndarray, *, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` for faces already embedded by the gallery's model (N, embedding_size) unit rows."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        queries = np.asarray(embeddings, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise ValueError(f"embeddings must be rows of {self.dimension} values, got shape {queries.shape}")
        with self._lock:
            self._sync()
            if not len(self._matrix):
                raise ValueError(f"{self.where}: the gallery is empty; enroll someone first")
            take = min(int(k), len(self._matrix))
            offsets = None if self.model.cohort_nearest is None else self.model.score_offsets(queries)
            if self._index is None:
                ids, scores = self._matrix.search(queries, take, best_share=self.model.best_share,
                                                  query_offsets=offsets)
            else:
                ids, scores = self._proposed(queries, take, offsets)
            names = self._matrix.names
            return (np.array([[names[i] for i in row] for row in ids.tolist()], dtype=str).reshape(len(ids), take),
                    scores.astype(np.float64))

    def _proposed(self, queries: np.ndarray, take: int, offsets: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The approximate search: the index proposes the people of the nearest templates, at
        least ``PROPOSED`` of them, and each is scored by the open-set rule over their templates."""
        ids, _ = self._index.search(queries, min(len(self._matrix), max(take, PROPOSED)))
        scores = self._matrix.score_people(queries, ids, best_share=self.model.best_share, query_offsets=offsets)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :take]
        return np.take_along_axis(ids, best, axis=1), np.take_along_axis(scores, best, axis=1)

    # ------------------------------------------------------------------ keeping up with the store

    def _sync(self) -> None:
        """Bring the copy in memory (and the index) up to the store's latest generation."""
        changes = self._store.changes_since(self._generation, self.dimension)
        if changes.everyone:
            self._matrix = TemplateMatrix(self.dimension)
            self._index = None
            self._apply(changes)
            if self.search_kind == "approximate":
                self._index = index_file.load(self.index_path, self.fingerprint, self.dimension, changes.generation)
                if self._index is None:
                    self._index = index_file.build(self._matrix)
                else:
                    self._index_saved = changes.generation
        else:
            self._apply(changes)
        self._generation = changes.generation
        if self._matrix.needs_compacting():
            self._matrix.compact()
        if self._index is not None and self._index.stale():
            self._index = index_file.build(self._matrix)

    def _apply(self, changes: Changes) -> None:
        for person in changes.removed:
            if person in self._matrix.names:
                self._matrix.remove(person)
                if self._index is not None:
                    self._index.remove(person)
        arriving, seen = [], set(self._matrix.names)
        for person, _, vectors in changes.people:
            if person not in seen:
                seen.add(person)
                arriving.append(vectors)
        # The new templates' offsets in one product with the model's cohort, not one per person.
        offsets = self.model.score_offsets(np.concatenate(arriving)) if arriving else None
        done = 0
        for person, name, vectors in changes.people:
            if person in self._matrix.names:
                self._matrix.names[person] = name  # renamed
            else:
                self._matrix.add(person, name, vectors, offsets[done : done + len(vectors)])
                done += len(vectors)
                if self._index is not None:
                    self._index.add(np.full(len(vectors), person), vectors)

    def _save_index(self) -> None:
        if self._index.has_removed:
            self._index = index_file.build(self._matrix)
        index_file.save(self.index_path, self._index, self.fingerprint, self._generation)
        self._index_saved = self._generation

    def save_index(self) -> None:
        """Write the approximate index to ``index_path`` now (``close`` also does when it changed)."""
        if self.search_kind != "approximate" or self.index_path is None:
            raise ValueError("this gallery has no approximate index file (open it with search='approximate')")
        with self._lock:
            self._sync()
            self._save_index()
