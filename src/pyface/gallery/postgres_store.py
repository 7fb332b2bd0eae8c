"""A gallery in a PostgreSQL database, shared by the processes of many machines (extra ``pyface[postgres]``).

psycopg 3 is imported only when such a gallery is opened. Writers run in READ
COMMITTED transactions that meet only at the counter row (see ``store``); readers
take a REPEATABLE READ snapshot, so they see each enrolment whole or not at all.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit, urlunsplit

from .store import GalleryError, SqlStore, schema


def redacted(url: str) -> str:
    """``url`` without its password, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def _psycopg():
    try:
        import psycopg
    except ImportError as exc:
        raise ImportError("PostgreSQL galleries need psycopg 3: pip install 'pyface[postgres]'") from exc
    return psycopg


class PostgresStore(SqlStore):
    """A gallery's rows in the PostgreSQL database at ``url`` (``postgresql://user@host/db``)."""

    mark = "%s"
    begin_write = "BEGIN"
    begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

    def __init__(self, url: str, *, timeout: float = 30.0):
        self.psycopg = _psycopg()
        self.where = redacted(url)
        try:
            # Autocommit mode: transactions are begun and ended explicitly, as with SQLite.
            self.connection = self.psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout)))
        except self.psycopg.Error as exc:
            raise GalleryError(self.where, f"cannot connect ({str(exc).strip()})") from exc

    def schema(self) -> list[str]:
        return schema("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA")

    def lock_creation(self) -> None:
        # CREATE TABLE IF NOT EXISTS races with itself in PostgreSQL; a transaction-wide lock prevents it.
        self._run("SELECT pg_advisory_xact_lock(hashtext('pyface_gallery'))")

    def is_empty(self) -> bool:
        """True when the database holds no gallery yet (its other tables are none of pyface's business)."""
        with self._transaction(self.begin_read):
            row = self._run("SELECT to_regclass('pyface_gallery')").fetchone()
        return row[0] is None

    @contextlib.contextmanager
    def errors(self):
        errors = self.psycopg.errors
        try:
            yield
        except errors.UniqueViolation as exc:
            raise ValueError(f"{self.where}: a name already in the gallery ({str(exc).strip()})") from exc
        except errors.UndefinedTable as exc:
            raise GalleryError(self.where, "not a pyface gallery (its tables are missing)") from exc
        except self.psycopg.Error as exc:
            raise GalleryError(self.where, f"cannot use the gallery ({str(exc).strip()})") from exc
