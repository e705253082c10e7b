"""Everything built once per process, handed out cheaply per request.

The factory owns the database backend and the TAP_SCHEMA snapshot; handlers ask it for services
instead of constructing anything, and tests build a factory from a ``Config`` pointing at their
own data directory instead of patching globals.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from tap_service import adql
from tap_service.adql.catalog import UserFunction
from tap_service.adql.types import ValueType
from tap_service.config import Config
from tap_service.exceptions import BackendUnavailableError, TapError
from tap_service.services.query import QueryService
from tap_service.services.tapschema import TapSchemaService
from tap_service.services.vosi import Availability
from tap_service.storage.backend import Backend

log = logging.getLogger(__name__)

PACKAGE_DATA = Path(__file__).parent / "data"


class Factory:
    """Process-wide state of one service instance."""

    def __init__(self, config: Config, backend: Backend | None = None) -> None:
        self.config = config
        self.started = datetime.now(UTC)
        self._lock = threading.Lock()
        self._backend = backend
        functions = [
            UserFunction(
                name=udf.name,
                signature=udf.signature,
                returns=ValueType(udf.returns),
                description=udf.description,
                sql=dict(udf.sql),
            )
            for udf in config.user_functions
        ]
        self._functions = functions
        self._tap_schema: TapSchemaService | None = None

    @property
    def backend(self) -> Backend:
        with self._lock:
            if self._backend is None:
                self._backend = open_backend(self.config)
            return self._backend

    @property
    def tap_schema(self) -> TapSchemaService:
        if self._tap_schema is None:
            self._tap_schema = TapSchemaService(self.backend, self._functions)
        return self._tap_schema

    def query_service(self) -> QueryService:
        return QueryService(self.config, self.backend, self.tap_schema)

    def availability(self) -> Availability:
        try:
            self.backend.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means "not available"
            log.warning("availability check failed: %s", exc)
            note = exc.message if isinstance(exc, TapError) else "The database is not reachable"
            return Availability(available=False, note=note)
        return Availability(
            available=True, note="The service is accepting queries", up_since=self.started
        )

    def warm_up(self) -> None:
        """Build the parser and read TAP_SCHEMA now; an unavailable database is only logged."""
        adql.parse("SELECT TOP 1 x FROM t WHERE CONTAINS(POINT(a, b), CIRCLE(1, 2, 3)) = 1")
        try:
            _ = self.tap_schema.model
        except TapError as exc:
            log.warning("TAP_SCHEMA not read at start-up: %s", exc.message)

    def examples_path(self) -> Path:
        return self.config.examples_file or PACKAGE_DATA / "examples.html"

    def close(self) -> None:
        backend = self._backend
        close = getattr(backend, "close", None)
        if close is not None:
            close()


def open_backend(config: Config) -> Backend:
    """The configured database; fails with BackendUnavailableError when it cannot be opened."""
    if config.backend == "embedded":
        from tap_service.adql.dialects.embedded import setup_statements
        from tap_service.storage.embedded import EmbeddedDatabase

        # Messages go to clients: they name no server paths (the log does).
        if not config.catalog_path.exists():
            log.error("no catalog at %s", config.catalog_path)
            raise BackendUnavailableError(
                "The service has no catalog yet: its operator must run `tap-service demo` or "
                "`tap-service ingest`"
            )
        try:
            return EmbeddedDatabase(
                config.data_dir, read_only=True, setup_statements=setup_statements()
            )
        except Exception as exc:
            log.exception("cannot open %s", config.catalog_path)
            raise BackendUnavailableError("The catalog database cannot be opened") from exc
    raise BackendUnavailableError(f"The {config.backend} backend is not available yet")
