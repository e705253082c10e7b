"""The Qserv stand-in: a MariaDB database that answers the Qserv dialect like Qserv would.

``build_standin`` puts three things on a MySQL/MariaDB server:

* the scisql stand-in functions (``storage/sql/scisql_mariadb.sql``) in the catalog database,
  where the Qserv dialect's unqualified ``scisql_*`` calls resolve;
* the demo catalog's tables, created from the Felis YAML and filled from the same
  deterministic generator as the embedded demo (``services.demo_catalog``), so both backends
  hold the same rows;
* the TAP_SCHEMA database describing TAP_SCHEMA and the demo schema.

The catalog database may have another name than the Felis schema (tests use per-process
names); ``TAP_QSERV__DATABASES`` then maps the TAP name to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pymysql

from tap_service.felis.model import FelisColumn, FelisSchema, FelisTable, load_felis
from tap_service.services.demo_catalog import (
    DEMO_SCHEMA_PATH,
    DemoTable,
    generate_ccd_visits,
    generate_objects,
    iter_forced_sources,
)
from tap_service.storage.mysql_tap_schema import MySQLTapSchema
from tap_service.storage.qserv import ConnectionParams, quote_ident

SCISQL_SQL = Path(__file__).resolve().parents[1] / "storage" / "sql" / "scisql_mariadb.sql"
CPOLY_VERTICES = 20
"""Vertex pairs the stand-in's scisql_s2PtInCPoly takes (NULL-padded; see the SQL file)."""

_MYSQL_TYPES = {
    "boolean": "BOOLEAN",
    "byte": "TINYINT",
    "short": "SMALLINT",
    "int": "INT",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "text": "TEXT",
    "binary": "BLOB",
    "timestamp": "DATETIME(6)",
}
_INSERT_ROWS = 5_000


@dataclass(frozen=True)
class StandinCounts:
    objects: int
    forced_sources: int
    ccd_visits: int
    seconds: float


def scisql_statements(path: Path = SCISQL_SQL) -> list[str]:
    """The stand-in SQL file split into statements (its DELIMITER lines are client syntax)."""
    text = "\n".join(
        line for line in path.read_text().splitlines() if not line.startswith("DELIMITER")
    )
    statements = []
    for chunk in text.split("$$"):
        body = "\n".join(ln for ln in chunk.splitlines() if not ln.strip().startswith("--"))
        if body.strip():
            statements.append(chunk.strip())
    return statements


def mysql_type(column: FelisColumn) -> str:
    if column.datatype in ("char", "string", "unicode"):
        length = column.length or 255
        return f"VARCHAR({length})" if length <= 4096 else "TEXT"
    return _MYSQL_TYPES[column.datatype]


def create_table_sql(database: str, table: FelisTable) -> str:
    columns = ", ".join(
        f"{quote_ident(c.name)} {mysql_type(c)}{'' if c.nullable else ' NOT NULL'}"
        for c in table.columns
    )
    key = ""
    if table.primary_key:
        by_ref = {ref: c.name for c in table.columns for ref in (c.id, c.name)}
        names = [by_ref.get(ref, ref.rsplit(".", 1)[-1]) for ref in table.primary_key]
        key = ", PRIMARY KEY (" + ", ".join(quote_ident(n) for n in names) + ")"
    # Binary collation: ADQL string comparison is case-sensitive, like DuckDB's.
    return (
        f"CREATE TABLE {quote_ident(database)}.{quote_ident(table.name)} ({columns}{key}) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )


def _rows(table: pa.Table, names: list[str]) -> Iterator[list[tuple[Any, ...]]]:
    for batch in table.select(names).to_batches(_INSERT_ROWS):
        columns = [c.to_pylist() for c in batch.columns]
        yield list(zip(*columns, strict=True))


def _load(cur: Any, database: str, schema: FelisSchema, data: DemoTable) -> int:
    felis_table = schema.table(data.name)
    names = [c.name for c in felis_table.columns]
    missing = set(names) ^ set(data.columns)
    if missing:
        raise ValueError(f"{data.name}: generated columns differ from Felis: {sorted(missing)}")
    column_list = ", ".join(quote_ident(n) for n in names)
    marks = ", ".join(["%s"] * len(names))
    sql = (
        f"INSERT INTO {quote_ident(database)}.{quote_ident(data.name)} ({column_list}) "
        f"VALUES ({marks})"
    )
    rows = 0
    for chunk in _rows(data.to_arrow(), names):
        cur.executemany(sql, chunk)
        rows += len(chunk)
    return rows


def build_standin(
    catalog_url: str,
    tap_schema_url: str,
    *,
    n_objects: int = 100_000,
    n_forced_per_object: int = 20,
    seed: int = 42,
    schema: FelisSchema | None = None,
) -> StandinCounts:
    """(Re)create the stand-in: functions, demo tables and rows, TAP_SCHEMA (see module doc)."""
    started = time.perf_counter()
    felis = schema or load_felis(DEMO_SCHEMA_PATH)
    params = ConnectionParams.from_url(catalog_url)
    if not params.database:
        raise ValueError(f"{catalog_url}: the catalog URL must name a database")
    database = params.database
    server = ConnectionParams(params.host, params.port, params.user, params.password, None)
    conn = server.connect()
    objects = generate_objects(n_objects, seed)
    ccd = generate_ccd_visits(seed)
    forced = 0
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(database)}")
            cur.execute(
                f"CREATE DATABASE {quote_ident(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
            cur.execute(f"USE {quote_ident(database)}")
            for statement in scisql_statements():
                cur.execute(statement)
            for table in felis.tables:
                cur.execute(create_table_sql(database, table))
            n_obj = _load(cur, database, felis, objects.table)
            n_ccd = _load(cur, database, felis, ccd)
            for block in iter_forced_sources(
                objects, ccd, n_forced_per_object=n_forced_per_object, seed=seed
            ):
                forced += _load(cur, database, felis, block)
    except pymysql.err.Error:
        raise
    finally:
        conn.close()
    tap_schema = MySQLTapSchema(tap_schema_url)
    tap_schema.create()
    tap_schema.publish(felis)
    return StandinCounts(
        objects=n_obj,
        forced_sources=forced,
        ccd_visits=n_ccd,
        seconds=time.perf_counter() - started,
    )
