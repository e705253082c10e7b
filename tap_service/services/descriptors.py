"""Which DataLink service descriptors a query result carries, and the FIELD IDs they reference.

The templates directory comes from configuration (``TAP_DATALINK__TEMPLATES_DIR``) and is read
once per process; every ``QueryService`` (sync handler, in-process runner, Celery worker) asks
here, so sync and async results carry the same descriptors.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from tap_service.adql.checked import OutputColumn
from tap_service.config import Config
from tap_service.datalink import DatalinkTemplates, column_key, load_templates

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _load(directory: str) -> DatalinkTemplates:
    templates = load_templates(Path(directory))
    log.info(
        "DataLink templates from %s: %s",
        directory,
        ", ".join(d.name for d in templates.descriptors) or "none",
    )
    return templates


def datalink_templates(config: Config) -> DatalinkTemplates | None:
    """The configured templates (None when no directory is configured)."""
    directory = config.datalink.templates_dir
    if directory is None:
        return None
    return _load(str(directory.resolve()))


def datalink_base_url(config: Config) -> str:
    """What replaces ``$baseUrl$``: the service root as clients see it."""
    if config.datalink.base_url:
        return config.datalink.base_url.rstrip("/")
    if config.public_url:
        url = config.public_url.rstrip("/")
        prefix = config.path_prefix.rstrip("/")
        if prefix and url.endswith(prefix):
            url = url[: -len(prefix)]
        return url
    return f"http://{config.host}:{config.port}"


def service_descriptors(
    config: Config, columns: tuple[OutputColumn, ...]
) -> tuple[dict[int, str], bytes]:
    """FIELD IDs by column position and the filled descriptor RESOURCEs for one result.

    A column gets an ID only when it comes unchanged from a catalog column some descriptor
    needs, and only the first such column of a result (IDs are unique in a document).
    """
    templates = datalink_templates(config)
    if templates is None:
        return {}, b""
    needed = templates.needed_keys
    ids: dict[int, str] = {}
    by_key: dict[str, str] = {}
    for index, column in enumerate(columns):
        if column.source is None or column.source_table is None:
            continue
        table = column.source_table
        key = column_key(table.schema, table.name, column.source.name)
        if key in needed and key not in by_key:
            ids[index] = key
            by_key[key] = key
    if not by_key:
        return {}, b""
    meta = templates.resource_meta(datalink_base_url(config), by_key)
    if not meta:
        return {}, b""
    used = {k for d in templates.applicable(by_key) for k in d.columns}
    return {i: k for i, k in ids.items() if k in used}, meta
