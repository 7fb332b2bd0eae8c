"""Request bodies over a size limit answered with 413 without being read whole.

A declared ``Content-Length`` over the limit is refused before a byte of the body
is read; a body without one (chunked) is counted as it streams in, and refused the
moment it passes the limit.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

__all__ = ["BodyLimit", "BodyTooLarge"]


class BodyTooLarge(Exception):
    """Raised while a request's body is read, once it has passed the limit."""

    def __init__(self, limit: int):
        super().__init__(f"the request body is over the limit of {_megabytes(limit)}")
        self.limit = limit


def _megabytes(n: int) -> str:
    return f"{n / 1e6:g} MB"


class BodyLimit:
    """ASGI middleware holding every HTTP request body to ``max_bytes``."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            problem = None
            if not declared.strip().isdigit():
                problem = (400, f"Content-Length {declared!r} is not a number of bytes")
            elif int(declared) > self.max_bytes:
                problem = (413, f"the request body of {_megabytes(int(declared))} is over the limit of "
                                f"{_megabytes(self.max_bytes)}")
            if problem is not None:
                status, message = problem
                # Connection: close, so the server drops the unread body instead of reading it.
                response = JSONResponse({"error": message}, status_code=status, headers={"Connection": "close"})
                await response(scope, receive, send)
                return
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)
