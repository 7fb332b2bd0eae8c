"""The HTTP service: routes, JSON answers, and a JSON error for every client mistake.

Routes (see :func:`pyface.serve.openapi.document` for the full description):
``GET /health``, ``POST /identify``, ``POST /verify``, ``GET /people``,
``POST /people/{name}``, ``DELETE /people/{name}``, ``GET /openapi.json``.
"""

from __future__ import annotations

import contextlib
import hmac
import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import ClientError, StoreUnavailable
from .limits import BodyLimit, BodyTooLarge
from .openapi import document
from .service import Service
from .uploads import body_or_form, form_files

__all__ = ["create_app"]

logger = logging.getLogger("pyface.serve")
MAX_K = 100
MAX_NAME_LENGTH = 200
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _service(request: Request) -> Service:
    return request.app.state.service


def _k_option(request: Request) -> int | None:
    text = request.query_params.get("k")
    if text is None:
        return None
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_K:
        raise ClientError(400, f"k must be a whole number from 1 to {MAX_K}, got {text!r}")
    return int(text)


def _person(request: Request) -> str:
    name = request.path_params["name"]
    if not name.strip():
        raise ClientError(400, "a person's name cannot be blank")
    if len(name) > MAX_NAME_LENGTH:
        raise ClientError(400, f"a person's name has at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    if not name.isprintable():
        raise ClientError(400, f"a person's name cannot hold control characters: {name!r}")
    if name == "unknown":
        raise ClientError(400, "'unknown' is the answer for strangers and cannot name a person")
    return name


def _authorise(request: Request) -> None:
    token = request.app.state.token
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        problem = "needs the service's token"
    elif not hmac.compare_digest(given.strip().encode(), token.encode()):
        problem = "was refused: wrong token"
    else:
        return
    raise ClientError(401, f"changing the people {problem}; send the header 'Authorization: Bearer TOKEN'",
                      headers={"WWW-Authenticate": "Bearer"})


# ---------------------------------------------------------------------------- routes


async def health(request: Request) -> Response:
    service = _service(request)
    people = await run_in_threadpool(len, service.store)
    return JSONResponse({"status": "ok", "model": request.app.state.model_name, "people": people})


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


async def identify(request: Request) -> Response:
    service = _service(request)
    k = _k_option(request)
    (upload,) = await body_or_form(request, "image")
    (face,) = await service.faces([upload])
    return JSONResponse(await service.identify(face, k))


async def verify(request: Request) -> Response:
    service = _service(request)
    uploads = await form_files(request, ("a", "b"))

    a, b = await service.faces([uploads["a"][0], uploads["b"][0]])
    return JSONResponse(await service.verify(a, b))


async def list_people(request: Request) -> Response:
    names = await run_in_threadpool(_service(request).names)
    return JSONResponse({"people": names, "count": len(names)})


async def enroll(request: Request) -> Response:
    _authorise(request)
    name = _person(request)
    service = _service(request)
    uploads = await body_or_form(request, "images", many=True)
    faces = await service.faces(uploads)
    count = await service.enroll(name, faces)
    people = await run_in_threadpool(len, service.store)
    return JSONResponse({"name": name, "images": count, "people": people}, status_code=201)


async def remove(request: Request) -> Response:
    _authorise(request)
    name = _person(request)
    service = _service(request)
    await service.remove(name)
    people = await run_in_threadpool(len, service.store)
    return JSONResponse({"removed": name, "people": people})


async def person(request: Request) -> Response:
    # One route for both methods, so a wrong method is told every allowed one.
    return await (enroll if request.method == "POST" else remove)(request)


# ---------------------------------------------------------------------------- errors


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _client_error(request: Request, exc: ClientError) -> Response:
    return _error(exc.status, exc.message, exc.headers)


async def _unavailable(request: Request, exc: StoreUnavailable) -> Response:
    # Not the client's mistake, nor a bug: the same request may succeed once the database is back.
    return _error(503, str(exc), {"Retry-After": "5"})


async def _too_large(request: Request, exc: BodyTooLarge) -> Response:
    # The rest of the body is never read: the connection closes after the answer.
    return _error(413, str(exc), {"Connection": "close"})


async def _http_error(request: Request, exc: HTTPException) -> Response:
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"no such endpoint: {request.url.path} (the endpoints are listed at /openapi.json)"
    elif exc.status_code == 405:
        # Starlette keeps a route's methods in a set: listed in a fixed order, the answer is always the same.
        allowed = {m.strip() for m in headers.get("Allow", "").split(",") if m.strip()}
        headers["Allow"] = ", ".join(sorted(allowed, key=_METHOD_ORDER.index))
        message = f"{request.method} is not allowed on {request.url.path}; use {headers['Allow']}"
    else:
        message = str(exc.detail)
    return _error(exc.status_code, message, headers)


async def _disconnected(request: Request, exc: ClientDisconnect) -> Response:
    return _error(400, "the client went away before sending the whole request")


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")


def create_app(service: Service, *, model_name: str, token: str | None = None,
               max_body_bytes: int = 10_000_000) -> Starlette:
    """The ASGI application answering for ``service``.

    ``token``: when given, enrolling and removing people need the header
    ``Authorization: Bearer <token>``. ``max_body_bytes``: request bodies over it get 413.
    """
    if token is not None and not token.strip():
        raise ValueError("the token cannot be blank")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await service.close()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/identify", identify, methods=["POST"]),
        Route("/verify", verify, methods=["POST"]),
        Route("/people", list_people, methods=["GET"]),
        Route("/people/{name}", person, methods=["POST", "DELETE"]),
    ]
    handlers = {ClientError: _client_error, StoreUnavailable: _unavailable, BodyTooLarge: _too_large,
                HTTPException: _http_error, ClientDisconnect: _disconnected, Exception: _server_error}
    app = Starlette(routes=routes, middleware=[Middleware(BodyLimit, max_bytes=max_body_bytes)],
                    exception_handlers=handlers, lifespan=lifespan)
    app.state.service = service
    app.state.model_name = model_name
    app.state.token = token
    app.state.openapi = document(max_body_bytes=max_body_bytes, token=token is not None)
    return app
