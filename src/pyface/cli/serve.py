"""``pyface serve``: answer identification, verification and enrolment over HTTP."""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import sys
from pathlib import Path

from .common import UserError, load_model
from .options import FACES, int_at_least, positive_float

TOKEN_VARIABLE = "PYFACE_TOKEN"


def _port(text: str) -> int:
    value = int_at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, got {value}")
    return value


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of milliseconds, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be 0 or more milliseconds, got {text}")
    return value


def add_parser(commands, common) -> None:
    """Add ``serve`` to the ``pyface`` command's subcommands."""
    help = "answer identification, verification and enrolment over HTTP (needs pyface[serve])"
    p = commands.add_parser("serve", help=help, description=help, parents=[common])
    p.set_defaults(run=run)
    p.add_argument("model", metavar="MODEL", help="model file; without --gallery, enrolments are saved in it")
    p.add_argument("--gallery", metavar="URL",
                   help="keep people in this shared gallery instead (an SQLite file, created when missing, or "
                   "postgresql://...; see pyface gallery)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; put a reverse proxy with "
                   "TLS in front rather than listening on a public address)")
    p.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000; 0: any free port)")
    p.add_argument("--token", help=f"enrolling and removing people need 'Authorization: Bearer TOKEN' "
                   f"(default: the environment variable {TOKEN_VARIABLE}; none: anyone may)")
    p.add_argument("--max-body-mb", type=positive_float, default=10.0,
                   help="request bodies over this many megabytes get 413 (default 10)")
    p.add_argument("--max-megapixels", type=positive_float, default=20.0,
                   help="images over this many megapixels are refused (default 20)")
    p.add_argument("--max-batch", type=int_at_least(1), default=32,
                   help="faces embedded in one kernel call at most (default 32; 1: no batching)")
    p.add_argument("--max-wait-ms", type=_milliseconds, default=2.0,
                   help="milliseconds a batch waits for more faces after its first (default 2)")
    p.add_argument("--access-log", action="store_true", help="log a line for every request (default: only errors "
                   "and the start and end of the service)")
    p.add_argument("--faces", choices=tuple(FACES),
                   help="face detection on uploads (default: as the model was trained): auto finds the face "
                   "unless the image already is a face crop; crop always crops to the largest face; whole "
                   "never looks, for cameras that send face crops (several times faster per face)")


def _token(args: argparse.Namespace) -> str | None:
    token = args.token if args.token is not None else os.environ.get(TOKEN_VARIABLE)
    if token is not None and not token.strip():
        raise UserError(f"the token ({'--token' if args.token is not None else TOKEN_VARIABLE}) is blank")
    return token


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _store(args: argparse.Namespace, model):
    from ..serve.store import ModelPeople, open_shared_gallery

    if args.gallery is None:
        if not os.access(args.model, os.W_OK) or not os.access(Path(args.model).absolute().parent, os.W_OK):
            raise UserError(f"{args.model}: enrolments are saved in the model file, which cannot be written "
                            "here; give a writable copy or --gallery")
        return ModelPeople(model, args.model)
    try:
        return open_shared_gallery(args.gallery, model)
    except ImportError as error:  # psycopg, for a postgresql:// gallery
        raise UserError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    try:
        from ..serve import server
        from ..serve.app import create_app
        from ..serve.images import ImageLimits
        from ..serve.service import Service
    except ImportError as error:
        raise UserError(f"pyface serve needs the serve extra ({error.name} is missing): "
                        "pip install 'pyface[serve]'") from None
    token = _token(args)
    model = load_model(args.model)
    store = _store(args, model)
    try:
        service = Service(store, model, limits=ImageLimits(max_pixels=int(args.max_megapixels * 1e6)),
                          max_batch=args.max_batch, max_wait=args.max_wait_ms / 1000,
                          detect_faces=None if args.faces is None else FACES[args.faces])
    except RuntimeError as error:  # --faces auto or crop with an OpenCV that has no face detector
        store.close()
        raise UserError(str(error)) from None
    app = create_app(service, model_name=Path(args.model).name, token=token,
                     max_body_bytes=int(args.max_body_mb * 1e6))
    if token is None and not _is_loopback(args.host):
        print(f"pyface: warning: listening on {args.host} without a token: anyone who can reach the port can "
              f"enrol and remove people (set --token or {TOKEN_VARIABLE})", file=sys.stderr)
    try:
        sock = server.bind(args.host, args.port)
    except OSError as error:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    server.run(app, sock, access_log=args.access_log)
    return 0
