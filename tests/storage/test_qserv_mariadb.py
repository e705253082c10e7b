"""The Qserv backend against the MariaDB stand-in (127.0.0.1:3306, root, no password).

* The executed-query table of the ADQL tests (``tests/adql/test_execution.py``) runs through
  ``RoutingBackend`` → ``MySQLBackend`` (TAP schema ``demo`` mapped to a per-process database)
  and equals DuckDB's rows; every statement sent is checked against Qserv's restrictions.
* Types on the wire: 64-bit ids exact, NULLs, booleans, decimals.
* Cancellation (close, interrupt, timeout) leaves nothing in SHOW PROCESSLIST.
* TAP_SCHEMA in MariaDB: created, loaded from Felis idempotently, read back by the reader.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pymysql
import pytest

from tap_service.exceptions import QueryError, QueryTimeoutError
from tap_service.felis.model import load_felis
from tap_service.services.demo_catalog import DEMO_SCHEMA_PATH
from tap_service.services.standin import CPOLY_VERTICES
from tap_service.storage.mysql_tap_schema import MySQLTapSchema
from tap_service.storage.qserv import MySQLBackend, RoutingBackend
from tap_service.storage.streams import QueryCancelledError
from tap_service.storage.tap_schema_reader import load_tap_schema
from tests.adql.conftest import (  # noqa: F401 - session fixtures shared with the ADQL tests
    MARIADB_START,
    create_sky_database,
    duck,
    make_catalog,
    sky,
    translate,
)
from tests.adql.test_execution import ORDERED, SHARED, _key, _norm, _same, run_duck
from tests.fixtures.services import mariadb_admin
from tests.storage.test_qserv import qserv_violations

pytestmark = pytest.mark.mariadb

DB = f"tap_test_qserv_{os.getpid()}"
TS_DB = f"tap_test_qserv_ts_{os.getpid()}"
URL = f"mysql+pymysql://root@127.0.0.1:3306/{DB}"
TS_URL = f"mysql+pymysql://root@127.0.0.1:3306/{TS_DB}"
CATALOG = make_catalog("demo")  # TAP names; RoutingBackend maps "demo" to DB


@pytest.fixture(scope="module")
def server() -> Iterator[pymysql.Connection[Any]]:
    con = mariadb_admin()
    yield con
    con.close()


@pytest.fixture(scope="module")
def loaded(server: pymysql.Connection[Any], sky: Any) -> Iterator[str]:  # noqa: F811
    cur = server.cursor()
    create_sky_database(cur, DB, sky)
    cur.execute(
        "CREATE TABLE types (id BIGINT UNSIGNED, s BIGINT, b BOOLEAN, f FLOAT, d DECIMAL(10,3), "
        "t DATETIME(6), txt VARCHAR(20), bin VARBINARY(4))"
    )
    cur.execute(
        "INSERT INTO types VALUES (18446744073709551615, 1249537790362800001, 1, 1.5, 2.125, "
        "'2024-01-02 03:04:05.123456', 'Ünïcode', x'00ff'), "
        "(NULL, -9223372036854775808, 0, NULL, NULL, NULL, NULL, NULL)"
    )
    try:
        yield DB
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")


@pytest.fixture(scope="module")
def sent() -> list[str]:
    return []


@pytest.fixture(scope="module")
def backend(loaded: str, sent: list[str]) -> Iterator[RoutingBackend]:
    catalog = MySQLBackend(URL, cpoly_vertices=CPOLY_VERTICES, observer=sent.append)
    tap_schema = MySQLBackend(TS_URL)
    routing = RoutingBackend(catalog, tap_schema, databases={"demo": DB})
    yield routing
    routing.close()


def _rows(batches: Any) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for batch in batches:
        columns = [c.to_pylist() for c in batch.columns]
        out.extend(tuple(_norm(v) for v in row) for row in zip(*columns, strict=True))
    return out


@pytest.mark.parametrize("adql", SHARED)
def test_executed_query_table_matches_embedded(
    adql: str,
    duck: Any,  # noqa: F811
    backend: RoutingBackend,
    sent: list[str],
) -> None:
    before = len(sent)
    d_rows = run_duck(duck, adql)
    q_rows = _rows(backend.stream(translate(adql, "qserv", CATALOG), batch_rows=997))
    assert len(d_rows) == len(q_rows)
    if adql not in ORDERED:
        d_rows, q_rows = sorted(d_rows, key=_key), sorted(q_rows, key=_key)
    for d, m in zip(d_rows, q_rows, strict=True):
        assert len(d) == len(m)
        assert all(_same(x, y) for x, y in zip(d, m, strict=True)), (d, m)
    statements = sent[before:]
    assert len(statements) == 1
    assert qserv_violations(statements[0]) == [], statements[0]


def test_wire_types(backend: RoutingBackend) -> None:
    batches = list(
        backend.catalog.stream(f"SELECT id, s, b, f, d, t, txt, bin FROM {DB}.types ORDER BY s")
    )
    table = pa.Table.from_batches(batches)
    assert [str(t) for t in table.schema.types] == [
        "uint64", "int64", "bool", "float", "double", "timestamp[us]", "string", "binary",
    ]  # fmt: skip
    assert table.column("s").to_pylist() == [-9223372036854775808, 1249537790362800001]
    assert table.column("id").to_pylist() == [None, 18446744073709551615]
    assert table.column("b").to_pylist() == [False, True]
    assert table.column("d").to_pylist() == [None, 2.125]
    assert table.column("txt").to_pylist() == [None, "Ünïcode"]
    assert table.column("bin").to_pylist() == [None, b"\x00\xff"]


def _running(server: pymysql.Connection[Any], marker: str) -> list[Any]:
    with server.cursor() as cur:
        cur.execute(
            "SELECT id, info FROM information_schema.processlist WHERE info LIKE %s "
            "AND info NOT LIKE '%%information_schema.processlist%%'",
            (f"%{marker}%",),
        )
        return list(cur.fetchall())


def _wait_gone(server: pymysql.Connection[Any], marker: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while _running(server, marker):
        assert time.monotonic() < deadline, _running(server, marker)
        time.sleep(0.05)


def _slow_sql(marker: str) -> str:
    # A many-row cross join: the server is busy for minutes unless stopped.
    return (
        f"SELECT a.id, b.id, '{marker}' AS m FROM {DB}.sky AS a, {DB}.sky AS b "
        "WHERE scisql_angSep(a.ra, a.`dec`, b.ra, b.`dec`) < 200"
    )


def _heavy_count(marker: str) -> str:
    return (
        f"SELECT COUNT(*), '{marker}' FROM {DB}.sky AS a, {DB}.sky AS b "
        "WHERE scisql_angSep(a.ra, a.`dec`, b.ra, b.`dec`) < 0.001"
    )


def test_closing_a_streaming_result_kills_the_query(
    backend: RoutingBackend, server: pymysql.Connection[Any]
) -> None:
    marker = f"m{uuid.uuid4().hex}"
    stream = backend.catalog.stream(_slow_sql(marker), batch_rows=1000)
    first = next(stream)
    assert first.num_rows == 1000
    assert _running(server, marker)
    stream.close()
    _wait_gone(server, marker)


def test_interrupt_from_another_thread_stops_a_running_query(
    backend: RoutingBackend, server: pymysql.Connection[Any]
) -> None:
    marker = f"m{uuid.uuid4().hex}"
    stream = backend.catalog.stream(_heavy_count(marker))
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            list(stream)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    worker = threading.Thread(target=consume)
    worker.start()
    deadline = time.monotonic() + 5
    while not _running(server, marker):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    stream.interrupt()
    worker.join(5)
    assert not worker.is_alive()
    assert time.monotonic() - started < 3
    assert errors
    assert isinstance(errors[0], QueryCancelledError)
    _wait_gone(server, marker)


def test_timeout_cancels_on_the_server(
    backend: RoutingBackend, server: pymysql.Connection[Any]
) -> None:
    marker = f"m{uuid.uuid4().hex}"
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match=r"longer than 0\.5 s"):
        list(backend.catalog.stream(_heavy_count(marker), timeout=0.5))
    assert time.monotonic() - started < 3
    _wait_gone(server, marker)


def test_connections_are_reused_after_complete_results(backend: RoutingBackend) -> None:
    for _ in range(3):
        assert _rows(backend.catalog.stream("SELECT 1")) == [(1.0,)]
    assert len(backend.catalog._idle) >= 1


def test_sql_errors_are_backend_errors(backend: RoutingBackend) -> None:
    from tap_service.exceptions import BackendError

    with pytest.raises(BackendError, match="could not run the query"):
        list(backend.catalog.stream(f"SELECT nope FROM {DB}.sky"))


def test_unreachable_server_is_unavailable() -> None:
    from tap_service.exceptions import BackendUnavailableError

    dead = MySQLBackend("mysql+pymysql://root@127.0.0.1:1/x", connect_timeout=1)
    with pytest.raises(BackendUnavailableError):
        dead.ping()
    with pytest.raises(BackendUnavailableError):
        list(dead.stream("SELECT 1"))


# --------------------------------------------------------------------------- TAP_SCHEMA


@pytest.fixture(scope="module")
def tap_schema_db(server: pymysql.Connection[Any]) -> Iterator[MySQLTapSchema]:
    store = MySQLTapSchema(TS_URL)
    store.drop()
    store.create()
    yield store
    store.drop()


def _dump(server: pymysql.Connection[Any]) -> dict[str, list[Any]]:
    out = {}
    with server.cursor() as cur:
        for table in ("schemas", "tables", "columns", "keys", "key_columns"):
            cur.execute(f"SELECT * FROM {TS_DB}.`{table}`")
            out[table] = sorted(cur.fetchall(), key=repr)
    return out


def test_tap_schema_loads_idempotently_and_reads_back(
    tap_schema_db: MySQLTapSchema, backend: RoutingBackend, server: pymysql.Connection[Any]
) -> None:
    felis = load_felis(DEMO_SCHEMA_PATH)
    tap_schema_db.publish(felis)
    first = _dump(server)
    tap_schema_db.publish(felis)
    assert _dump(server) == first
    model = load_tap_schema(backend)
    names = {t.qualified_name for t in model.tables()}
    assert {"TAP_SCHEMA.columns", "dp02_dc2_catalogs.Object"} <= names
    obj = model.find_table("dp02_dc2_catalogs.Object")
    assert obj is not None
    assert [c.name for c in obj.columns] == [c.name for c in felis.table("Object").columns]
    assert model.keys  # ForcedSource → Object keys survive the round trip


def test_publish_is_atomic(
    tap_schema_db: MySQLTapSchema, server: pymysql.Connection[Any], monkeypatch: Any
) -> None:
    felis = load_felis(DEMO_SCHEMA_PATH)
    tap_schema_db.publish(felis)
    before = _dump(server)

    def broken(self: Any, cur: Any, table: str, rows: Any) -> None:
        if table == "keys":
            raise RuntimeError("disk full")
        original(self, cur, table, rows)

    original = MySQLTapSchema._insert
    monkeypatch.setattr(MySQLTapSchema, "_insert", broken)
    with pytest.raises(RuntimeError):
        tap_schema_db.publish(felis)
    assert _dump(server) == before


def test_adql_on_tap_schema_runs_in_the_tap_schema_database(
    tap_schema_db: MySQLTapSchema, backend: RoutingBackend
) -> None:
    from tap_service import adql

    tap_schema_db.publish(load_felis(DEMO_SCHEMA_PATH))
    model = load_tap_schema(backend)
    text = "SELECT table_name FROM TAP_SCHEMA.tables WHERE schema_name = 'dp02_dc2_catalogs'"
    sql = adql.to_sql(adql.check(adql.parse(text), model), "qserv")
    got = sorted(r[0] for r in _rows_raw(backend.stream(sql)))
    assert got == sorted(
        ["dp02_dc2_catalogs.CcdVisit", "dp02_dc2_catalogs.ForcedSource", "dp02_dc2_catalogs.Object"]
    )
    mixed = (
        "SELECT t.table_name, o.objectId FROM TAP_SCHEMA.tables AS t, "
        "dp02_dc2_catalogs.Object AS o WHERE o.objectId = 1"
    )
    sql = adql.to_sql(adql.check(adql.parse(mixed), model), "qserv")
    with pytest.raises(QueryError, match="TAP_SCHEMA"):
        backend.stream(sql)


def _rows_raw(batches: Any) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for batch in batches:
        out.extend(zip(*[c.to_pylist() for c in batch.columns], strict=True))
    return out


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@pytest.mark.slow
def test_a_million_rows_stream_in_flat_memory(
    backend: RoutingBackend, server: pymysql.Connection[Any]
) -> None:
    with server.cursor() as cur:
        cur.execute(f"USE {DB}")
        cur.execute(
            "CREATE TABLE big (objectId BIGINT NOT NULL, ra DOUBLE, flux DOUBLE, ok BOOLEAN)"
        )
        cur.execute(
            "INSERT INTO big SELECT seq + 1249537790362800000, RAND(seq) * 360, "
            "IF(seq % 17 = 0, NULL, RAND(seq + 1)), seq % 2 = 0 FROM seq_1_to_1000000"
        )
    rows = 0
    at_100k = 0.0
    last_id = 0
    for batch in backend.stream(
        "SELECT `b`.`objectId`, `b`.`ra`, `b`.`flux`, `b`.`ok` FROM `demo`.`big` AS `b`",
        batch_rows=16_384,
    ):
        rows += batch.num_rows
        last_id = batch.column(0)[-1].as_py()
        if not at_100k and rows >= 100_000:
            at_100k = _rss_mb()
    growth = _rss_mb() - at_100k
    assert rows == 1_000_000
    assert last_id == 1249537790362800000 + 1_000_000
    assert growth < 25, f"RSS grew {growth:.0f} MB between 100,000 and 1,000,000 rows"


@pytest.mark.parametrize("delay", [0.0, 0.001, 0.005, 0.02])
def test_an_interrupt_racing_the_statement_still_stops_it(
    delay: float, backend: RoutingBackend, server: pymysql.Connection[Any]
) -> None:
    """A KILL that reaches the server before the statement is a no-op: the stream retries."""
    marker = f"m{uuid.uuid4().hex}"
    stream = backend.catalog.stream(_heavy_count(marker))
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            list(stream)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    worker = threading.Thread(target=consume)
    worker.start()
    time.sleep(delay)
    stream.interrupt()
    worker.join(5)
    assert not worker.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], QueryCancelledError)
    _wait_gone(server, marker)


class _FixedSnapshot:
    """A TAP_SCHEMA snapshot that is the test catalog (the service only reads ``.model``)."""

    def __init__(self, model: Any) -> None:
        self.model = model


def test_result_budget_cuts_a_qserv_result_with_overflow(backend: RoutingBackend) -> None:
    """Instead of Qserv's all-or-nothing size failure, the result is cut and marked OVERFLOW."""
    import io
    from pathlib import Path

    from astropy.io.votable import parse

    from tap_service.config import Config
    from tap_service.services.query import QueryRequest, QueryService

    total = len(_rows_raw(backend.stream(translate("SELECT id FROM demo.sky", "qserv", CATALOG))))
    config = Config(data_dir=Path("unused"), result_bytes_limit=5_000, maxrec_default=10**7)
    service = QueryService(config, backend, _FixedSnapshot(CATALOG))  # type: ignore[arg-type]
    query = QueryRequest(query="SELECT id, ra, dec FROM demo.sky ORDER BY id", lang="ADQL")
    document = b"".join(service.stream(service.prepare(query)))
    votable = parse(io.BytesIO(document))
    rows = votable.get_first_table().to_table()
    statuses = [i.value for i in votable.resources[0].infos if i.name == "QUERY_STATUS"]
    assert "OVERFLOW" in statuses
    assert 0 < len(rows) < total
    assert list(rows["id"]) == sorted(rows["id"])  # whole rows, the first ones
