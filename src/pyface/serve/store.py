"""Where the service keeps the people it knows: the model file itself, or a shared gallery.

Both offer the methods the service calls, named as the shared gallery names them:
``enroll(name, images) -> int``, ``remove(name)``, ``names()``, ``len()``, ``name in store``,
``identify(images, *, threshold="auto") -> (names, scores)`` and
``search(images, *, k=5) -> (names (N, k), scores (N, k))``. ``images`` is anything
:class:`~pyface.FaceRecognizer` reads; the service passes a data set of faces it has
already preprocessed. Enrolling an existing name or removing a trained person raises
``ValueError``, removing nobody ``KeyError``, a gallery out of reach
:class:`~pyface.serve.errors.StoreUnavailable`; ``close()`` ends the store's use.
"""

from __future__ import annotations

import os
import threading

from ..gallery import GalleryError, open_gallery
from ..recognition.recognizer import load_model
from ..recognition.recognizer import FaceRecognizer
from .errors import StoreUnavailable

__all__ = ["ModelPeople", "SharedGallery", "open_shared_gallery"]


class ModelPeople:
    """The people of one model file: enrolled into the model and saved, atomically, after every change.

    One lock serialises every call: two enrolments never both read the model, each
    add one person and save, the second save losing the first one's person. A
    change is answered only once the file holds it, and the file is replaced whole
    (written aside, then renamed), so a process killed at any moment leaves either
    the file before the change or the file after it.
    """

    def __init__(self, model: FaceRecognizer, path):
        self.model = model
        self.path = os.fspath(path)
        self._lock = threading.RLock()

    def enroll(self, name: str, images) -> int:
        """Add ``name`` from ``images`` and save the model; the number of images enrolled."""
        with self._lock:
            self.model.enroll(name, images)
            try:
                self.model.save(self.path)
            except BaseException:
                self.model.remove(name)  # the file does not have them, so neither does the service
                raise
            return self.model.enrolled[name]

    def remove(self, name: str) -> None:
        """Forget the enrolled person ``name`` and save the model."""
        with self._lock:
            self.model.remove(name)
            try:
                self.model.save(self.path)
            except BaseException:
                # The removed templates are gone from memory; the file still has them.
                self.model = load_model(self.path)
                raise

    def names(self) -> list[str]:
        """Everyone the open set can answer: the trained people with templates, then the enrolled ones."""
        with self._lock:
            try:
                return list(self.model.gallery()[0])
            except ValueError:  # nobody known yet
                return []

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, name) -> bool:
        return name in self.names()

    def identify(self, images, *, threshold="auto"):
        with self._lock:
            return self.model.identify(images, threshold=threshold)

    def search(self, images, *, k: int = 5):
        with self._lock:
            return self.model.search(images, k=k)

    def close(self) -> None:
        """Nothing to do: every change is already saved."""


class SharedGallery:
    """A shared gallery (:func:`pyface.open_gallery`) that outlives a dropped database connection.

    A gallery keeps one connection, which a database restart, a fail-over or an idle
    timeout breaks for good. When a call fails with :class:`~pyface.GalleryError`,
    the gallery is opened again; a read is then tried once more, a change is not (it
    may have been committed just before the connection broke) and the request gets
    :class:`StoreUnavailable`, as does every call while the database is out of reach.
    """

    def __init__(self, url: str, model: FaceRecognizer):
        self.url = url
        self.model = model
        self.gallery = open_gallery(url, model)
        self._lock = threading.Lock()  # one reopening at a time

    def _reopen(self, broken) -> None:
        with self._lock:
            if self.gallery is not broken:  # another thread already did
                return
            try:
                self.gallery = open_gallery(self.url, self.model, create=False)
            except GalleryError as error:
                raise StoreUnavailable(f"the gallery cannot be reached: {error}") from None
        broken.close()

    def _call(self, method: str, *args, retry: bool, **options):
        gallery = self.gallery
        try:
            return getattr(gallery, method)(*args, **options)
        except GalleryError as error:
            self._reopen(gallery)
            if not retry:
                raise StoreUnavailable(f"the gallery could not be changed, try again: {error}") from None
        try:
            return getattr(self.gallery, method)(*args, **options)
        except GalleryError as error:
            raise StoreUnavailable(f"the gallery cannot be used: {error}") from None

    def enroll(self, name: str, images) -> int:
        return self._call("enroll", name, images, retry=False)

    def remove(self, name: str) -> None:
        self._call("remove", name, retry=False)

    def names(self) -> list[str]:
        return self._call("names", retry=True)

    def __len__(self) -> int:
        return self._call("__len__", retry=True)

    def __contains__(self, name) -> bool:
        return self._call("__contains__", name, retry=True)

    def identify(self, images, *, threshold="auto"):
        return self._call("identify", images, threshold=threshold, retry=True)

    def search(self, images, *, k: int = 5):
        return self._call("search", images, k=k, retry=True)

    def close(self) -> None:
        self.gallery.close()


def open_shared_gallery(url: str, model: FaceRecognizer) -> SharedGallery:
    """The shared gallery at ``url`` (an SQLite file or a ``postgresql://`` URL) for ``model``, created when new.

    Raises what :func:`pyface.open_gallery` raises: GalleryError (a ValueError) for a
    gallery of another model or no gallery at all, ImportError without psycopg.
    """
    return SharedGallery(url, model)
