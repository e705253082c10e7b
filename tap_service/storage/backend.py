"""What the query service needs from a database backend.

Both backends (embedded DuckDB, Qserv over the MySQL protocol) hand rows over as Arrow record
batches, so the writers have one input shape whatever the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pyarrow as pa


class Backend(Protocol):
    """A database that runs checked, rendered SQL."""

    dialect: str

    def stream(
        self, sql: str, *, batch_rows: int = 65536, timeout: float | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Run ``sql`` and yield its rows batch by batch as the database produces them.

        Closing the iterator early cancels the query and frees its resources; past
        ``timeout`` seconds the query is cancelled and iteration raises ``QueryTimeoutError``.
        Failures are ``TapError`` subclasses with messages fit for clients.
        """
        ...

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query right now."""
        ...
