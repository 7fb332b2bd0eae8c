"""Galleries: enrolled people in SQLite or PostgreSQL, bound to the model that embedded them.

``open_gallery(url, model)`` opens one; see :class:`Gallery`. psycopg and FAISS are
imported only when a PostgreSQL gallery or an approximate index is opened.
"""

from .api import open_gallery
from .fingerprint import model_fingerprint
from .gallery import Gallery
from .store import GalleryError

__all__ = ["Gallery", "GalleryError", "model_fingerprint", "open_gallery"]
