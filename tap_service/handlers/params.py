"""DALI request parameters: one place that knows their quirks.

DALI parameter names are case-insensitive and may arrive in the query string, in an
``application/x-www-form-urlencoded`` body or in ``multipart/form-data`` (pyvo and TOPCAT use
all three), so handlers only ever see a ``DaliParams`` keyed by lower-case name.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import IO

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.types import Message

from tap_service.exceptions import RequestTooLargeError, UploadTooLargeError, UsageError

# Room for the other parameters and the multipart framing beside the uploaded tables.
FORM_OVERHEAD_BYTES = 1 << 20


class DaliParams:
    """Parameter values by lower-cased name, in arrival order."""

    def __init__(
        self, values: Mapping[str, list[str]], parts: Mapping[str, IO[bytes]] | None = None
    ) -> None:
        self._values = dict(values)
        self.parts: dict[str, IO[bytes]] = dict(parts or {})
        """Multipart parts by their exact name: the tables ``UPLOAD=t,param:<name>`` refers to."""

    def get(self, name: str) -> str | None:
        """The single value of ``name``; repeating a single-valued parameter is an error."""
        values = self._values.get(name.lower())
        if not values:
            return None
        if len(values) > 1 and len(set(values)) > 1:
            raise UsageError(f"The parameter {name.upper()} was given {len(values)} times")
        return values[0]

    def get_all(self, name: str) -> list[str]:
        """Every value of a repeatable parameter (UPLOAD), in arrival order."""
        return list(self._values.get(name.lower(), []))

    def names(self) -> list[str]:
        return list(self._values)


def _upload_limit(request: Request) -> int:
    factory = getattr(request.app.state, "factory", None)
    config = getattr(factory, "config", None)
    limit: int = config.upload.max_bytes if config is not None else 32 * 1024 * 1024
    return limit


def _form_limit(request: Request) -> int:
    """A URL-encoded body holds the query (up to 3 bytes a character once percent-encoded)
    and a few short parameters; anything larger is no valid request."""
    factory = getattr(request.app.state, "factory", None)
    config = getattr(factory, "config", None)
    length: int = config.max_query_length if config is not None else 100_000
    return 3 * length + FORM_OVERHEAD_BYTES


def _limited(request: Request, limit: int, *, upload: bool) -> Request:
    """The request, its body refused (413) once it grows past ``limit`` bytes."""
    if upload:
        allowed = limit - FORM_OVERHEAD_BYTES
        too_large: type[UsageError] = UploadTooLargeError
        declared = f"uploads are limited to {allowed} bytes"
        arriving = f"larger than the upload limit of {allowed} bytes"
    else:
        too_large = RequestTooLargeError
        declared = f"a form body is limited to {limit} bytes (see TAP_MAX_QUERY_LENGTH)"
        arriving = f"larger than the form limit of {limit} bytes (see TAP_MAX_QUERY_LENGTH)"
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large(f"The request body is {int(length)} bytes; {declared}")
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(f"The request body is {arriving}; it was not read further")
        return message

    return Request(request.scope, receive)


async def read_params(request: Request) -> DaliParams:
    values: dict[str, list[str]] = {}
    parts: dict[str, IO[bytes]] = {}
    for key, value in request.query_params.multi_items():
        values.setdefault(key.lower(), []).append(value)
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            multipart = content_type.startswith("multipart/form-data")
            if multipart:
                limit = _upload_limit(request) + FORM_OVERHEAD_BYTES
            else:
                limit = _form_limit(request)
            source = _limited(request, limit, upload=multipart)
            try:
                form = await source.form(max_part_size=limit if multipart else 1 << 20)
            except (UploadTooLargeError, RequestTooLargeError):
                raise
            except Exception as exc:
                raise UsageError(f"The request body could not be read as a form: {exc}") from exc
            for key, item in form.multi_items():
                if isinstance(item, UploadFile):
                    parts[key] = item.file  # a table for UPLOAD=name,param:<key>
                    continue
                if multipart:
                    # A part without a filename may be a table too (UPLOAD=t,param:<key>).
                    parts.setdefault(key, io.BytesIO(item.encode("utf-8")))
                values.setdefault(key.lower(), []).append(item)
    return DaliParams(values, parts)
