"""The image bytes a request carries: its raw body, or files of a multipart form."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import UploadFile
from starlette.requests import Request

from .errors import ClientError

__all__ = ["Upload", "body_or_form", "form_files"]

# Files (and fields) one form may carry: enough to enrol a person from many photos, few
# enough that a form of thousands of empty parts costs nothing.
MAX_FORM_PARTS = 64


class Upload:
    """The bytes of one uploaded image and how to name it in an error."""

    def __init__(self, data: bytes, label: str):
        self.data = data
        self.label = label


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _is_raw_image(media_type: str) -> bool:
    # No Content-Type at all is bytes of unknown type (RFC 9110), which an image is.
    return media_type in ("", "application/octet-stream") or media_type.startswith("image/")


async def body_or_form(request: Request, field: str, *, many: bool = False) -> list[Upload]:
    """The image of a raw body (Content-Type ``image/*`` or ``application/octet-stream``), or the form's ``field``."""
    media_type = _media_type(request)
    if media_type == "multipart/form-data":
        return (await form_files(request, [field], many=many))[field]
    if _is_raw_image(media_type):
        return [Upload(await request.body(), "the image")]
    raise ClientError(415, f"Content-Type {media_type!r} is not an image: send the image's bytes as the body "
                           f"with Content-Type image/jpeg (or image/png, ..., application/octet-stream), or a "
                           f"multipart/form-data form with the file in the field {field!r}")


def _label(field: str, upload: UploadFile, index: int, count: int) -> str:
    label = f"field {field!r}" + (f" #{index + 1}" if count > 1 else "")
    return label + (f" ({upload.filename})" if upload.filename else "")


async def form_files(request: Request, fields: Sequence[str], *, many: bool = False) -> dict[str, list[Upload]]:
    """The files of each of a multipart form's ``fields``: one each, or with ``many`` one or more."""
    media_type = _media_type(request)
    if media_type != "multipart/form-data":
        wanted = " and ".join(repr(f) for f in fields)
        plural = "s" if len(fields) > 1 else ""
        raise ClientError(415, f"Content-Type {media_type or 'missing'!r}: send a multipart/form-data form with "
                               f"the image file{plural} in the field{plural} {wanted}")
    form = await request.form(max_files=MAX_FORM_PARTS, max_fields=MAX_FORM_PARTS)
    try:
        found = {}
        for field in fields:
            values = form.getlist(field)
            if not values:
                present = ", ".join(repr(k) for k in dict.fromkeys(form.keys())) or "none"
                raise ClientError(400, f"the form has no field {field!r} (its fields: {present})")
            if len(values) > 1 and not many:
                raise ClientError(400, f"the form has {len(values)} fields {field!r}; give exactly one")
            uploads = []
            for index, value in enumerate(values):
                if not isinstance(value, UploadFile):
                    raise ClientError(400, f"the form's field {field!r} is text, not a file: send the image as "
                                           f"a file (with curl: -F '{field}=@face.jpg')")
                uploads.append(Upload(await value.read(), _label(field, value, index, len(values))))
            found[field] = uploads
        return found
    finally:
        await form.close()
