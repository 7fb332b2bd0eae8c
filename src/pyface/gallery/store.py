"""What a gallery keeps in its database, and the SQL both stores (SQLite, PostgreSQL) share.

Four tables, all named ``pyface_*`` so a gallery can live in a database shared with
other applications:

- ``pyface_gallery`` (key, value): the format and its version, the fingerprint of the
  model whose embeddings are stored and their size;
- ``pyface_people`` (id, name, metadata, templates, vectors, checksum): one row per
  person, the templates as little-endian float32 bytes with their CRC-32 (damage in the
  file shows as an error, not as other faces), so a person is added or removed whole by
  writing one row;
- ``pyface_state`` (generation): a counter every change bumps;
- ``pyface_changes`` (generation, person_id, op): which people each change touched, so
  that a process holding the templates in memory catches up without reading them all.

Every change is one transaction that also bumps the counter last: the counter's row
lock then orders the commits, so generations become visible in order and a reader
reading "everything after generation g" never skips a change committed late.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from dataclasses import dataclass, field

import numpy as np

FORMAT = "pyface-gallery"
FORMAT_VERSION = 1
# Templates of one person per enrolment at most; keeps (person, template) labels in 64 bits.
MAX_TEMPLATES = 65535
_FETCH = 2000


class GalleryError(ValueError):
    """A gallery that cannot be used: not a pyface gallery, corrupt, too new, or filled by another model."""

    def __init__(self, where: str, problem: str):
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


@dataclass
class Changes:
    """What changed in a store since a generation: people gone, and the current rows of people added or renamed."""

    generation: int
    everyone: bool  # True: ``people`` is the whole gallery, start from nothing
    removed: set = field(default_factory=set)
    people: list = field(default_factory=list)  # (person id, name, vectors (k, d) float32)


def schema(serial: str, blob: str) -> list[str]:
    """CREATE statements of the tables; ``serial`` and ``blob`` are the dialect's column types."""
    return [
        "CREATE TABLE IF NOT EXISTS pyface_gallery (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS pyface_people (id {serial}, name TEXT NOT NULL UNIQUE, "
        f"metadata TEXT, templates INTEGER NOT NULL, vectors {blob} NOT NULL, checksum BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pyface_state (id INTEGER PRIMARY KEY, generation BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pyface_changes (generation BIGINT NOT NULL, person_id BIGINT NOT NULL, "
        "op TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS pyface_changes_generation ON pyface_changes (generation)",
    ]


class SqlStore:
    """The gallery's rows in a SQL database; subclasses connect and say how transactions begin.

    Subclasses set ``where`` (the database, for error messages), ``connection`` (in
    autocommit mode: transactions are begun here explicitly), ``mark`` (the parameter
    placeholder), ``begin_write`` and ``begin_read`` (statements starting a writing
    transaction and a read-only snapshot), and translate the driver's errors in
    :meth:`errors`.
    """

    where: str
    connection = None
    mark = "?"
    begin_write = "BEGIN"
    begin_read = "BEGIN"

    # -------------------------------------------------------------- plumbing

    def errors(self):
        """Context manager turning the driver's errors into GalleryError / ValueError."""
        raise NotImplementedError

    def _sql(self, text: str) -> str:
        return text.replace("?", self.mark)

    def _run(self, text: str, params=()):
        return self.connection.execute(self._sql(text), params)

    @contextlib.contextmanager
    def _transaction(self, begin: str):
        with self.errors():
            self.connection.execute(begin)
            try:
                yield
            except BaseException:
                # A connection that broke mid-transaction cannot roll back; the server or the file already did.
                with contextlib.suppress(Exception):
                    self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()

    # -------------------------------------------------------------- the gallery's description

    def describe(self) -> dict:
        """The ``pyface_gallery`` rows as a dict; GalleryError when the tables are missing."""
        with self._transaction(self.begin_read):
            return dict(self._run("SELECT key, value FROM pyface_gallery").fetchall())

    def initialise(self, fingerprint: str, dimension: int, version: str) -> None:
        """Create the tables and describe a new gallery, unless another process just did."""
        with self._transaction(self.begin_write):
            self.lock_creation()
            for statement in self.schema():
                self._run(statement)
            if self._run("SELECT COUNT(*) FROM pyface_gallery").fetchone()[0]:
                return
            rows = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "fingerprint": fingerprint,
                    "dimension": str(dimension), "created_by": f"pyface {version}"}
            for key, value in rows.items():
                self._run("INSERT INTO pyface_gallery (key, value) VALUES (?, ?)", (key, value))
            self._run("INSERT INTO pyface_state (id, generation) VALUES (1, 0)")

    def schema(self) -> list[str]:
        raise NotImplementedError

    def lock_creation(self) -> None:
        """Serialise the creation of the tables between processes (the write transaction may already)."""

    # -------------------------------------------------------------- changes

    def _bump(self, person_ids, op: str) -> int:
        # Last in the transaction: the row lock on the counter orders the commits.
        generation = self._run("UPDATE pyface_state SET generation = generation + 1 WHERE id = 1 "
                               "RETURNING generation").fetchone()[0]
        for person in person_ids:
            self._run("INSERT INTO pyface_changes (generation, person_id, op) VALUES (?, ?, ?)",
                      (generation, person, op))
        return generation

    def add(self, people: list[tuple[str, np.ndarray, dict | None]]) -> int:
        """Add every (name, templates (k, d) float32, metadata) in one transaction; returns templates added.

        A name already in the gallery raises ValueError and adds nobody.
        """
        added = []
        with self._transaction(self.begin_write):
            for name, vectors, metadata in people:
                if self._run("SELECT 1 FROM pyface_people WHERE name = ?", (name,)).fetchone():
                    raise ValueError(f"{name!r} is already in the gallery; remove or rename them first")
                blob = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
                row = self._run(
                    "INSERT INTO pyface_people (name, metadata, templates, vectors, checksum) VALUES (?, ?, ?, ?, ?) "
                    "RETURNING id",
                    (name, None if metadata is None else json.dumps(metadata), len(vectors), blob, zlib.crc32(blob)),
                ).fetchone()
                added.append(row[0])
            self._bump(added, "enroll")
        return sum(len(vectors) for _, vectors, _ in people)

    def remove(self, name: str) -> None:
        with self._transaction(self.begin_write):
            row = self._run("DELETE FROM pyface_people WHERE name = ? RETURNING id", (name,)).fetchone()
            if row is None:
                raise KeyError(f"nobody called {name!r} is in the gallery")
            self._bump([row[0]], "remove")

    def rename(self, old: str, new: str) -> None:
        with self._transaction(self.begin_write):
            if self._run("SELECT 1 FROM pyface_people WHERE name = ?", (new,)).fetchone():
                raise ValueError(f"{new!r} is already in the gallery")
            row = self._run("UPDATE pyface_people SET name = ? WHERE name = ? RETURNING id", (new, old)).fetchone()
            if row is None:
                raise KeyError(f"nobody called {old!r} is in the gallery")
            self._bump([row[0]], "rename")

    # -------------------------------------------------------------- reading

    def names(self) -> list[str]:
        """Everyone's name, in order of enrolment."""
        with self._transaction(self.begin_read):
            return [row[0] for row in self._run("SELECT name FROM pyface_people ORDER BY id").fetchall()]

    def count(self) -> int:
        with self._transaction(self.begin_read):
            return self._run("SELECT COUNT(*) FROM pyface_people").fetchone()[0]

    def person(self, name: str) -> tuple[int, dict | None] | None:
        """(templates, metadata) of ``name``, or None when nobody is called so."""
        with self._transaction(self.begin_read):
            row = self._run("SELECT templates, metadata FROM pyface_people WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return row[0], None if row[1] is None else json.loads(row[1])

    def changes_since(self, generation: int | None, dimension: int) -> Changes:
        """Everything a copy at ``generation`` lacks (None: a copy of nothing), read in one snapshot."""
        with self._transaction(self.begin_read):
            now = self._run("SELECT generation FROM pyface_state WHERE id = 1").fetchone()[0]
            if generation is not None and generation == now:
                return Changes(now, everyone=False)
            if generation is None or generation > now:
                cursor = self._run("SELECT id, name, templates, vectors, checksum FROM pyface_people ORDER BY id")
                return Changes(now, everyone=True, people=self._decode(cursor, dimension))
            changed = self._run("SELECT person_id, op FROM pyface_changes WHERE generation > ? ORDER BY generation",
                                (generation,)).fetchall()
            removed = {person for person, op in changed if op == "remove"}
            touched = sorted({person for person, op in changed if op != "remove"})
            people = []
            for start in range(0, len(touched), 500):
                ids = touched[start : start + 500]
                cursor = self._run(f"SELECT id, name, templates, vectors, checksum FROM pyface_people WHERE id IN "
                                   f"({', '.join('?' * len(ids))}) ORDER BY id", tuple(ids))
                people.extend(self._decode(cursor, dimension))
            return Changes(now, everyone=False, removed=removed, people=people)

    def _decode(self, cursor, dimension: int) -> list[tuple[int, str, np.ndarray]]:
        people = []
        while True:
            rows = cursor.fetchmany(_FETCH)
            if not rows:
                return people
            for person, name, count, blob, checksum in rows:
                blob = bytes(blob)
                if zlib.crc32(blob) != checksum:
                    raise GalleryError(self.where, f"corrupt gallery: the templates of {name!r} fail their checksum")
                if count < 1 or len(blob) != count * dimension * 4:
                    raise GalleryError(self.where, f"corrupt gallery: {name!r} has {len(blob)} bytes of templates "
                                                   f"for {count} templates of {dimension} values")
                vectors = np.frombuffer(blob, dtype="<f4").reshape(count, dimension).astype(np.float32)
                if not np.isfinite(vectors).all():
                    raise GalleryError(self.where, f"corrupt gallery: {name!r} has non-finite templates")
                people.append((person, name, vectors))
