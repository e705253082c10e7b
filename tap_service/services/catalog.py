"""Publishing Felis schemas named by configuration into the embedded catalog.

The service opens its catalog read-only while serving (so several processes may share the file);
schemas listed in ``TAP_SCHEMA_FILES`` are therefore published just before serving, in a short
read-write session, creating their tables empty when absent and refreshing TAP_SCHEMA.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.config import Config
from tap_service.felis import FelisError, load_felis
from tap_service.storage.embedded import EmbeddedDatabase


class SchemaFileError(Exception):
    """A configured Felis file cannot be read or published."""


def publish_schema_files(config: Config, paths: Sequence[Path] | None = None) -> list[str]:
    """Publish ``paths`` (default: ``config.schema_files``); returns the schema names."""
    files = list(paths if paths is not None else config.schema_files)
    if not files:
        return []
    schemas = []
    for path in files:
        try:
            schemas.append(load_felis(path))
        except (FelisError, OSError) as exc:
            raise SchemaFileError(f"{path}: {exc}") from exc
    with EmbeddedDatabase(config.data_dir, setup_statements=setup_statements()) as db:
        for schema in schemas:
            db.publish(schema)
    return [schema.name for schema in schemas]
