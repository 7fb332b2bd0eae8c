"""Running the service: a socket bound here, uvicorn answering on it, SIGTERM draining it.

On SIGTERM or SIGINT uvicorn stops accepting connections, lets the requests in
flight finish (up to ``DRAIN_SECONDS``), shuts the service down and exits.
"""

from __future__ import annotations

import socket
import sys

import uvicorn

__all__ = ["bind", "run"]

# How long requests in flight may take to finish after SIGTERM, in seconds.
DRAIN_SECONDS = 30.0


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: any free port), ready for the server to listen on."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def run(app, sock: socket.socket, *, log_level: str = "info", access_log: bool = False) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM or SIGINT; requests in flight are answered first.

    ``access_log`` logs a line per request: off by default (as gunicorn's), since at hundreds of
    faces a second the formatting and writing cost a tenth of the throughput; errors are logged
    either way.
    """
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    # Printed before serving, with the real port (useful with port 0); /health tells when it answers.
    print(f"pyface: serving on http://{shown}:{port}", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=DRAIN_SECONDS, lifespan="on",
                            server_header=False, access_log=access_log)
    uvicorn.Server(config).run(sockets=[sock])
