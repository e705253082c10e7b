"""The one place where exceptions become responses: DALI error documents, never tracebacks."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tap_service.exceptions import AuthenticationError, QuotaExceededError, TapError
from tap_service.votable import Info, error_document

log = logging.getLogger(__name__)

VOTABLE = "application/x-votable+xml"


def dali_error(message: str, status: int, *, infos: list[Info] | None = None) -> Response:
    return Response(
        error_document(message, infos=infos or ()), status_code=status, media_type=VOTABLE
    )


async def _tap_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TapError)
    infos: list[Info] = []
    line = getattr(exc, "line", None)
    if line is not None:
        infos.append(Info(name="LINE", value=str(line)))
        infos.append(Info(name="COLUMN", value=str(getattr(exc, "column", ""))))
    if exc.status_code >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    headers = {"Retry-After": "30"} if exc.status_code == 503 else None
    response = dali_error(exc.message, exc.status_code, infos=infos)
    if headers:
        response.headers.update(headers)
    if isinstance(exc, QuotaExceededError):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, AuthenticationError):
        for challenge in exc.challenges:
            response.headers.append("WWW-Authenticate", challenge)
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail) if exc.detail else "Error"
    if exc.status_code == 404:
        message = f"There is nothing at {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return dali_error(message, exc.status_code)


async def _validation_error(request: Request, exc: Exception) -> Response:
    return dali_error(f"Invalid request: {exc}", 400)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return dali_error("Internal error in the TAP service; it has been logged", 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(TapError, _tap_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
