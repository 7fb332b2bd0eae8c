"""Writing a results table to one Parquet file, partition by partition, complete or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile


def _schema():
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("name", pa.string()), ("score", pa.float64()),
                      ("error", pa.string())])


class TableWriter:
    """Appends (path, name, score, error) tables to the Parquet file ``path``.

    Rows go to a temporary file beside ``path``, one row group per table, so memory holds
    one partition at a time; leaving the ``with`` block normally renames it over ``path``,
    and an exception (Ctrl-C included) removes it, leaving any earlier ``path`` untouched.
    The rows with an error are kept aside for :meth:`failed`.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        if os.path.isdir(self.path):
            raise IsADirectoryError(f"{self.path} is a folder; give a file name for the results")
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"cannot write {self.path}: the folder {folder} does not exist")
        self._folder = folder
        self._tmp = None
        self._writer = None
        self._failed = []

    def __enter__(self) -> TableWriter:
        import pyarrow.parquet as pq

        fd, self._tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".tmp", dir=self._folder)
        os.close(fd)
        self._writer = pq.ParquetWriter(self._tmp, _schema())
        return self

    def write(self, table) -> None:
        """Append ``table`` (a pandas DataFrame with the four columns)."""
        import pyarrow as pa

        self._writer.write_table(pa.Table.from_pandas(table, schema=_schema(), preserve_index=False))
        failed = table[table["error"].notna()]
        if len(failed):
            self._failed.append(failed)

    def failed(self):
        """The rows written with an error, as one DataFrame (often empty)."""
        import pandas as pd

        if not self._failed:
            return pd.DataFrame({"path": [], "name": [], "score": [], "error": []}).astype({"score": float})
        return pd.concat(self._failed, ignore_index=True)

    def __exit__(self, kind, value, traceback) -> None:
        try:
            self._writer.close()
            if kind is None:
                # A results file is as readable as any other file, not private like mkstemp's.
                os.chmod(self._tmp, 0o644)
                os.replace(self._tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
