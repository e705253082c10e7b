"""TAP_SCHEMA as the service sees it: the checker's catalog and the VOSI tables, cached.

The snapshot is read once (``storage.tap_schema_reader``) and kept; ``reload`` re-reads it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from tap_service.adql.catalog import UserFunction
from tap_service.storage.backend import Backend
from tap_service.storage.tap_schema_reader import (
    ForeignKey,
    SchemaEntry,
    TapSchemaModel,
    load_tap_schema,
)

__all__ = ["ForeignKey", "SchemaEntry", "TapSchemaModel", "TapSchemaService", "load_tap_schema"]


class TapSchemaService:
    """Holds the current TAP_SCHEMA snapshot; cheap to ask, re-read on demand."""

    def __init__(self, backend: Backend, user_functions: Sequence[UserFunction] = ()) -> None:
        self._backend = backend
        self._functions = tuple(user_functions)
        self._lock = threading.Lock()
        self._model: TapSchemaModel | None = None

    @property
    def model(self) -> TapSchemaModel:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = load_tap_schema(self._backend, self._functions)
                model = self._model
        return model

    def reload(self) -> TapSchemaModel:
        with self._lock:
            self._model = load_tap_schema(self._backend, self._functions)
            return self._model
