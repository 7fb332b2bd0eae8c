"""The one kind of error the service answers with a 4xx: a client's mistake, with its status."""

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
