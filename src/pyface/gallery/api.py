"""``open_gallery``: a gallery by its address, checked against the model before any use."""

from __future__ import annotations

import os

from .fingerprint import model_fingerprint
from .gallery import SEARCHES, Gallery
from .store import FORMAT, FORMAT_VERSION, GalleryError

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(url) -> bool:
    return isinstance(url, str) and url.startswith(_POSTGRES_SCHEMES)


def _store(url, *, create: bool, timeout: float):
    if is_postgres_url(url):
        from .postgres_store import PostgresStore

        return PostgresStore(url, timeout=timeout)
    if not isinstance(url, (str, os.PathLike)):
        raise TypeError(f"a gallery is a file path or a postgresql:// URL, got {type(url).__name__}")
    path = os.fspath(url)
    if path.startswith("sqlite://"):
        path = path[len("sqlite://"):]
    if not path:
        raise ValueError("the gallery's path is empty")
    from .sqlite_store import SqliteStore

    return SqliteStore(path, create=create, timeout=timeout)


def _check(store, fingerprint: str, dimension: int) -> None:
    """GalleryError unless the store is a gallery of this pyface's format filled by a model with ``fingerprint``."""
    described = store.describe()
    if described.get("format") != FORMAT:
        raise GalleryError(store.where, "not a pyface gallery (unknown format)")
    version = described.get("format_version", "")
    if not version.isdigit():
        raise GalleryError(store.where, f"corrupt gallery (format version {version!r})")
    if int(version) > FORMAT_VERSION:
        raise GalleryError(store.where, f"gallery format version {version} is newer than this pyface reads "
                                        f"({FORMAT_VERSION}); upgrade pyface to open it")
    if described.get("fingerprint") != fingerprint or described.get("dimension") != str(dimension):
        raise GalleryError(store.where, "the gallery holds embeddings of another model (fingerprint "
                                        f"{str(described.get('fingerprint'))[:12]}, this model's {fingerprint[:12]}); "
                                        "open it with that model, or re-enroll everyone into a new gallery "
                                        "with this one (README: Galleries)")


def open_gallery(url, model, *, create: bool = True, search: str = "exact", index_path=None,
                 timeout: float = 60.0) -> Gallery:
    """Open (or create) the gallery at ``url`` for ``model``, a FaceRecognizer.

    ``url``: a file path (or ``sqlite:///path``) for an SQLite gallery, or a
    ``postgresql://user@host/database`` URL (needs ``pyface[postgres]``). ``create``:
    make a new gallery when there is none there (else ``FileNotFoundError`` or
    :class:`GalleryError`). ``search``: ``"exact"`` (blocked float32 products) or
    ``"approximate"`` (an HNSW index, needs ``pyface[ann]``), whose index is kept at
    ``index_path`` (default for SQLite: the file's name + ``.index``; for PostgreSQL
    none: built in memory on first use). ``timeout``: seconds to wait for another
    writer or to connect.

    A gallery filled by another model, a file that is not a gallery, a corrupt one or
    one from a newer pyface raises :class:`GalleryError` (a ValueError).
    """
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
    fingerprint = model_fingerprint(model)
    dimension = model.embedding_size
    store = _store(url, create=create, timeout=timeout)
    try:
        if store.is_empty():
            if not create:
                raise GalleryError(store.where, "no gallery there yet (create one first)")
            from ..kernel.runtime import info

            store.initialise(fingerprint, dimension, info()["version"])
        _check(store, fingerprint, dimension)
    except BaseException:
        store.close()
        raise
    if search == "approximate" and index_path is None and not is_postgres_url(url):
        index_path = f"{store.where}.index"
    return Gallery(store, model, fingerprint, search=search, index_path=index_path)
