"""The errors the service answers with other than a 500: a client's mistake (4xx), a store out of reach (503)."""

from __future__ import annotations


class ClientError(Exception):
    """A request the service refuses: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        if not 400 <= status < 500:
            raise ValueError(f"a client's mistake has a 4xx status, got {status}")
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class StoreUnavailable(Exception):
    """The people cannot be read or changed now (the gallery's database is out of reach): answered with 503."""
