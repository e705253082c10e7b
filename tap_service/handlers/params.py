"""DALI request parameters: one place that knows their quirks.

DALI parameter names are case-insensitive and may arrive in the query string, in an
``application/x-www-form-urlencoded`` body or in ``multipart/form-data`` (pyvo and TOPCAT use
all three), so handlers only ever see a ``DaliParams`` keyed by lower-case name.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from starlette.datastructures import UploadFile

from tap_service.exceptions import UsageError


class DaliParams:
    """Parameter values by lower-cased name, in arrival order."""

    def __init__(self, values: Mapping[str, list[str]]) -> None:
        self._values = dict(values)

    def get(self, name: str) -> str | None:
        """The single value of ``name``; repeating a single-valued parameter is an error."""
        values = self._values.get(name.lower())
        if not values:
            return None
        if len(values) > 1 and len(set(values)) > 1:
            raise UsageError(f"The parameter {name.upper()} was given {len(values)} times")
        return values[0]

    def names(self) -> list[str]:
        return list(self._values)


async def read_params(request: Request) -> DaliParams:
    values: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        values.setdefault(key.lower(), []).append(value)
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            try:
                form = await request.form()
            except Exception as exc:
                raise UsageError(f"The request body could not be read as a form: {exc}") from exc
            for key, item in form.multi_items():
                if isinstance(item, UploadFile):
                    # Uploaded files are only meaningful for UPLOAD, not supported yet.
                    continue
                values.setdefault(key.lower(), []).append(item)
    return DaliParams(values)
