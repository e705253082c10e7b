"""The checker's result: a resolved tree plus the metadata of every output column."""

from __future__ import annotations

from dataclasses import dataclass

from tap_service.adql.ast import Query
from tap_service.adql.catalog import ColumnInfo, TableInfo


@dataclass(frozen=True, kw_only=True)
class OutputColumn:
    """One column of the result, with everything a VOTable FIELD needs.

    ``name`` is unique within the result (the checker suffixes duplicates); ``source`` is the
    catalog column it comes from unchanged, when it does (DataLink needs it).
    """

    name: str
    datatype: str | None
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    source: ColumnInfo | None = None
    source_table: TableInfo | None = None


@dataclass(frozen=True, kw_only=True)
class CheckedQuery:
    """A query resolved against a catalog.

    ``query`` is the tree with stars expanded, every ``ColumnRef.binding``,
    ``TableRef.binding`` and ``Expr.type_`` filled; ``columns`` describe the select list of the
    outermost query in order; ``tables`` are the catalog tables referenced anywhere.
    """

    query: Query
    columns: tuple[OutputColumn, ...]
    tables: tuple[TableInfo, ...]
    text: str | None = None
