"""Qserv over the MySQL protocol: the only module that knows Qserv's wire details.

Driver: PyMySQL, synchronous, with its unbuffered ``SSCursor``.  The service runs database
work on worker threads and hands rows to writers as Arrow batches through a plain iterator
(``Backend.stream``), so an async driver (aiomysql, asyncmy) would only add an event-loop hop
per batch; PyMySQL is already a dependency, pure Python, and ``SSCursor`` reads rows off the
socket as the server sends them, so memory does not grow with the result.

What is on the wire, and why:

* **Streaming.** ``SSCursor.fetchmany(batch_rows)`` → columns → ``pa.RecordBatch``.  Column
  types come from the result-set metadata (``cursor.description``): ``BIGINT`` stays ``int64``
  (object ids above 2^53 are exact; unsigned becomes ``uint64``), ``TINYINT(1)`` (MySQL's
  BOOLEAN) becomes ``bool``, ``DECIMAL`` (MySQL's type for ``SUM``/``AVG`` of integers) becomes
  ``float64``, NULL stays NULL.
* **Cancellation and timeouts.** A running statement is stopped by ``KILL QUERY <thread id>``
  sent on a second, short-lived connection (the czar proxies it); the streaming connection is
  then closed, never reused.  ``close()`` of an unfinished stream, ``interrupt()`` from another
  thread (UWS ABORT, a dropped /sync client) and the per-query timeout all take this path.
* **Routing.** TAP_SCHEMA lives in a separate MySQL/MariaDB database, catalogs in Qserv.
  ``RoutingBackend`` reads the table references of the rendered SQL (the Qserv dialect writes
  every table as ``` `db`.`table` ``` in FROM/JOIN) with a small lexer that skips string
  literals, maps TAP schema names to physical databases from configuration, and sends the
  statement to one side; a statement naming both is refused.  Identifiers it writes come only
  from configuration; literals are never touched.
* **The MariaDB stand-in** declares ``scisql_s2PtInCPoly`` with a fixed arity (stored functions
  cannot be variadic); ``pad_cpoly`` NULL-pads those calls for it.  Real Qserv gets the SQL as
  rendered.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pymysql
import pymysql.cursors
from pymysql.constants import FIELD_TYPE, FLAG
from sqlalchemy.engine import make_url

from tap_service.exceptions import (
    BackendError,
    BackendUnavailableError,
    QueryDataError,
    QueryError,
    QueryTimeoutError,
)
from tap_service.storage.deadlines import Deadlines
from tap_service.storage.streams import CancellableStream

log = logging.getLogger(__name__)

TAP_SCHEMA_NAME = "TAP_SCHEMA"


# --------------------------------------------------------------------------- connection


@dataclass(frozen=True)
class ConnectionParams:
    host: str
    port: int
    user: str
    password: str
    database: str | None

    @classmethod
    def from_url(cls, url: str) -> ConnectionParams:
        """``mysql+pymysql://user:password@host:port/database`` (SQLAlchemy URL syntax)."""
        parsed = make_url(url)
        return cls(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 3306,
            user=parsed.username or "root",
            password=parsed.password or "",
            database=parsed.database or None,
        )

    def connect(
        self, *, connect_timeout: float = 10.0, read_timeout: float | None = None
    ) -> pymysql.Connection[Any]:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=int(max(1, connect_timeout)),
            read_timeout=read_timeout,
            write_timeout=read_timeout,
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


# --------------------------------------------------------------------------- SQL lexer


@dataclass(frozen=True)
class Token:
    kind: str
    """``ident`` (backquoted or double-quoted), ``string``, ``word``, ``punct``, ``space``."""
    text: str
    value: str
    """The identifier's name without quotes; the text otherwise."""


def tokenize(sql: str) -> list[Token]:
    """Split rendered SQL into tokens; string literals (MySQL escapes) are kept whole."""
    tokens: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "'":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == "'":
                    if j + 1 < n and sql[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            if j >= n:
                raise BackendError("Unterminated string literal in the SQL")
            tokens.append(Token("string", sql[i : j + 1], sql[i : j + 1]))
            i = j + 1
        elif ch in '`"':
            j = i + 1
            parts: list[str] = []
            while True:
                k = sql.find(ch, j)
                if k < 0:
                    raise BackendError("Unterminated quoted identifier in the SQL")
                parts.append(sql[j:k])
                if k + 1 < n and sql[k + 1] == ch:
                    parts.append(ch)
                    j = k + 2
                    continue
                break
            tokens.append(Token("ident", sql[i : k + 1], "".join(parts)))
            i = k + 1
        elif ch.isspace():
            j = i
            while j < n and sql[j].isspace():
                j += 1
            tokens.append(Token("space", sql[i:j], " "))
            i = j
        elif ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isdigit()):
            j = i + 1
            while j < n and (
                sql[j].isdigit() or sql[j] in ".eE" or (sql[j] in "+-" and sql[j - 1] in "eE")
            ):
                j += 1
            tokens.append(Token("word", sql[i:j], sql[i:j]))
            i = j
        elif ch.isalnum() or ch in "_$":
            j = i
            while j < n and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            tokens.append(Token("word", sql[i:j], sql[i:j]))
            i = j
        else:
            tokens.append(Token("punct", ch, ch))
            i += 1
    return tokens


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


_CLAUSE_END = frozenset({"WHERE", "GROUP", "ORDER", "HAVING", "LIMIT"})
_TABLE_LEAD = frozenset({"FROM", "JOIN", ","})


def table_references(tokens: Sequence[Token]) -> list[tuple[int, int]]:
    """Positions of ``db . table`` pairs standing as table references in FROM clauses.

    Our Qserv dialect writes every table qualified, right after FROM, JOIN or a comma of the
    FROM list, at parenthesis depth 0 relative to that FROM (Qserv has no sub-queries or nested
    joins, which the dialect refuses); column references never stand in those places.
    """
    refs: list[tuple[int, int]] = []
    significant = [i for i, t in enumerate(tokens) if t.kind != "space"]
    depth = 0
    in_from = False
    from_depth = 0
    previous: Token | None = None
    for pos, i in enumerate(significant):
        tok = tokens[i]
        upper = tok.value.upper() if tok.kind == "word" else tok.value
        if tok.kind == "punct" and tok.value == "(":
            depth += 1
        elif tok.kind == "punct" and tok.value == ")":
            depth -= 1
            if in_from and depth < from_depth:
                in_from = False
        elif tok.kind == "word" and upper == "FROM":
            in_from, from_depth = True, depth
        elif tok.kind == "word" and upper in _CLAUSE_END and depth == from_depth:
            in_from = False
        elif (
            in_from
            and tok.kind == "ident"
            and depth == from_depth
            and previous is not None
            and (previous.value.upper() if previous.kind == "word" else previous.value)
            in _TABLE_LEAD
            and pos + 2 < len(significant)
            and tokens[significant[pos + 1]].value == "."
            and tokens[significant[pos + 1]].kind == "punct"
            and tokens[significant[pos + 2]].kind == "ident"
        ):
            refs.append((i, significant[pos + 2]))
        previous = tok
    return refs


def pad_cpoly(tokens: list[Token], vertices: int) -> list[Token]:
    """NULL-pad every ``scisql_s2PtInCPoly(...)`` call to ``2 + 2 * vertices`` arguments."""
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        out.append(tok)
        if tok.kind == "word" and tok.value.lower() == "scisql_s2ptincpoly":
            j = i + 1
            while j < len(tokens) and tokens[j].kind == "space":
                out.append(tokens[j])
                j += 1
            if j < len(tokens) and tokens[j].value == "(":
                depth, commas, k = 0, 0, j
                close = -1
                while k < len(tokens):
                    t = tokens[k]
                    if t.kind == "punct" and t.value == "(":
                        depth += 1
                    elif t.kind == "punct" and t.value == ")":
                        depth -= 1
                        if depth == 0:
                            close = k
                            break
                    elif t.kind == "punct" and t.value == "," and depth == 1:
                        commas += 1
                    k += 1
                if close < 0:
                    raise BackendError("Unbalanced parentheses in the SQL")
                inner = pad_cpoly(tokens[j:close], vertices)
                missing = 2 + 2 * vertices - (commas + 1)
                if missing < 0:
                    raise QueryError(
                        f"A polygon has more than {vertices} vertices, more than the database "
                        "accepts"
                    )
                out.extend(inner)
                out.extend([Token("punct", ", NULL", ", NULL")] * missing)
                out.append(tokens[close])
                i = close + 1
                continue
        i += 1
    return out


def join_tokens(tokens: Sequence[Token]) -> str:
    return "".join(t.text for t in tokens)


# --------------------------------------------------------------------------- Arrow typing

_INTS = {
    FIELD_TYPE.TINY: (pa.int8(), pa.uint8()),
    FIELD_TYPE.SHORT: (pa.int16(), pa.uint16()),
    FIELD_TYPE.INT24: (pa.int32(), pa.uint32()),
    FIELD_TYPE.LONG: (pa.int32(), pa.uint32()),
    FIELD_TYPE.LONGLONG: (pa.int64(), pa.uint64()),
    FIELD_TYPE.YEAR: (pa.int16(), pa.int16()),
}
_TEXTS = frozenset(
    {
        FIELD_TYPE.VARCHAR,
        FIELD_TYPE.VAR_STRING,
        FIELD_TYPE.STRING,
        FIELD_TYPE.BLOB,
        FIELD_TYPE.TINY_BLOB,
        FIELD_TYPE.MEDIUM_BLOB,
        FIELD_TYPE.LONG_BLOB,
        FIELD_TYPE.ENUM,
        FIELD_TYPE.SET,
        FIELD_TYPE.JSON,
    }
)
_BINARY_CHARSET = 63


@dataclass(frozen=True)
class _Column:
    name: str
    type: pa.DataType
    convert: Callable[[list[Any]], list[Any]] | None = None


def _decimals(values: list[Any]) -> list[Any]:
    return [None if v is None else float(v) for v in values]


def _booleans(values: list[Any]) -> list[Any]:
    return [None if v is None else bool(v) for v in values]


def _strings(values: list[Any]) -> list[Any]:
    return [None if v is None else str(v) for v in values]


def _texts(values: list[Any]) -> list[Any]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else v for v in values]


def arrow_columns(cursor: Any) -> list[_Column]:
    """Arrow types for the result columns, from the MySQL result-set metadata."""
    columns: list[_Column] = []
    fields = getattr(cursor, "_result", None)
    raw = list(fields.fields) if fields is not None and fields.fields else []
    for index, desc in enumerate(cursor.description or ()):
        name, type_code, _display, length = desc[0], desc[1], desc[2], desc[3]
        meta = raw[index] if index < len(raw) else None
        flags = meta.flags if meta is not None else 0
        charset = meta.charsetnr if meta is not None else 0
        unsigned = bool(flags & FLAG.UNSIGNED)
        if type_code == FIELD_TYPE.TINY and length == 1:
            columns.append(_Column(name, pa.bool_(), _booleans))
        elif type_code in _INTS:
            signed, unsigned_type = _INTS[type_code]
            columns.append(_Column(name, unsigned_type if unsigned else signed))
        elif type_code == FIELD_TYPE.FLOAT:
            columns.append(_Column(name, pa.float32()))
        elif type_code == FIELD_TYPE.DOUBLE:
            columns.append(_Column(name, pa.float64()))
        elif type_code in (FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL):
            columns.append(_Column(name, pa.float64(), _decimals))
        elif type_code in (FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP):
            columns.append(_Column(name, pa.timestamp("us")))
        elif type_code == FIELD_TYPE.DATE:
            columns.append(_Column(name, pa.date32()))
        elif type_code in _TEXTS and charset == _BINARY_CHARSET:
            columns.append(_Column(name, pa.binary()))
        elif type_code in _TEXTS:
            columns.append(_Column(name, pa.string(), None))
        elif type_code == FIELD_TYPE.NULL:
            columns.append(_Column(name, pa.null()))
        else:  # TIME, BIT, GEOMETRY: text is the honest fallback
            columns.append(_Column(name, pa.string(), _strings))
    return columns


def rows_to_batch(columns: Sequence[_Column], rows: Sequence[tuple[Any, ...]]) -> pa.RecordBatch:
    arrays = []
    for column, values in zip(columns, zip(*rows, strict=True), strict=True):
        data = list(values)
        if column.convert is not None:
            data = column.convert(data)
        try:
            arrays.append(pa.array(data, type=column.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # A value the metadata did not announce (bytes in a text column, say).
            if column.type == pa.string():
                arrays.append(pa.array(_texts(data), type=pa.string()))
            else:
                raise
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns])


def _clean(exc: BaseException) -> str:
    args: tuple[Any, ...] = tuple(exc.args)
    if len(args) >= 2 and isinstance(args[1], str):
        return args[1].strip().splitlines()[0][:300]
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# --------------------------------------------------------------------------- backend


class MySQLStream(CancellableStream):
    """A running SELECT on one MySQL-protocol connection; iterate for Arrow batches.

    The statement is sent on the first ``next()`` (or ``start()``).  ``interrupt()`` is safe
    from any thread: it sends ``KILL QUERY`` on a second connection.
    """

    def __init__(
        self, backend: MySQLBackend, sql: str, batch_rows: int, timeout: float | None
    ) -> None:
        super().__init__(timeout)
        self._backend = backend
        self._sql = sql
        self._batch_rows = batch_rows
        self._conn: pymysql.Connection[Any] | None = None
        self._cursor: Any = None
        self._columns: list[_Column] | None = None
        self._thread_id: int | None = None
        self.rows = 0

    def start(self) -> None:
        if self._columns is not None:
            return
        with self._lock:
            if self._done or self._interrupted:
                self._done = True
                raise self._cancelled()
            self._busy = True
        try:
            conn = self._backend._take_connection()
            with self._lock:
                self._conn = conn
                self._thread_id = conn.thread_id()
                if self._timeout is not None:
                    self._timer = self._backend.deadlines.schedule(self._timeout, self._expire)
            if self._interrupted:
                raise self._cancelled()
            cursor = conn.cursor(pymysql.cursors.SSCursor)
            self._cursor = cursor
            cursor.execute(self._sql)
            self._columns = arrow_columns(cursor)
        except (BackendError, BackendUnavailableError, QueryTimeoutError):
            self._busy = False
            self._release(healthy=False)
            raise
        except (pymysql.err.Error, OSError) as exc:
            self._busy = False
            self._release(healthy=False)
            raise self._translate(exc) from exc
        self._busy = False
        if self._interrupted:
            self._release(healthy=False)
            raise self._cancelled()

    def __next__(self) -> pa.RecordBatch:
        if self._done:
            raise StopIteration
        self.start()
        with self._lock:
            if self._interrupted:
                self._release(healthy=False)
                raise self._cancelled()
            self._busy = True
        try:
            rows = self._cursor.fetchmany(self._batch_rows)
        except (pymysql.err.Error, OSError) as exc:
            self._busy = False
            self._release(healthy=False)
            raise self._translate(exc) from exc
        finally:
            self._busy = False
        if self._interrupted:
            self._release(healthy=False)
            raise self._cancelled()
        if not rows:
            self._release(healthy=True)
            raise StopIteration
        assert self._columns is not None
        self.rows += len(rows)
        return rows_to_batch(self._columns, rows)

    def interrupt(self) -> None:
        """Stop the statement on the server (``KILL QUERY``); safe from any thread."""
        with self._lock:
            first = not self._interrupted
            self._interrupted = True
            if self._done or not first:
                return
            thread_id = self._thread_id
            busy = self._busy
        if thread_id is not None and not self._backend.kill_query(thread_id):
            # The server cannot be reached to stop the statement (hung, partitioned): cut our
            # own socket, so the thread blocked reading it wakes with an error now rather than
            # whenever the server answers again.
            self._sever()
            return
        if busy:
            # A KILL that reaches the server before the statement does is a no-op; keep
            # killing while the reading thread stays blocked in the driver.
            threading.Thread(target=self._kill_while_busy, daemon=True).start()

    def _sever(self) -> None:
        with self._lock:
            conn = self._conn
        sock = getattr(conn, "_sock", None) if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _kill_while_busy(self, interval: float = 0.25, attempts: int = 40) -> None:
        for _ in range(attempts):
            time.sleep(interval)
            with self._lock:
                if self._done or not self._busy:
                    return
                thread_id = self._thread_id
            if thread_id is not None and not self._backend.kill_query(thread_id):
                self._sever()
                return

    def _translate(self, exc: BaseException) -> TapErrorLike:
        if self._interrupted:
            return self._cancelled()
        if isinstance(exc, pymysql.err.OperationalError | OSError) and not isinstance(
            exc, pymysql.err.ProgrammingError
        ):
            args: tuple[Any, ...] = tuple(exc.args)
            code = args[0] if args and isinstance(args[0], int) else 0
            if code in (2003, 2006, 2013):
                return BackendUnavailableError(
                    f"The database at {self._backend.params.where} does not answer"
                )
        args = tuple(getattr(exc, "args", ()))
        if args and args[0] in DATA_ERROR_CODES:
            return QueryDataError(f"The query failed on a value: {_clean(exc)}")
        return BackendError(f"The database could not run the query: {_clean(exc)}")

    def _release(self, *, healthy: bool) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            conn, self._conn = self._conn, None
            cursor, self._cursor = self._cursor, None
        if cursor is not None and healthy:
            with contextlib.suppress(Exception):
                cursor.close()
        elif conn is not None:
            # The connection is closed with rows unread: stop PyMySQL from draining them later
            # (MySQLResult.__del__ would read from the closed socket).
            for result in (getattr(cursor, "_result", None), getattr(conn, "_result", None)):
                if result is not None:
                    result.unbuffered_active = False
        if conn is not None:
            self._backend._return_connection(conn, reusable=healthy and not self._interrupted)
        self._backend._forget(self)

    def __del__(self) -> None:
        if not self._done and self._conn is not None:
            with contextlib.suppress(Exception):
                self.close()


TapErrorLike = BackendError | BackendUnavailableError | QueryTimeoutError | QueryDataError


# MySQL/MariaDB errors caused by a value while the query runs (out of range, truncated or
# incorrect value, division by zero in strict mode): the client's query, not the service.
DATA_ERROR_CODES = frozenset({1264, 1292, 1365, 1366, 1367, 1411, 1690})


class MySQLBackend:
    """One MySQL-protocol server (the Qserv czar, or MariaDB): pooled connections, streams."""

    def __init__(
        self,
        url: str,
        *,
        dialect: str = "qserv",
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        cpoly_vertices: int | None = None,
        observer: Callable[[str], None] | None = None,
    ) -> None:
        self.dialect = dialect
        self.params = ConnectionParams.from_url(url)
        self.cpoly_vertices = cpoly_vertices
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._observer = observer
        self._idle: list[pymysql.Connection[Any]] = []
        self._lock = threading.Lock()
        self._active: weakref.WeakSet[MySQLStream] = weakref.WeakSet()
        self.deadlines = Deadlines()
        self._closed = False

    # -- connections ---------------------------------------------------------------------

    def _connect(self, *, bounded: bool = False) -> pymysql.Connection[Any]:
        """A new connection; its handshake is bounded by the connect timeout.

        PyMySQL's ``connect_timeout`` covers only the TCP connect: a hung server (or a network
        that black-holes packets) whose kernel still completes the TCP handshake would block
        the MySQL greeting read for ever.  So every connection is opened with the connect
        timeout as read/write timeout; ``bounded=False`` then lifts it for statements, which
        may legitimately run for minutes before their first row (their own deadline and
        KILL QUERY bound them).
        """
        try:
            conn = self.params.connect(
                connect_timeout=self._connect_timeout, read_timeout=self._connect_timeout
            )
        except (pymysql.err.Error, OSError) as exc:
            log.warning("cannot connect to %s: %s", self.params.where, exc)
            raise BackendUnavailableError(
                f"The database at {self.params.where} does not answer"
            ) from exc
        if not bounded:
            _set_timeouts(conn, None)
        return conn

    def _take_connection(self) -> pymysql.Connection[Any]:
        with self._lock:
            if self._closed:
                raise BackendUnavailableError("The database backend is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is not None:
            try:
                # Bounded: a pooled connection to a hung server must not block the request.
                _set_timeouts(conn, self._connect_timeout)
                conn.ping(reconnect=False)
                _set_timeouts(conn, None)
                return conn
            except (pymysql.err.Error, OSError):
                with contextlib.suppress(Exception):
                    conn.close()
        return self._connect()

    def _return_connection(self, conn: pymysql.Connection[Any], *, reusable: bool) -> None:
        if reusable:
            with self._lock:
                if not self._closed and len(self._idle) < self._pool_size:
                    self._idle.append(conn)
                    return
        with contextlib.suppress(Exception):
            conn.close()

    def _forget(self, stream: MySQLStream) -> None:
        with self._lock:
            self._active.discard(stream)

    def _sent(self, sql: str) -> None:
        if self._observer is not None:
            self._observer(sql)

    def kill_query(self, thread_id: int) -> bool:
        """``KILL QUERY`` the statement running on connection ``thread_id``.

        False when the server could not be reached (or did not answer) to receive it.
        """
        try:
            conn = self._connect(bounded=True)
        except BackendUnavailableError:
            log.error("cannot reach %s to cancel query on thread %s", self.params.where, thread_id)
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("KILL QUERY %s", (int(thread_id),))
            return True
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in (2006, 2013):  # gone or timed out meanwhile
                log.error("KILL QUERY %s not delivered: %s", thread_id, exc)
                return False
            log.info("KILL QUERY %s: %s", thread_id, exc)
            return True
        except pymysql.err.Error as exc:  # finished in the meantime: nothing to stop
            log.info("KILL QUERY %s: %s", thread_id, exc)
            return True
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    # -- Backend ------------------------------------------------------------------------

    def stream(
        self, sql: str, *, batch_rows: int = 65536, timeout: float | None = None
    ) -> MySQLStream:
        self._sent(sql)  # as Qserv would receive it (before the stand-in's padding)
        if self.cpoly_vertices is not None and "scisql_s2ptincpoly" in sql.lower():
            sql = join_tokens(pad_cpoly(tokenize(sql), self.cpoly_vertices))
        stream = MySQLStream(self, sql, batch_rows, timeout)
        with self._lock:
            self._active.add(stream)
        return stream

    def ping(self) -> None:
        """``SELECT 1``, bounded by the connect timeout (availability must not hang)."""
        conn = self._take_connection()
        try:
            _set_timeouts(conn, self._connect_timeout)
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
            _set_timeouts(conn, None)
        except (pymysql.err.Error, OSError) as exc:
            self._return_connection(conn, reusable=False)
            raise BackendUnavailableError(
                f"The database at {self.params.where} does not answer"
            ) from exc
        self._return_connection(conn, reusable=True)

    def interrupt_all(self) -> int:
        with self._lock:
            active = list(self._active)
        for stream in active:
            stream.interrupt()
        return len(active)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        self.interrupt_all()
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()


def _set_timeouts(conn: pymysql.Connection[Any], seconds: float | None) -> None:
    """Change a connection's read/write timeouts after it was opened.

    PyMySQL takes them only as constructor arguments, but reads both attributes before every
    socket read and write (and re-applies them to the socket), so setting them is effective.
    """
    conn._read_timeout = seconds
    conn._write_timeout = seconds


class RoutingBackend:
    """Qserv for catalog tables, the TAP_SCHEMA database for TAP_SCHEMA (see module doc)."""

    def __init__(
        self,
        catalog: MySQLBackend,
        tap_schema: MySQLBackend,
        *,
        databases: Mapping[str, str] | None = None,
        ping_cache_seconds: float = 5.0,
    ) -> None:
        self.dialect = catalog.dialect
        self.catalog = catalog
        self.tap_schema = tap_schema
        names = dict(databases or {})
        names.setdefault(TAP_SCHEMA_NAME, tap_schema.params.database or TAP_SCHEMA_NAME)
        self._databases = names
        self._tap_schema_db = names[TAP_SCHEMA_NAME]
        self._ping_cache = ping_cache_seconds
        self._ping_at = 0.0
        self._ping_error: BaseException | None = None
        self._ping_lock = threading.Lock()

    def route(self, sql: str) -> tuple[MySQLBackend, str]:
        """The side that runs ``sql`` and the statement with physical database names."""
        tokens = tokenize(sql)
        refs = table_references(tokens)
        sides: set[bool] = set()
        for db_index, _table_index in refs:
            name = tokens[db_index].value
            physical = self._databases.get(name, name)
            sides.add(physical == self._tap_schema_db)
            tokens[db_index] = Token("ident", quote_ident(physical), physical)
        for i, tok in enumerate(tokens):  # double-quoted identifiers become MySQL's backquotes
            if tok.kind == "ident" and tok.text.startswith('"'):
                tokens[i] = Token("ident", quote_ident(tok.value), tok.value)
        if len(sides) > 1:
            raise QueryError(
                "A query cannot join TAP_SCHEMA tables with catalog tables: TAP_SCHEMA is kept "
                "in a separate database. Query them separately."
            )
        side = self.tap_schema if sides == {True} else self.catalog
        return side, join_tokens(tokens)

    def stream(
        self, sql: str, *, batch_rows: int = 65536, timeout: float | None = None
    ) -> MySQLStream:
        side, physical = self.route(sql)
        return side.stream(physical, batch_rows=batch_rows, timeout=timeout)

    def ping(self) -> None:
        """Both databases answer; the outcome is kept ``ping_cache_seconds``."""
        with self._ping_lock:
            now = time.monotonic()
            if now - self._ping_at >= self._ping_cache:
                try:
                    self.catalog.ping()
                    self.tap_schema.ping()
                    self._ping_error = None
                except BaseException as exc:  # noqa: BLE001 - cached and re-raised
                    self._ping_error = exc
                self._ping_at = now
            error = self._ping_error
        if error is not None:
            raise error

    def interrupt_all(self) -> int:
        return self.catalog.interrupt_all() + self.tap_schema.interrupt_all()

    def close(self) -> None:
        self.catalog.close()
        self.tap_schema.close()
