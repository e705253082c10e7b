"""ADQL 2.1: parse text into a typed tree, check it against a catalog, render backend SQL.

A pure library: it imports nothing from the web, database or configuration layers.

    query = parse(text)                      # AdqlSyntaxError
    checked = check(query, catalog)          # AdqlNameError, AdqlTypeError
    sql = to_sql(checked, "qserv")           # AdqlUnsupportedError
"""

from tap_service.adql.catalog import (
    Catalog,
    ColumnInfo,
    OverlayCatalog,
    SimpleCatalog,
    TableInfo,
    UserFunction,
)
from tap_service.adql.checked import CheckedQuery, OutputColumn
from tap_service.adql.checker import check
from tap_service.adql.dialects import to_sql
from tap_service.adql.errors import (
    AdqlError,
    AdqlNameError,
    AdqlSyntaxError,
    AdqlTypeError,
    AdqlUnsupportedError,
)
from tap_service.adql.parser import parse

__all__ = [
    "AdqlError",
    "AdqlNameError",
    "AdqlSyntaxError",
    "AdqlTypeError",
    "AdqlUnsupportedError",
    "Catalog",
    "CheckedQuery",
    "ColumnInfo",
    "OutputColumn",
    "OverlayCatalog",
    "SimpleCatalog",
    "TableInfo",
    "UserFunction",
    "check",
    "parse",
    "to_sql",
]
