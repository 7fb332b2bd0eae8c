"""A gallery in one SQLite file: the embedded default, for the processes of one machine.

The file is in WAL mode, so readers never wait for a writer and see each change whole;
writers take turns (``BEGIN IMMEDIATE``, waiting up to ``timeout`` seconds for another
writer), and ``synchronous=FULL`` makes every finished enrolment survive a power cut.
Embeddings are biometric data: a new file is created readable and writable by its
owner only (mode 0600), and SQLite gives its ``-wal`` and ``-shm`` files the same mode.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3

from .store import GalleryError, SqlStore, schema

_MAGIC = b"SQLite format 3\x00"


def _create_private(path: str) -> None:
    """Create ``path`` empty with mode 0600, unless it exists (another process may have just made it)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SqliteStore(SqlStore):
    """A gallery's rows in the SQLite file ``path``; ``create`` makes the file when it is missing."""

    mark = "?"
    begin_write = "BEGIN IMMEDIATE"
    begin_read = "BEGIN"

    def __init__(self, path, *, create: bool = True, timeout: float = 60.0):
        self.where = os.fspath(path)
        if os.path.isdir(self.where):
            raise GalleryError(self.where, "is a folder, not a gallery file")
        if not os.path.exists(self.where):
            if not create:
                raise FileNotFoundError(f"no gallery at {self.where}")
            folder = os.path.dirname(os.path.abspath(self.where))
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"{self.where}: the folder {folder} does not exist")
            _create_private(self.where)
        with open(self.where, "rb") as f:
            head = f.read(len(_MAGIC))
        if head and head != _MAGIC:
            raise GalleryError(self.where, "not a pyface gallery (not an SQLite database)")
        with self.errors():
            # Autocommit mode: transactions are begun and ended explicitly.
            self.connection = sqlite3.connect(self.where, timeout=timeout, isolation_level=None,
                                              check_same_thread=False)
            try:
                tables = {row[0] for row in self.connection.execute("SELECT name FROM sqlite_master")}
            except BaseException:
                self.close()
                raise
        # Another application's database is left exactly as it was (not even switched to WAL).
        if tables and "pyface_gallery" not in tables:
            self.close()
            raise GalleryError(self.where, "not a pyface gallery (an SQLite database of something else)")
        with self.errors():
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=FULL")

    def schema(self) -> list[str]:
        # AUTOINCREMENT: a removed person's id is never given to someone else.
        return schema("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB")

    def is_empty(self) -> bool:
        """True for a new file (no tables yet), which may become a gallery; False for any other database."""
        with self._transaction(self.begin_read):
            return self._run("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0

    @contextlib.contextmanager
    def errors(self):
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"{self.where}: {exc} (a name already in the gallery?)") from exc
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise GalleryError(self.where, "not a pyface gallery (an SQLite database without its tables)") from exc
            raise GalleryError(self.where, f"cannot use the gallery ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            raise GalleryError(self.where, f"not a pyface gallery, or corrupt ({exc})") from exc
