"""Where the service keeps the people it knows: the model file itself, or a shared gallery.

Both offer the methods the service calls, named as the shared gallery names them:
``enroll(name, images) -> int``, ``remove(name)``, ``names()``, ``len()``,
``identify(images, *, threshold="auto") -> (names, scores)`` and
``search(images, *, k=5) -> (names (N, k), scores (N, k))``. ``images`` is anything
:class:`~pyface.FaceRecognizer` reads; the service passes a data set of faces it has
already preprocessed. Enrolling an existing name or removing a trained person raises
``ValueError``, removing nobody ``KeyError``.
"""

from __future__ import annotations

import os
import threading

from ..recognition.recognizer import load_model
from ..recognition.recognizer import FaceRecognizer

__all__ = ["ModelPeople", "open_shared_gallery"]


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

    def identify(self, images, *, threshold="auto"):
        with self._lock:
            return self.model.identify(images, threshold=threshold)

    def search(self, images, *, k: int = 5):
        with self._lock:
            return self.model.search(images, k=k)


def open_shared_gallery(url: str, model: FaceRecognizer):
    """The shared gallery at ``url`` (SQLite or PostgreSQL), through :func:`pyface.open_gallery`.

    Raises RuntimeError when this pyface has no shared gallery.
    """
    import pyface  # at call time: the gallery is optional and this module must not need it

    opener = getattr(pyface, "open_gallery", None)
    if opener is None:
        raise RuntimeError(f"this pyface {pyface.__version__} has no shared gallery (pyface.open_gallery), "
                           "so --gallery cannot be used; serve the model's own people without --gallery")
    return opener(url, model)
