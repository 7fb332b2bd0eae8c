"""The service's OpenAPI 3.1 description, served at ``GET /openapi.json``.

Written by hand: the routes are few, and a description read off the code would
know nothing of the image bodies, the limits or the error answers.
"""

from __future__ import annotations

__all__ = ["document"]

_ERROR = {"$ref": "#/components/responses/Error"}
_IMAGE_TYPES = {"image/*": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _form(fields: dict[str, str], *, array: str | None = None) -> dict:
    properties = {field: {"type": "string", "format": "binary", "description": text} for field, text in fields.items()}
    if array is not None:
        properties[array] = {"type": "array", "items": properties[array]}
    return {"multipart/form-data": {"schema": {"type": "object", "properties": properties,
                                               "required": list(fields)}}}


def _errors(*statuses: int) -> dict:
    return {str(status): _ERROR for status in statuses}


_CANDIDATE = {"type": "object", "properties": {"name": {"type": "string"}, "score": {"type": "number"}}}

_IDENTIFY = {
    "summary": "Name the person in one face image",
    "description": "The most similar person, or \"unknown\" when the similarity is below the "
                   "model's (or gallery's) threshold. Faces arriving together are embedded in one kernel call.",
    "parameters": [{"name": "k", "in": "query", "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    "description": "also answer the k most similar people, best first"}],
    "requestBody": {"required": True, "content": {**_IMAGE_TYPES, **_form({"image": "the face image"})}},
    "responses": {
        "200": _json("the answer", {"type": "object", "required": ["name", "score", "known"], "properties": {
            "name": {"type": "string", "description": "a known person, or \"unknown\""},
            "score": {"type": "number", "description": "similarity to that person: the mean of the cosines "
                                                         "with their best template and their mean template, "
                                                         "less the mean of the two offsets where the model "
                                                         "normalizes scores"},
            "known": {"type": "boolean"},
            "candidates": {"type": "array", "items": _CANDIDATE, "description": "with k: the top k"}}}),
        **_errors(400, 409, 413, 415, 503)},
}

_VERIFY = {
    "summary": "Tell whether two face images show the same person",
    "requestBody": {"required": True, "content": _form({"a": "first face image", "b": "second face image"})},
    "responses": {
        "200": _json("the answer", {"type": "object", "properties": {
            "same": {"type": "boolean"}, "score": {"type": "number", "description": "cosine similarity (less the mean "
                                                                           "of the two offsets where the model "
                                                                           "normalizes scores)"},
            "threshold": {"type": "number", "description": "similarity from which the faces are the same person"}}}),
        **_errors(400, 409, 413, 415)},
}


def _people_paths(token: bool) -> dict:
    secured = {"security": [{"token": []}]} if token else {}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 200}}
    return {
        "/people": {"get": {
            "summary": "List the people the service knows",
            "responses": {"200": _json("the people", {"type": "object", "properties": {
                "people": {"type": "array", "items": {"type": "string"}}, "count": {"type": "integer"}}}),
                **_errors(503)}}},
        "/people/{name}": {
            "post": {
                "summary": "Enrol a person from one or more face images",
                "description": "The raw body is one image; a multipart form may carry several files in the "
                               "field \"images\". The change is saved before the answer.",
                "parameters": [name], **secured,
                "requestBody": {"required": True, "content": {
                    **_IMAGE_TYPES, **_form({"images": "face images of the person"}, array="images")}},
                "responses": {"201": _json("enrolled", {"type": "object", "properties": {
                    "name": {"type": "string"}, "images": {"type": "integer"}, "people": {"type": "integer"}}}),
                    **_errors(400, 401, 409, 413, 415, 503)}},
            "delete": {
                "summary": "Remove an enrolled person",
                "parameters": [name], **secured,
                "responses": {"200": _json("removed", {"type": "object", "properties": {
                    "removed": {"type": "string"}, "people": {"type": "integer"}}}),
                    **_errors(401, 404, 409, 503)}}},
    }


def document(*, max_body_bytes: int, token: bool) -> dict:
    """The OpenAPI description of a service with this body limit, and a token or not."""
    components = {"responses": {"Error": _json(
        "a request the service refuses, and why", {"type": "object", "required": ["error"],
                                                   "properties": {"error": {"type": "string"}}})}}
    if token:
        components["securitySchemes"] = {"token": {"type": "http", "scheme": "bearer"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "pyface recognition service", "version": "1",
                 "description": f"Face identification and verification over HTTP. Request bodies are limited to "
                                f"{max_body_bytes / 1e6:g} MB (413 above). Errors answer {{\"error\": message}}; "
                                "503: the gallery's database cannot be reached now, try again."},
        "paths": {
            "/health": {"get": {"summary": "Whether the service is up, and how many people it knows",
                                "responses": {"200": _json("up", {"type": "object", "properties": {
                                    "status": {"type": "string"}, "model": {"type": "string"},
                                    "people": {"type": "integer"}}}), **_errors(503)}}},
            "/identify": {"post": _IDENTIFY},
            "/verify": {"post": _VERIFY},
            **_people_paths(token),
            "/openapi.json": {"get": {"summary": "This description",
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": components,
    }
