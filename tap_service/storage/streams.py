"""What every database stream shares: cancellation from any thread, timeouts, clean-up.

A stream is read by one thread while another may cancel it (client gone, job aborted, deadline
passed).  The reading thread owns the connection while it is inside the driver (``_busy``), so a
cancel from elsewhere only interrupts the database and leaves the release to the reader; this
class holds that protocol once for the embedded and the MySQL-protocol backends.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

from tap_service.exceptions import BackendError, QueryTimeoutError
from tap_service.storage.deadlines import Deadline


class QueryCancelledError(BackendError):
    """The query was interrupted (client gone, job aborted, service shutting down)."""


class CancellableStream:
    """Base of the backends' query streams; subclasses interrupt and release their resources."""

    def __init__(self, timeout: float | None) -> None:
        self._timeout = timeout
        self._lock = threading.RLock()
        self._timer: Deadline | None = None
        self._interrupted = False
        self._timed_out = False
        self._busy = False
        """A thread is inside the driver with this stream's connection; only it may release."""
        self._done = False

    def __iter__(self) -> Self:
        return self

    def interrupt(self) -> None:
        """Stop the running statement on the server; safe from any thread."""
        raise NotImplementedError

    def _release(self, *, healthy: bool) -> None:
        """Give the connection back (or drop it) once; called by the reading thread."""
        raise NotImplementedError

    def close(self) -> None:
        """Cancel and release; from another thread, the reading thread releases when it wakes."""
        if self._done:
            return
        self.interrupt()
        with self._lock:
            if self._busy:
                return
        self._release(healthy=False)

    def _expire(self) -> None:
        self._timed_out = True
        self.interrupt()

    def _cancelled(self) -> BackendError | QueryTimeoutError:
        if self._timed_out:
            return QueryTimeoutError(
                f"The query ran longer than {self._timeout:g} s and was cancelled"
            )
        return QueryCancelledError("The query was cancelled")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
