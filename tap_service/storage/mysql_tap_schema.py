"""TAP_SCHEMA in a MySQL/MariaDB database beside Qserv: create it, publish Felis schemas.

The five TAP 1.1 tables live in one database (``tap_schema`` by default; the TAP name
``TAP_SCHEMA`` is mapped to it by ``storage.qserv.RoutingBackend``).  Publishing a schema
replaces every row describing it inside one InnoDB transaction, so a reader sees the old
description or the new one, never a mix; publishing the same Felis file twice changes nothing.
Values travel as bound parameters; the only identifier written into SQL is the database name,
which comes from configuration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import asdict, fields
from typing import Any

import pymysql

from tap_service.felis.model import FelisSchema
from tap_service.felis.tap import (
    ColumnRow,
    KeyColumnRow,
    KeyRow,
    SchemaRow,
    TableRow,
    TapSchemaRows,
    tap_schema_rows,
    tap_schema_schema,
)
from tap_service.storage.qserv import ConnectionParams, quote_ident

_DDL: tuple[tuple[str, str], ...] = (
    (
        "schemas",
        """(
        schema_name VARCHAR(255) NOT NULL PRIMARY KEY,
        utype VARCHAR(512),
        description TEXT,
        schema_index INT
    )""",
    ),
    (
        "tables",
        """(
        schema_name VARCHAR(255) NOT NULL,
        table_name VARCHAR(255) NOT NULL PRIMARY KEY,
        table_type VARCHAR(16) NOT NULL,
        utype VARCHAR(512),
        description TEXT,
        table_index INT
    )""",
    ),
    (
        "columns",
        """(
        table_name VARCHAR(255) NOT NULL,
        column_name VARCHAR(255) NOT NULL,
        datatype VARCHAR(64) NOT NULL,
        arraysize VARCHAR(255),
        xtype VARCHAR(255),
        `size` INT,
        description TEXT,
        utype VARCHAR(512),
        unit VARCHAR(255),
        ucd VARCHAR(1024),
        indexed INT NOT NULL,
        principal INT NOT NULL,
        std INT NOT NULL,
        column_index INT,
        PRIMARY KEY (table_name, column_name)
    )""",
    ),
    (
        "keys",
        """(
        key_id VARCHAR(255) NOT NULL PRIMARY KEY,
        from_table VARCHAR(255) NOT NULL,
        target_table VARCHAR(255) NOT NULL,
        utype VARCHAR(512),
        description TEXT
    )""",
    ),
    (
        "key_columns",
        """(
        key_id VARCHAR(255) NOT NULL,
        from_column VARCHAR(255) NOT NULL,
        target_column VARCHAR(255) NOT NULL
    )""",
    ),
)
_ROW_TYPES: dict[str, type[Any]] = {
    "schemas": SchemaRow,
    "tables": TableRow,
    "columns": ColumnRow,
    "keys": KeyRow,
    "key_columns": KeyColumnRow,
}
# Binary collation: TAP names are case-sensitive ("Object" and "object" are two columns).
_TABLE_OPTIONS = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


class MySQLTapSchema:
    """The TAP_SCHEMA database named in ``url`` (``mysql+pymysql://user@host:port/db``)."""

    def __init__(self, url: str) -> None:
        self.params = ConnectionParams.from_url(url)
        if not self.params.database:
            raise ValueError(f"{url}: the TAP_SCHEMA URL must name a database")
        self.database: str = self.params.database

    def _connect(self, *, with_database: bool = True) -> pymysql.Connection[Any]:
        params = (
            self.params
            if with_database
            else ConnectionParams(
                self.params.host, self.params.port, self.params.user, self.params.password, None
            )
        )
        return params.connect()

    def _t(self, table: str) -> str:
        return f"{quote_ident(self.database)}.{quote_ident(table)}"

    def create(self) -> None:
        """Create the database and the five tables if absent; describe TAP_SCHEMA itself."""
        conn = self._connect(with_database=False)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    f"CREATE DATABASE IF NOT EXISTS {quote_ident(self.database)} "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
                for table, body in _DDL:
                    cur.execute(
                        f"CREATE TABLE IF NOT EXISTS {self._t(table)} {body}{_TABLE_OPTIONS}"
                    )
        finally:
            conn.close()
        self.publish_rows(tap_schema_rows(tap_schema_schema()))

    def drop(self) -> None:
        conn = self._connect(with_database=False)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(self.database)}")
        finally:
            conn.close()

    def publish(self, schema: FelisSchema, *, schema_index: int | None = None) -> None:
        """Make TAP_SCHEMA describe ``schema`` exactly (replaces an earlier description)."""
        self.publish_rows(tap_schema_rows(schema, schema_index=schema_index))

    def publish_rows(self, rows: TapSchemaRows) -> None:
        conn = self._connect()
        conn.autocommit(False)
        try:
            with conn.cursor() as cur:
                cur.execute("START TRANSACTION")
                self._replace(cur, rows)
            conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise
        finally:
            conn.close()

    def _replace(self, cur: Any, rows: TapSchemaRows) -> None:
        name = rows.schema.schema_name
        tables_of = f"SELECT table_name FROM {self._t('tables')} WHERE schema_name = %s"
        # Lock the schema's rows (and the key ids) for the transaction.
        cur.execute(f"SELECT key_id FROM {self._t('keys')} FOR UPDATE")
        cur.execute(
            f"DELETE FROM {self._t('key_columns')} WHERE key_id IN (SELECT key_id FROM "
            f"{self._t('keys')} WHERE from_table IN ({tables_of}) "
            f"OR target_table IN ({tables_of}))",
            (name, name),
        )
        cur.execute(
            f"DELETE FROM {self._t('keys')} WHERE from_table IN ({tables_of}) "
            f"OR target_table IN ({tables_of})",
            (name, name),
        )
        cur.execute(f"DELETE FROM {self._t('columns')} WHERE table_name IN ({tables_of})", (name,))
        cur.execute(f"DELETE FROM {self._t('tables')} WHERE schema_name = %s", (name,))
        cur.execute(f"DELETE FROM {self._t('schemas')} WHERE schema_name = %s", (name,))
        cur.execute(f"SELECT key_id FROM {self._t('keys')}")
        taken = {str(r[0]) for r in cur.fetchall()}
        renamed = {
            k.key_id: (f"{name}.{k.key_id}" if k.key_id in taken else k.key_id) for k in rows.keys
        }
        keys = [KeyRow(**{**asdict(k), "key_id": renamed[k.key_id]}) for k in rows.keys]
        key_columns = [
            KeyColumnRow(**{**asdict(k), "key_id": renamed[k.key_id]}) for k in rows.key_columns
        ]
        self._insert(cur, "schemas", [rows.schema])
        self._insert(cur, "tables", rows.tables)
        self._insert(cur, "columns", rows.columns)
        self._insert(cur, "keys", keys)
        self._insert(cur, "key_columns", key_columns)

    def _insert(self, cur: Any, table: str, rows: Iterable[Any]) -> None:
        values = [tuple(getattr(r, f.name) for f in fields(_ROW_TYPES[table])) for r in rows]
        if not values:
            return
        names = [f.name for f in fields(_ROW_TYPES[table])]
        column_list = ", ".join(quote_ident(n) for n in names)
        marks = ", ".join(["%s"] * len(names))
        cur.executemany(f"INSERT INTO {self._t(table)} ({column_list}) VALUES ({marks})", values)

    def schema_names(self) -> list[str]:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT schema_name FROM {self._t('schemas')} ORDER BY schema_name")
                return [str(r[0]) for r in cur.fetchall()]
        finally:
            conn.close()
