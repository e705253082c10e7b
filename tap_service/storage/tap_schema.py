"""TAP_SCHEMA 1.1 as five ordinary DuckDB tables, written from Felis and read back as TableInfo.

TAP_SCHEMA lives in the catalog database itself (schema ``"TAP_SCHEMA"``), so ADQL queries on it
go through the same translation and execution as any science table, and the catalog the checker
uses is read from the very rows a client can query.  The functions here take an open DuckDB
cursor: the caller (``EmbeddedDatabase``) owns the transaction, so a publish or an ingest changes
data and metadata atomically.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

import pyarrow as pa

from tap_service.felis.tap import (
    TAP_SCHEMA_NAME,
    ColumnRow,
    KeyColumnRow,
    KeyRow,
    SchemaRow,
    TableRow,
    TapSchemaRows,
)

_TS = f'"{TAP_SCHEMA_NAME}"'

# Types follow TAP 1.1 section 4 (sizes as in the IVOA reference DDL); "size" is quoted
# everywhere because it is reserved in ADQL and awkward in SQL.
TAP_SCHEMA_DDL: tuple[str, ...] = (
    f"CREATE SCHEMA IF NOT EXISTS {_TS}",
    f"""CREATE TABLE IF NOT EXISTS {_TS}."schemas" (
        schema_name VARCHAR NOT NULL PRIMARY KEY,
        utype VARCHAR,
        description VARCHAR,
        schema_index INTEGER
    )""",
    f"""CREATE TABLE IF NOT EXISTS {_TS}."tables" (
        schema_name VARCHAR NOT NULL,
        table_name VARCHAR NOT NULL PRIMARY KEY,
        table_type VARCHAR NOT NULL,
        utype VARCHAR,
        description VARCHAR,
        table_index INTEGER
    )""",
    f"""CREATE TABLE IF NOT EXISTS {_TS}."columns" (
        table_name VARCHAR NOT NULL,
        column_name VARCHAR NOT NULL,
        datatype VARCHAR NOT NULL,
        arraysize VARCHAR,
        xtype VARCHAR,
        "size" INTEGER,
        description VARCHAR,
        utype VARCHAR,
        unit VARCHAR,
        ucd VARCHAR,
        indexed INTEGER NOT NULL,
        principal INTEGER NOT NULL,
        std INTEGER NOT NULL,
        column_index INTEGER,
        PRIMARY KEY (table_name, column_name)
    )""",
    f"""CREATE TABLE IF NOT EXISTS {_TS}."keys" (
        key_id VARCHAR NOT NULL PRIMARY KEY,
        from_table VARCHAR NOT NULL,
        target_table VARCHAR NOT NULL,
        utype VARCHAR,
        description VARCHAR
    )""",
    f"""CREATE TABLE IF NOT EXISTS {_TS}."key_columns" (
        key_id VARCHAR NOT NULL,
        from_column VARCHAR NOT NULL,
        target_column VARCHAR NOT NULL
    )""",
)

_ROW_TYPES: dict[str, type[Any]] = {
    "schemas": SchemaRow,
    "tables": TableRow,
    "columns": ColumnRow,
    "keys": KeyRow,
    "key_columns": KeyColumnRow,
}
_INT_FIELDS = frozenset(
    {"schema_index", "table_index", "size", "indexed", "principal", "std", "column_index"}
)


def create_tap_schema(cur: Any) -> None:
    """Create the five tables if absent (idempotent)."""
    for statement in TAP_SCHEMA_DDL:
        cur.execute(statement)


def tap_schema_exists(cur: Any) -> bool:
    found = cur.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = ? AND table_name = 'columns'",
        [TAP_SCHEMA_NAME],
    ).fetchall()
    return bool(found and found[0][0])


def delete_schema_rows(cur: Any, schema_name: str) -> None:
    """Remove every TAP_SCHEMA row describing ``schema_name``, keys pointing into it included."""
    tables_of = f'SELECT table_name FROM {_TS}."tables" WHERE schema_name = $schema'
    keys_of = (
        f'SELECT key_id FROM {_TS}."keys" WHERE from_table IN ({tables_of}) '
        f"OR target_table IN ({tables_of})"
    )
    params = {"schema": schema_name}
    cur.execute(f'DELETE FROM {_TS}."key_columns" WHERE key_id IN ({keys_of})', params)
    cur.execute(f'DELETE FROM {_TS}."keys" WHERE key_id IN ({keys_of})', params)
    cur.execute(f'DELETE FROM {_TS}."columns" WHERE table_name IN ({tables_of})', params)
    cur.execute(f'DELETE FROM {_TS}."tables" WHERE schema_name = $schema', params)
    cur.execute(f'DELETE FROM {_TS}."schemas" WHERE schema_name = $schema', params)


def replace_schema_rows(cur: Any, rows: TapSchemaRows) -> None:
    """Make TAP_SCHEMA describe ``rows.schema`` exactly as given (re-publishing replaces).

    A key_id already used by another schema gets the schema name as prefix: key_id is the
    primary key of TAP_SCHEMA.keys, while Felis constraint names are only unique per file.
    """
    delete_schema_rows(cur, rows.schema.schema_name)
    taken = {r[0] for r in cur.execute(f'SELECT key_id FROM {_TS}."keys"').fetchall()}
    renamed = {
        k.key_id: (f"{rows.schema.schema_name}.{k.key_id}" if k.key_id in taken else k.key_id)
        for k in rows.keys
    }
    keys = [KeyRow(**{**asdict(k), "key_id": renamed[k.key_id]}) for k in rows.keys]
    key_columns = [
        KeyColumnRow(**{**asdict(k), "key_id": renamed[k.key_id]}) for k in rows.key_columns
    ]
    _insert(cur, "schemas", [rows.schema])
    _insert(cur, "tables", list(rows.tables))
    _insert(cur, "columns", list(rows.columns))
    _insert(cur, "keys", keys)
    _insert(cur, "key_columns", key_columns)


def _insert(cur: Any, table: str, rows: list[Any]) -> None:
    """One INSERT … SELECT from an Arrow table: 1,500 column rows go in one statement."""
    if not rows:
        return
    names = [f.name for f in fields(_ROW_TYPES[table])]
    arrays = {
        name: pa.array(
            [getattr(r, name) for r in rows],
            type=pa.int32() if name in _INT_FIELDS else pa.string(),
        )
        for name in names
    }
    source = pa.table(arrays)
    view = f"__tap_schema_{table}"
    cur.register(view, source)
    try:
        column_list = ", ".join(f'"{n}"' for n in names)
        cur.execute(
            f'INSERT INTO {_TS}."{table}" ({column_list}) SELECT {column_list} FROM "{view}"'
        )
    finally:
        cur.unregister(view)
