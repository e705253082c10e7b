"""Streamed results whose database query ends when the response does, for any reason.

Starlette iterates a synchronous body in worker threads and, when the client goes away, simply
stops: the iterator is closed only when the garbage collector gets to it, which a reference
cycle can delay indefinitely, and until then the database keeps running the query (on Qserv,
holding a worker).  ``ClosingStreamingResponse`` closes its body itself once the response is
over, which runs the document's ``finally`` blocks: KILL QUERY, the prefetch thread stopped,
the query slot released.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


def document(head: Iterable[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    """``head`` then ``rest``, as a generator: closing it closes ``rest`` (``chain`` would
    not)."""
    yield from head
    yield from rest


def _close(body: Iterator[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


class ClosingStreamingResponse(StreamingResponse):
    """A streamed body closed as soon as the response ends: sent, failed or abandoned."""

    def __init__(self, body: Iterator[bytes], *, media_type: str) -> None:
        super().__init__(body, media_type=media_type)
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Starlette waits for a worker thread inside ``next`` before it returns, so the
            # generator is idle here; closing may block (KILL QUERY), hence a thread, and it
            # must happen even though this task is being cancelled.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_close, self._body)
