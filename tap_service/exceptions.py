"""The service's error family.

Each class knows its HTTP status; one exception handler (``handlers.errors``) renders every one
of them as a DALI error document, so no handler formats errors itself and no traceback reaches a
client.  ADQL errors from the library are wrapped in ``QueryError`` by the query service.
"""

from __future__ import annotations


class TapError(Exception):
    """Base of errors reported to clients; ``message`` is what a person reads."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(TapError):
    """A request parameter is missing or invalid (DALI: the client's fault, HTTP 400)."""

    status_code = 400


class QueryError(UsageError):
    """The ADQL query is wrong: syntax, unknown names, types, or unsupported by the backend."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


class UploadError(UsageError):
    """A TAP_UPLOAD table that cannot be used: bad UPLOAD value, VOTable, name or URL (400)."""


class RequestTooLargeError(UsageError):
    """A form body larger than any valid request needs (HTTP 413): refused while it arrives,
    so an oversized POST is never held in memory."""

    status_code = 413


class UploadTooLargeError(UploadError):
    """Uploaded tables past the configured size limit (HTTP 413 Content Too Large)."""

    status_code = 413


class QueryDataError(UsageError):
    """A checked query the database refused because of a value while running it: a CAST that
    does not fit, an integer overflow, an impossible date.  The client's to change (HTTP 400);
    there is no position, the value comes from the data."""


class UnknownTableError(TapError):
    """``/tables/{name}`` for a table TAP_SCHEMA does not have."""

    status_code = 404


class BackendUnavailableError(TapError):
    """The database cannot be reached: clients should retry later (HTTP 503)."""

    status_code = 503


class BackendError(TapError):
    """The database failed while running a checked query: the service's fault (HTTP 500)."""

    status_code = 500


class QueryTimeoutError(TapError):
    """The query ran longer than the sync limit and was cancelled."""

    status_code = 500


class JobNotFoundError(TapError):
    """An async job (or one of its results) that does not exist (UWS: HTTP 404)."""

    status_code = 404


class JobPhaseError(TapError):
    """A UWS action the job's current phase does not allow (HTTP 409 Conflict)."""

    status_code = 409


class QueueUnavailableError(BackendUnavailableError):
    """The job queue (Redis broker) cannot be reached: no job was created (HTTP 503)."""

    status_code = 503


class ResultStoreError(BackendUnavailableError):
    """A result cannot be written to (or removed from) the result store: a full disk, an S3
    endpoint that does not answer.  An async job ends in ERROR (transient) with this message."""

    status_code = 503


class AuthenticationError(TapError):
    """No valid credentials (HTTP 401); the response challenges for Basic and Bearer."""

    status_code = 401

    def __init__(self, message: str, *, realm: str = "tap", error: str | None = None) -> None:
        super().__init__(message)
        bearer = f'Bearer realm="{realm}"'
        if error:
            bearer += f', error="{error}"'
        self.challenges = [f'Basic realm="{realm}"', bearer]


class PermissionDeniedError(TapError):
    """Valid credentials that do not allow this (HTTP 403), e.g. a token without read:tap."""

    status_code = 403


class QuotaExceededError(TapError):
    """A per-user limit is reached (HTTP 429); ``retry_after`` seconds until it may succeed."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
