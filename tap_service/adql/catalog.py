"""What the checker needs to know about the tables it may query.

The service implements ``Catalog`` from TAP_SCHEMA; tests build a ``SimpleCatalog`` from Felis
YAML or by hand.  Names here are TAP names (as a user writes them); ``physical_*`` fields carry
the backend's names when they differ (Rubin maps ``dp02_dc2_catalogs.Object`` to other physical
tables in Qserv), so the dialects never have to guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tap_service.adql.types import ValueType


@dataclass(frozen=True, kw_only=True)
class ColumnInfo:
    """One column as TAP_SCHEMA.columns describes it."""

    name: str
    datatype: str | None
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    principal: bool = False
    indexed: bool = False
    std: bool = False
    physical_name: str | None = None

    @property
    def value_type(self) -> ValueType:
        return ValueType(self.datatype, self.arraysize, self.xtype)

    @property
    def sql_name(self) -> str:
        return self.physical_name or self.name


@dataclass(frozen=True, kw_only=True)
class TableInfo:
    """One table as TAP_SCHEMA.tables describes it, with its columns in column_index order."""

    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    description: str | None = None
    utype: str | None = None
    table_type: str = "table"
    physical_schema: str | None = None
    physical_name: str | None = None
    is_upload: bool = False

    @property
    def qualified_name(self) -> str:
        """The TAP_SCHEMA ``table_name``: ``schema.table``."""
        return f"{self.schema}.{self.name}"

    @property
    def sql_schema(self) -> str:
        return self.physical_schema or self.schema

    @property
    def sql_name(self) -> str:
        return self.physical_name or self.name

    def column(self, name: str, *, exact: bool = False) -> ColumnInfo | None:
        """The column called ``name``: exact match when ``exact`` (delimited identifier)."""
        for col in self.columns:
            if col.name == name:
                return col
        if not exact:
            lowered = name.lower()
            for col in self.columns:
                if col.name.lower() == lowered:
                    return col
        return None


@dataclass(frozen=True, kw_only=True)
class UserFunction:
    """A user-defined function declared by configuration.

    ``sql`` maps dialect name to the backend function name (``{"qserv": "scisql_fluxToAbMag"}``);
    a dialect without an entry refuses the function.  ``signature`` is the TAPRegExt form, e.g.
    ``ivo_healpix_index(order INTEGER, ra DOUBLE, dec DOUBLE) -> BIGINT``.
    """

    name: str
    signature: str
    returns: ValueType
    arg_count: int | None = None
    description: str | None = None
    sql: Mapping[str, str] = field(default_factory=dict)


class Catalog(Protocol):
    """The tables and functions a query may use."""

    def tables(self) -> Iterable[TableInfo]:
        """Every table, for resolution and for "did you mean" suggestions."""
        ...

    def functions(self) -> Iterable[UserFunction]:
        """User-defined functions declared by configuration."""
        ...


@dataclass
class SimpleCatalog:
    """A ``Catalog`` held in memory."""

    table_list: Sequence[TableInfo] = ()
    function_list: Sequence[UserFunction] = ()

    def tables(self) -> Iterable[TableInfo]:
        return self.table_list

    def functions(self) -> Iterable[UserFunction]:
        return self.function_list


@dataclass
class OverlayCatalog:
    """``base`` plus tables that exist for one query only (TAP_UPLOAD), listed first."""

    base: Catalog
    extra: Sequence[TableInfo]

    def tables(self) -> Iterable[TableInfo]:
        yield from self.extra
        yield from self.base.tables()

    def functions(self) -> Iterable[UserFunction]:
        return self.base.functions()
