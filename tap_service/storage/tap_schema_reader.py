"""Reading TAP_SCHEMA back from whichever database holds it, into one model.

TAP_SCHEMA is read from the database (not from the Felis files) so that what /tables says,
what the checker accepts and what ADQL on TAP_SCHEMA returns can never disagree.  The reader
only needs ``Backend.stream``, so the embedded catalog and a MySQL TAP_SCHEMA database beside
Qserv are read by the same code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tap_service.adql.catalog import ColumnInfo, TableInfo, UserFunction
from tap_service.adql.names import bare_name
from tap_service.storage.backend import Backend

_SCHEMAS_SQL = 'SELECT schema_name, description, utype, schema_index FROM "TAP_SCHEMA"."schemas"'
_TABLES_SQL = (
    "SELECT schema_name, table_name, table_type, description, utype, table_index "
    'FROM "TAP_SCHEMA"."tables"'
)
_COLUMNS_SQL = (
    "SELECT table_name, column_name, datatype, arraysize, xtype, description, utype, unit, "
    'ucd, indexed, principal, std, column_index FROM "TAP_SCHEMA"."columns"'
)
_KEYS_SQL = 'SELECT key_id, from_table, target_table, description, utype FROM "TAP_SCHEMA"."keys"'
_KEY_COLUMNS_SQL = 'SELECT key_id, from_column, target_column FROM "TAP_SCHEMA"."key_columns"'


@dataclass(frozen=True, kw_only=True)
class SchemaEntry:
    name: str
    description: str | None
    utype: str | None
    tables: tuple[TableInfo, ...]


@dataclass(frozen=True, kw_only=True)
class ForeignKey:
    key_id: str
    from_table: str
    target_table: str
    description: str | None
    utype: str | None
    columns: tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class TapSchemaModel:
    """A snapshot of TAP_SCHEMA; also the checker's ``Catalog``."""

    schemas: tuple[SchemaEntry, ...]
    keys: tuple[ForeignKey, ...]
    user_functions: tuple[UserFunction, ...] = ()

    def tables(self) -> Iterable[TableInfo]:
        for schema in self.schemas:
            yield from schema.tables

    def functions(self) -> Iterable[UserFunction]:
        return self.user_functions

    def find_table(self, qualified_name: str) -> TableInfo | None:
        """The table whose TAP_SCHEMA ``table_name`` is ``qualified_name`` (case-insensitive)."""
        lowered = qualified_name.lower()
        for table in self.tables():
            if table.qualified_name.lower() == lowered:
                return table
        return None

    def keys_from(self, table: TableInfo) -> list[ForeignKey]:
        name = table.qualified_name
        return [key for key in self.keys if key.from_table == name]


def _rows(backend: Backend, sql: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for batch in backend.stream(sql):
        rows.extend(batch.to_pylist())
    return rows


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text != "" else None


def _flag(value: object) -> bool:
    return bool(value) and value not in (0, "0", "false", "F")


def _index(value: object) -> float:
    return float(value) if isinstance(value, int | float) else float("inf")


def load_tap_schema(
    backend: Backend, user_functions: Sequence[UserFunction] = ()
) -> TapSchemaModel:
    """Read the five TAP_SCHEMA tables into a model, ordered by their *_index columns."""
    columns_by_table: dict[str, list[tuple[float, str, ColumnInfo]]] = defaultdict(list)
    for row in _rows(backend, _COLUMNS_SQL):
        info = ColumnInfo(
            # TAP_SCHEMA holds reserved-word names delimited ("size"); resolution wants the name.
            name=bare_name(str(row["column_name"])),
            datatype=_text(row["datatype"]),
            arraysize=_text(row["arraysize"]),
            xtype=_text(row["xtype"]),
            unit=_text(row["unit"]),
            ucd=_text(row["ucd"]),
            utype=_text(row["utype"]),
            description=_text(row["description"]),
            principal=_flag(row["principal"]),
            indexed=_flag(row["indexed"]),
            std=_flag(row["std"]),
        )
        columns_by_table[str(row["table_name"])].append(
            (_index(row["column_index"]), info.name, info)
        )

    tables_by_schema: dict[str, list[tuple[float, str, TableInfo]]] = defaultdict(list)
    for row in _rows(backend, _TABLES_SQL):
        qualified = str(row["table_name"])
        schema_name = str(row["schema_name"])
        prefix = schema_name + "."
        bare = qualified[len(prefix) :] if qualified.startswith(prefix) else qualified
        columns = tuple(c for _, _, c in sorted(columns_by_table.get(qualified, []), key=_order))
        table = TableInfo(
            schema=schema_name,
            name=bare,
            columns=columns,
            description=_text(row["description"]),
            utype=_text(row["utype"]),
            table_type=_text(row["table_type"]) or "table",
        )
        tables_by_schema[schema_name].append((_index(row["table_index"]), bare, table))

    schema_rows = sorted(
        _rows(backend, _SCHEMAS_SQL),
        key=lambda r: (_index(r["schema_index"]), str(r["schema_name"])),
    )
    schemas = tuple(
        SchemaEntry(
            name=str(row["schema_name"]),
            description=_text(row["description"]),
            utype=_text(row["utype"]),
            tables=tuple(
                t
                for _, _, t in sorted(tables_by_schema.get(str(row["schema_name"]), []), key=_order)
            ),
        )
        for row in schema_rows
    )

    key_columns: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in _rows(backend, _KEY_COLUMNS_SQL):
        key_columns[str(row["key_id"])].append((str(row["from_column"]), str(row["target_column"])))
    keys = tuple(
        ForeignKey(
            key_id=str(row["key_id"]),
            from_table=str(row["from_table"]),
            target_table=str(row["target_table"]),
            description=_text(row["description"]),
            utype=_text(row["utype"]),
            columns=tuple(key_columns.get(str(row["key_id"]), [])),
        )
        for row in _rows(backend, _KEYS_SQL)
    )
    return TapSchemaModel(schemas=schemas, keys=keys, user_functions=tuple(user_functions))


def _order(item: tuple[float, str, object]) -> tuple[float, str]:
    return item[0], item[1]
