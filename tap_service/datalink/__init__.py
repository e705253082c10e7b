"""DataLink: Rubin-format service descriptor templates and DataLink 1.1 ``{links}`` documents.

A pure library: it reads template files and builds XML text; it knows nothing of HTTP, the
database or configuration.
"""

from tap_service.datalink.links import LinkRow, links_document
from tap_service.datalink.templates import (
    DatalinkConfigError,
    DatalinkTemplates,
    Descriptor,
    column_key,
    load_templates,
)

__all__ = [
    "DatalinkConfigError",
    "DatalinkTemplates",
    "Descriptor",
    "LinkRow",
    "column_key",
    "links_document",
    "load_templates",
]
