"""The embedded catalog: one DuckDB file holding the science schemas and TAP_SCHEMA.

Layout: ``<data_dir>/catalog.duckdb``; one DuckDB schema per TAP schema (``"dp02_dc2_catalogs"``)
with table names quoted in their Felis case, plus ``"TAP_SCHEMA"`` with the five TAP 1.1 tables.

Concurrency: DuckDB connections are not thread-safe, but cursors (``con.cursor()``) are
independent connections to the same database.  The process holds one connection; every query
runs on a cursor of its own, taken from a small pool of idle cursors on which the setup
statements (the ADQL geometry macros) have already run, and returned only once its result is
closed.  A DuckDB cursor with an open streaming result refuses any other query, so sharing one
per thread would break as soon as a response generator is iterated from another thread.

Serving opens the file read-only (DuckDB then lets several processes share it); the demo
builder and ingest open it read-write.  Setup macros are created ``TEMP`` (per cursor), which
works in both modes and never writes functions into the catalog file.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import duckdb
import pyarrow as pa

from tap_service.adql.catalog import TableInfo
from tap_service.exceptions import (
    BackendError,
    BackendUnavailableError,
    QueryDataError,
    QueryTimeoutError,
)
from tap_service.felis.model import FelisColumn, FelisSchema, FelisTable
from tap_service.felis.tap import tap_schema_rows, tap_schema_schema
from tap_service.storage import tap_schema
from tap_service.storage.deadlines import Deadlines
from tap_service.storage.streams import CancellableStream
from tap_service.storage.tap_schema_reader import load_tap_schema

log = logging.getLogger(__name__)

CATALOG_FILE = "catalog.duckdb"

DUCKDB_TYPES: Mapping[str, str] = {
    "boolean": "BOOLEAN",
    "byte": "TINYINT",
    "short": "SMALLINT",
    "int": "INTEGER",
    "long": "BIGINT",
    "float": "REAL",
    "double": "DOUBLE",
    "char": "VARCHAR",
    "string": "VARCHAR",
    "unicode": "VARCHAR",
    "text": "VARCHAR",
    "binary": "BLOB",
    "timestamp": "TIMESTAMP",
}
"""Felis datatype → DuckDB column type (Felis' "generic SQL" column of its mapping table)."""

_MACRO = re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?MACRO\b", re.I)
_QUERY_TYPES = frozenset({"SELECT"})


def quote(name: str) -> str:
    """A DuckDB delimited identifier: keeps the Felis case of ``Object`` and ``coord_ra``."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote(schema)}.{quote(table)}"


def duckdb_type(column: FelisColumn) -> str:
    return DUCKDB_TYPES[column.datatype]


def create_table_sql(schema: str, table: FelisTable, *, name: str | None = None) -> str:
    """DDL for a Felis table.  No PRIMARY KEY/FOREIGN KEY: DuckDB would maintain ART indexes
    and check references on every bulk load, for a read-only catalog whose keys TAP_SCHEMA
    already documents; NOT NULL is kept because it is cheap and catches bad ingests."""
    columns = ", ".join(
        f"{quote(c.name)} {duckdb_type(c)}{'' if c.nullable else ' NOT NULL'}"
        for c in table.columns
    )
    return f"CREATE TABLE {qualified(schema, name or table.name)} ({columns})"


def _temp_macro(statement: str) -> str:
    """``CREATE [OR REPLACE] MACRO`` → ``CREATE [OR REPLACE] TEMP MACRO`` (see module doc)."""
    return _MACRO.sub(
        lambda m: "CREATE " + ("OR REPLACE " if m.group(1) else "") + "TEMP MACRO", statement
    )


class QueryStream(CancellableStream):
    """A running SELECT: iterate for record batches; ``interrupt()`` from any thread.

    The query starts on the first ``next()`` (or ``start()``), so a caller can hand the object
    to a watchdog before blocking on it.  Closing it early — or leaving a ``for`` loop over
    ``db.stream()`` early, then dropping it — cancels the query and frees the cursor.
    """

    def __init__(
        self, db: EmbeddedDatabase, sql: str, batch_rows: int, timeout: float | None
    ) -> None:
        super().__init__(timeout)
        self._db = db
        self._sql = sql
        self._batch_rows = batch_rows
        self._cursor: Any = None
        self._reader: pa.RecordBatchReader | None = None

    def __next__(self) -> pa.RecordBatch:
        if self._done:
            raise StopIteration
        reader = self._reader if self._reader is not None else self.start()
        with self._lock:
            if self._interrupted:
                self._release(healthy=False)
                raise self._cancelled()
            self._busy = True
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            self._release(healthy=True)
            raise
        except (duckdb.Error, OSError, pa.ArrowException) as exc:
            self._release(healthy=False)
            raise self._translate(exc) from exc
        finally:
            self._busy = False
        if self._interrupted:  # closed from another thread while we were reading
            self._release(healthy=False)
            raise self._cancelled()
        return batch

    def start(self) -> pa.RecordBatchReader:
        """Run the query up to its first batch; returns the Arrow reader."""
        if self._reader is not None:
            return self._reader
        with self._lock:
            if self._done or self._interrupted:
                self._done = True
                raise self._cancelled()
            self._cursor = self._db._take_cursor()
            self._busy = True
            if self._timeout is not None:
                self._timer = self._db.deadlines.schedule(self._timeout, self._expire)
        try:
            _check_select(self._cursor, self._sql)
            relation = self._cursor.sql(self._sql)
            if relation is None:
                raise BackendError("The statement returns no rows")
            reader = relation.to_arrow_reader(self._batch_rows)
        except BackendError:
            self._release(healthy=False)
            raise
        except (duckdb.Error, OSError, pa.ArrowException) as exc:
            self._release(healthy=False)
            raise self._translate(exc) from exc
        finally:
            self._busy = False
        self._reader = reader
        if self._interrupted:  # an interrupt may land between cursor and execution: honour it
            self._release(healthy=False)
            raise self._cancelled()
        return reader

    @property
    def schema(self) -> pa.Schema:
        return self.start().schema

    def interrupt(self) -> None:
        """Stop the query at the database's next check (milliseconds); safe from any thread."""
        with self._lock:
            self._interrupted = True
            cursor = None if self._done else self._cursor
        if cursor is not None:
            cursor.interrupt()

    def _release(self, *, healthy: bool) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            reader, self._reader = self._reader, None
            cursor, self._cursor = self._cursor, None
        if reader is not None:
            reader.close()
        if cursor is not None:
            self._db._return_cursor(cursor, reusable=healthy and not self._interrupted)
        self._db._forget(self)

    def _translate(self, exc: BaseException) -> BackendError | QueryTimeoutError | QueryDataError:
        message = str(exc)
        if (
            self._interrupted
            or isinstance(exc, duckdb.InterruptException)
            or ("INTERRUPT" in message)
        ):
            return self._cancelled()
        if isinstance(exc, duckdb.ConversionException | duckdb.OutOfRangeException):
            return QueryDataError(f"The query failed on a value: {_clean(message)}")
        return BackendError(f"The database could not run the query: {_clean(message)}")

    def __del__(self) -> None:
        if not self._done and self._cursor is not None:
            with contextlib.suppress(Exception):  # nobody to report to at collection time
                self.close()


def _check_select(cur: Any, sql: str) -> None:
    """Refuse anything but one SELECT, parsed by DuckDB itself (on the query's own cursor:
    the shared connection must not be used from several threads)."""
    try:
        statements = cur.extract_statements(sql)
    except duckdb.Error as exc:
        raise BackendError(f"The database cannot parse the query: {_clean(str(exc))}") from exc
    if len(statements) != 1:
        raise BackendError("Exactly one SQL statement is allowed")
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    if kind not in _QUERY_TYPES:
        raise BackendError(f"Only SELECT statements may be streamed, not {kind}")


def _clean(message: str) -> str:
    """DuckDB messages carry a class prefix and sometimes a LINE marker; keep the substance."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return first


class EmbeddedDatabase:
    """The DuckDB catalog: TAP_SCHEMA, science tables, streaming reads, publishing."""

    dialect = "embedded"

    def __init__(
        self,
        data_dir: str | Path,
        *,
        read_only: bool = False,
        setup_statements: Sequence[str] = (),
        config: Mapping[str, str | int | bool] | None = None,
        max_idle_cursors: int = 16,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / CATALOG_FILE
        self.read_only = read_only
        self._setup = tuple(_temp_macro(s) for s in setup_statements)
        self._max_idle = max_idle_cursors
        self._idle: list[Any] = []
        # Re-entrant: a dropped stream's __del__ (run by the garbage collector at any
        # allocation) returns its cursor through this lock, possibly on a thread holding it.
        self._pool_lock = threading.RLock()
        self.deadlines = Deadlines()
        self._write_lock = threading.RLock()
        # Weak: a stream its consumer dropped unfinished must be collectable, so that its
        # __del__ interrupts the query and frees the cursor.
        self._active: weakref.WeakSet[QueryStream] = weakref.WeakSet()
        self._closed = False
        if read_only:
            if not self.path.exists():
                raise BackendUnavailableError(f"No catalog database at {self.path}")
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        settings: dict[str, str | bool | int | float | list[str]] = dict(config or {})
        self._con = duckdb.connect(str(self.path), read_only=read_only, config=settings)
        if not read_only:
            with self.transaction() as cur:
                if not tap_schema.tap_schema_exists(cur):
                    tap_schema.create_tap_schema(cur)
                    tap_schema.replace_schema_rows(cur, tap_schema_rows(tap_schema_schema()))

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
            active = list(self._active)
        for stream in active:
            stream.interrupt()
        for cur in idle:
            cur.close()
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def ping(self) -> None:
        """Raise ``BackendUnavailableError`` unless a trivial query answers."""
        try:
            cur = self._take_cursor()
        except Exception as exc:
            raise BackendUnavailableError("The catalog database is closed") from exc
        try:
            cur.execute("SELECT 1").fetchall()
        except duckdb.Error as exc:
            self._return_cursor(cur, reusable=False)
            raise BackendUnavailableError("The catalog database does not answer") from exc
        self._return_cursor(cur, reusable=True)

    # -- cursors -----------------------------------------------------------------------------

    def _take_cursor(self) -> Any:
        with self._pool_lock:
            if self._closed:
                raise BackendUnavailableError("The catalog database is closed")
            if self._idle:
                return self._idle.pop()
            cur = self._con.cursor()
        try:
            for statement in self._setup:
                cur.execute(statement)
        except duckdb.Error as exc:
            cur.close()
            log.error("setup statement failed: %s", exc)
            raise BackendError(
                f"The database connection could not be prepared: {_clean(str(exc))}"
            ) from exc
        return cur

    def _return_cursor(self, cur: Any, *, reusable: bool) -> None:
        with self._pool_lock:
            if reusable and not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(cur)
                return
        cur.close()

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A pooled cursor for short statements whose results are fetched before returning."""
        cur = self._take_cursor()
        healthy = False
        try:
            yield cur
            # A result left unfetched would make the next borrower fail: probe before pooling.
            with contextlib.suppress(duckdb.Error):
                cur.execute("SELECT 1").fetchall()
                healthy = True
        finally:
            self._return_cursor(cur, reusable=healthy)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction: commits on success, rolls back everything on any exception.

        Writers are serialised by a lock (DuckDB would abort one of two conflicting writers).
        """
        if self.read_only:
            raise BackendError("The catalog database is open read-only")
        with self._write_lock:
            cur = self._con.cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield cur
                except BaseException:
                    # An unfinished result makes ROLLBACK itself fail; closing the cursor
                    # (in ``finally``) then aborts the transaction just the same.
                    with contextlib.suppress(duckdb.Error):
                        cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            finally:
                cur.close()

    # -- reading -----------------------------------------------------------------------------

    def stream(
        self, sql: str, *, batch_rows: int = 65536, timeout: float | None = None
    ) -> QueryStream:
        """Run one read-only SELECT; iterate the result for Arrow record batches.

        Batches come from DuckDB's streaming result, so the first arrives as soon as the plan
        produces it (a filter over a big table streams; an ORDER BY must finish sorting first).
        Anything but a single SELECT (or WITH … SELECT) is refused before it runs (when the
        first batch is asked for, like every other error of the query).
        """
        stream = QueryStream(self, sql, batch_rows, timeout)
        with self._pool_lock:
            self._active.add(stream)
        return stream

    def stream_with_tables(
        self,
        sql: str,
        tables: Mapping[str, pa.Table],
        *,
        batch_rows: int = 65536,
        timeout: float | None = None,
    ) -> QueryStream:
        """``stream``, with Arrow ``tables`` visible to this query only (TAP_UPLOAD).

        Each table is registered under its name (``"temp"."<name>"`` in SQL) on the query's own
        cursor, never on the shared connection, and unregistered before the cursor goes back to
        the pool, so no other query can see it.
        """
        cursors = _CursorsWithTables(self, tables)
        # QueryStream only uses the cursor hand-out of its database (see _CursorsWithTables).
        stream = QueryStream(cast("EmbeddedDatabase", cursors), sql, batch_rows, timeout)
        with self._pool_lock:
            self._active.add(stream)
        return stream

    def query(
        self, sql: str, params: Sequence[object] | Mapping[str, object] | None = None
    ) -> pa.Table:
        """A small read, materialised (TAP_SCHEMA, tests, checks)."""
        with self.cursor() as cur:
            return cur.sql(sql, params=params).to_arrow_table()

    def interrupt_all(self) -> int:
        """Interrupt every running stream (shutdown); returns how many were running."""
        with self._pool_lock:
            active = list(self._active)
        for stream in active:
            stream.interrupt()
        return len(active)

    def _forget(self, stream: QueryStream) -> None:
        with self._pool_lock:
            self._active.discard(stream)

    # -- catalog -----------------------------------------------------------------------------

    def catalog_tables(self) -> list[TableInfo]:
        """Every published table, read back from TAP_SCHEMA (not from any YAML)."""
        with self.cursor() as cur:
            if not tap_schema.tap_schema_exists(cur):
                return []
        return list(load_tap_schema(self).tables())

    def table_exists(self, schema: str, table: str) -> bool:
        with self.cursor() as cur:
            return _table_exists(cur, schema, table)

    def publish(
        self,
        schema: FelisSchema,
        *,
        schema_index: int | None = None,
        replace_tables: bool = False,
    ) -> None:
        """Create ``schema``'s tables (if absent) and make TAP_SCHEMA describe it.

        Idempotent: publishing again replaces the schema's TAP_SCHEMA rows and keeps loaded
        data.  A table that exists with other columns is an error unless ``replace_tables``,
        which drops and recreates it empty.
        """
        with self.transaction() as cur:
            self.publish_in(cur, schema, schema_index=schema_index, replace_tables=replace_tables)

    def publish_in(
        self,
        cur: Any,
        schema: FelisSchema,
        *,
        schema_index: int | None = None,
        replace_tables: bool = False,
        create_tables: bool = True,
    ) -> None:
        """``publish`` inside the caller's transaction (ingest swaps data and metadata at once)."""
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema.name)}")
        if create_tables:
            for table in schema.tables:
                self._ensure_table(cur, schema.name, table, replace=replace_tables)
        tap_schema.replace_schema_rows(cur, tap_schema_rows(schema, schema_index=schema_index))

    def _ensure_table(self, cur: Any, schema: str, table: FelisTable, *, replace: bool) -> None:
        existing = _table_columns(cur, schema, table.name)
        if existing is not None:
            if existing == _wanted_columns(table) and not replace:
                return
            if not replace:
                raise BackendError(
                    f"Table {schema}.{table.name} exists with different columns; publish with "
                    "replace_tables=True to recreate it"
                )
            cur.execute(f"DROP TABLE {qualified(schema, table.name)}")
        cur.execute(create_table_sql(schema, table))


class _CursorsWithTables:
    """The cursor hand-out of an ``EmbeddedDatabase``, registering tables on each cursor."""

    def __init__(self, db: EmbeddedDatabase, tables: Mapping[str, pa.Table]) -> None:
        self._db = db
        self._tables = dict(tables)
        self.deadlines = db.deadlines

    def _take_cursor(self) -> Any:
        cur = self._db._take_cursor()
        try:
            for name, table in self._tables.items():
                cur.register(name, table)
        except duckdb.Error as exc:
            self._db._return_cursor(cur, reusable=False)
            raise BackendError(
                f"An uploaded table could not be prepared: {_clean(str(exc))}"
            ) from exc
        return cur

    def _return_cursor(self, cur: Any, *, reusable: bool) -> None:
        try:
            for name in self._tables:
                cur.unregister(name)
        except duckdb.Error:
            reusable = False
        self._db._return_cursor(cur, reusable=reusable)

    def _forget(self, stream: QueryStream) -> None:
        self._db._forget(stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)  # anything else QueryStream may use of its database


def _wanted_columns(table: FelisTable) -> list[tuple[str, str]]:
    return [(c.name, duckdb_type(c)) for c in table.columns]


def table_state(cur: Any, schema: str, table: FelisTable) -> str:
    """``"absent"``, ``"matches"`` (same column names and types as Felis) or ``"differs"``."""
    existing = _table_columns(cur, schema, table.name)
    if existing is None:
        return "absent"
    return "matches" if existing == _wanted_columns(table) else "differs"


def _table_exists(cur: Any, schema: str, table: str) -> bool:
    return _table_columns(cur, schema, table) is not None


def _table_columns(cur: Any, schema: str, table: str) -> list[tuple[str, str]] | None:
    rows = cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    if not rows:
        return None
    return [(str(name), _normalise_type(str(kind))) for name, kind in rows]


def _normalise_type(kind: str) -> str:
    aliases = {"FLOAT": "REAL", "FLOAT4": "REAL", "INT": "INTEGER", "INT8": "BIGINT"}
    upper = kind.upper()
    return aliases.get(upper, upper)
