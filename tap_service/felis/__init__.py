"""Felis, Rubin's schema language: YAML → typed model → ``TableInfo`` and TAP_SCHEMA rows.

A pure library: it reads documents and computes rows; storing them is ``tap_service.storage``'s
business.
"""

from tap_service.felis.model import (
    FELIS_DATATYPES,
    FelisColumn,
    FelisError,
    FelisForeignKey,
    FelisSchema,
    FelisTable,
    load_felis,
    parse_felis,
)
from tap_service.felis.tap import (
    TAP_SCHEMA_NAME,
    ColumnRow,
    KeyColumnRow,
    KeyRow,
    SchemaRow,
    TableRow,
    TapSchemaRows,
    tap_schema_rows,
    tap_schema_schema,
)

__all__ = [
    "FELIS_DATATYPES",
    "TAP_SCHEMA_NAME",
    "ColumnRow",
    "FelisColumn",
    "FelisError",
    "FelisForeignKey",
    "FelisSchema",
    "FelisTable",
    "KeyColumnRow",
    "KeyRow",
    "SchemaRow",
    "TableRow",
    "TapSchemaRows",
    "load_felis",
    "parse_felis",
    "tap_schema_rows",
    "tap_schema_schema",
]
