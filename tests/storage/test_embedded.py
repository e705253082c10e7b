"""EmbeddedDatabase: publishing, TAP_SCHEMA round trip, streaming, threads, cancellation."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.exceptions import (
    BackendError,
    BackendUnavailableError,
    QueryDataError,
    QueryTimeoutError,
)
from tap_service.felis import load_felis, parse_felis
from tap_service.storage.embedded import EmbeddedDatabase
from tap_service.storage.streams import QueryCancelledError

SDM = Path("/work/shared/rubin-sdm/schemas")
DEMO = Path(__file__).resolve().parents[2] / "schema" / "dp02_demo.yaml"

# A cross join large enough to run for minutes unless interrupted.
ENDLESS = "SELECT count(*) FROM range(100000000) a, range(1000) b WHERE a.range + b.range < 0"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[EmbeddedDatabase]:
    database = EmbeddedDatabase(tmp_path, setup_statements=setup_statements())
    yield database
    database.close()


def _rows(db: EmbeddedDatabase, sql: str) -> list[dict[str, object]]:
    return db.query(sql).to_pylist()


def test_new_database_holds_tap_schema_describing_itself(db: EmbeddedDatabase) -> None:
    assert db.path.name == "catalog.duckdb"
    assert db.path.exists()
    schemas = _rows(db, 'SELECT * FROM "TAP_SCHEMA"."schemas"')
    assert [s["schema_name"] for s in schemas] == ["TAP_SCHEMA"]
    tables = db.catalog_tables()
    assert [t.qualified_name for t in tables] == [
        "TAP_SCHEMA.schemas",
        "TAP_SCHEMA.tables",
        "TAP_SCHEMA.columns",
        "TAP_SCHEMA.keys",
        "TAP_SCHEMA.key_columns",
    ]
    columns = next(t for t in tables if t.name == "columns")
    assert len(columns.columns) == 14
    size = columns.column("size")
    assert size is not None
    assert size.datatype == "int"
    assert size.std
    # Every column TAP_SCHEMA describes exists in the physical table, in the described order.
    for table in tables:
        physical = db.query(f'SELECT * FROM "TAP_SCHEMA"."{table.name}" LIMIT 0').column_names
        assert physical == [c.name for c in table.columns]


def test_publish_demo_schema_and_read_it_back(db: EmbeddedDatabase) -> None:
    schema = load_felis(DEMO)
    db.publish(schema)
    tables = {t.qualified_name: t for t in db.catalog_tables()}
    obj = tables["dp02_dc2_catalogs.Object"]
    assert [c.name for c in obj.columns] == [c.name for c in schema.table("Object").columns]
    object_id = obj.column("objectId")
    assert object_id is not None
    assert (object_id.datatype, object_id.indexed, object_id.principal) == ("long", True, True)
    flux = obj.column("r_psfFlux")
    assert flux is not None
    assert flux.unit == "nJy"
    obs = tables["dp02_dc2_catalogs.CcdVisit"].column("obsStart")
    assert obs is not None
    assert (obs.datatype, obs.arraysize, obs.xtype) == ("char", "*", "timestamp")
    # Schemas listed by schema_index: the science schema before TAP_SCHEMA.
    assert next(iter(tables)).startswith("dp02_dc2_catalogs.")
    # The physical table has the Felis columns with DuckDB types.
    described = _rows(
        db,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'dp02_dc2_catalogs' AND table_name = 'ForcedSource' "
        "ORDER BY ordinal_position",
    )
    assert described[0] == {"column_name": "forcedSourceId", "data_type": "BIGINT"}
    assert {"column_name": "psfFlux_flag", "data_type": "BOOLEAN"} in described
    keys = _rows(db, 'SELECT * FROM "TAP_SCHEMA"."key_columns" ORDER BY key_id')
    assert [(k["key_id"], k["from_column"]) for k in keys][:2] == [
        ("CcdV_FS", "ccdVisitId"),
        ("Obj_FS", "objectId"),
    ]


def test_republishing_replaces_rows_and_keeps_data(db: EmbeddedDatabase) -> None:
    schema = load_felis(DEMO)
    db.publish(schema)
    with db.transaction() as cur:
        cur.execute('INSERT INTO dp02_dc2_catalogs."CcdVisit" (ccdVisitId) VALUES (7)')
    counts = _rows(db, 'SELECT count(*) AS n FROM "TAP_SCHEMA"."columns"')
    db.publish(schema)
    assert _rows(db, 'SELECT count(*) AS n FROM "TAP_SCHEMA"."columns"') == counts
    assert _rows(db, 'SELECT ccdVisitId FROM dp02_dc2_catalogs."CcdVisit"') == [{"ccdVisitId": 7}]

    renamed = parse_felis(
        {
            "name": "dp02_dc2_catalogs",
            "description": "second edition",
            "tables": [{"name": "Extra", "columns": [{"name": "x", "datatype": "int"}]}],
        }
    )
    db.publish(renamed)
    names = [t.qualified_name for t in db.catalog_tables()]
    assert "dp02_dc2_catalogs.Extra" in names
    assert "dp02_dc2_catalogs.Object" not in names
    schema_rows = _rows(
        db,
        'SELECT description FROM "TAP_SCHEMA"."schemas" WHERE schema_name = \'dp02_dc2_catalogs\'',
    )
    assert schema_rows == [{"description": "second edition"}]
    assert _rows(db, 'SELECT count(*) AS n FROM "TAP_SCHEMA"."keys"')[0]["n"] == 5


def test_publishing_a_changed_table_needs_replace(db: EmbeddedDatabase) -> None:
    first = parse_felis(
        {"name": "s", "tables": [{"name": "T", "columns": [{"name": "a", "datatype": "int"}]}]}
    )
    second = parse_felis(
        {"name": "s", "tables": [{"name": "T", "columns": [{"name": "a", "datatype": "double"}]}]}
    )
    db.publish(first)
    with pytest.raises(BackendError, match="different columns"):
        db.publish(second)
    assert db.catalog_tables()[0].columns[0].datatype == "int"  # rolled back
    db.publish(second, replace_tables=True)
    assert db.catalog_tables()[0].columns[0].datatype == "double"


@pytest.mark.skipif(not SDM.exists(), reason="rubin-sdm schemas not available")
def test_dp02_dc2_at_full_width(db: EmbeddedDatabase) -> None:
    schema = load_felis(SDM / "dp02_dc2.yaml")
    db.publish(schema)
    tables = {t.qualified_name: t for t in db.catalog_tables()}
    obj = tables["dp02_dc2_catalogs.Object"]
    assert len(obj.columns) == 991
    assert [c.name for c in obj.columns] == [c.name for c in schema.table("Object").columns]
    ra = obj.column("coord_ra")
    assert ra is not None
    assert (ra.unit, ra.ucd) == ("deg", "pos.eq.ra;meta.main")
    forced = tables["dp02_dc2_catalogs.ForcedSource"]
    assert [c.name for c in forced.columns[:3]] == ["objectId", "band", "psfFlux"]  # 10, 20, 30
    index = _rows(
        db,
        'SELECT column_index FROM "TAP_SCHEMA"."columns" WHERE '
        "table_name = 'dp02_dc2_catalogs.Object' AND column_name = 'coord_ra'",
    )
    assert index == [{"column_index": 3}]
    physical = db.query('SELECT * FROM dp02_dc2_catalogs."Object" LIMIT 0')
    assert physical.num_columns == 991
    assert [t.name for t in db.catalog_tables()][:3] == ["Object", "Source", "ForcedSource"]


def test_stream_yields_many_batches_lazily(db: EmbeddedDatabase) -> None:
    stream = db.stream("SELECT range AS i, range * 2 AS j FROM range(1000000)", batch_rows=10_000)
    batches = list(stream)
    assert len(batches) >= 50
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert all(b.num_rows <= 10_000 for b in batches)
    total = pa.Table.from_batches(batches)
    assert total.num_rows == 1_000_000
    assert total.column("j").to_pylist()[-1] == 1_999_998


def test_first_batch_arrives_before_the_scan_ends(db: EmbeddedDatabase) -> None:
    # A filter over a large range streams: the first batch is ready long before the last.
    stream = db.stream(
        "SELECT range AS i FROM range(300000000) WHERE range % 7 = 0", batch_rows=2048
    )
    started = time.perf_counter()
    first = next(stream)
    first_seconds = time.perf_counter() - started
    assert first.num_rows > 0
    stream.close()
    full = time.perf_counter()
    assert db.query("SELECT count(*) AS n FROM range(300000000) WHERE range % 7 = 0")
    full_seconds = time.perf_counter() - full
    assert first_seconds < full_seconds / 3


def test_empty_result_has_a_schema(db: EmbeddedDatabase) -> None:
    stream = db.stream("SELECT 1::BIGINT AS x WHERE false")
    assert stream.schema.names == ["x"]
    assert list(stream) == []


def test_ids_above_2_53_stay_exact(db: EmbeddedDatabase) -> None:
    big = 1_249_537_790_362_809_267
    batch = next(db.stream(f"SELECT {big}::BIGINT AS objectId"))
    assert batch.column(0).type == pa.int64()
    assert batch.column(0)[0].as_py() == big


def test_setup_statements_run_on_every_cursor(db: EmbeddedDatabase) -> None:
    sql = "SELECT adql_distance(10.0, 20.0, 10.0, 21.0) AS d"
    results = [next(db.stream(sql)).column(0)[0].as_py() for _ in range(3)]
    assert results == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "sql",
    [
        'DROP TABLE "TAP_SCHEMA"."keys"',
        'DELETE FROM "TAP_SCHEMA"."keys"',
        "SELECT 1; SELECT 2",
        "CREATE TABLE x AS SELECT 1",
    ],
)
def test_only_single_selects_stream(db: EmbeddedDatabase, sql: str) -> None:
    with pytest.raises(BackendError):
        list(db.stream(sql))
    assert _rows(db, 'SELECT count(*) AS n FROM "TAP_SCHEMA"."keys"') == [{"n": 5}]


def test_database_errors_become_backend_errors(db: EmbeddedDatabase) -> None:
    with pytest.raises(BackendError, match="does not exist"):
        list(db.stream('SELECT * FROM "nowhere"'))
    # A value the query cannot convert is the client's mistake (400), not the database's.
    with pytest.raises(QueryDataError, match="failed on a value: Conversion"):
        list(db.stream("SELECT 'x'::INTEGER AS bad FROM range(10)"))
    with pytest.raises(QueryDataError, match="Overflow"):
        list(db.stream("SELECT 9223372036854775807 + range AS bad FROM range(10)"))
    assert next(db.stream("SELECT 42 AS x")).column(0)[0].as_py() == 42


@pytest.mark.parametrize("how", ["interrupt", "close"])
def test_cancel_from_another_thread(db: EmbeddedDatabase, how: str) -> None:
    stream = db.stream(ENDLESS)
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            list(stream)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    worker = threading.Thread(target=consume)
    worker.start()
    time.sleep(0.3)
    stopped = time.perf_counter()
    getattr(stream, how)()
    worker.join(10)
    assert not worker.is_alive()
    assert time.perf_counter() - stopped < 5
    assert len(errors) == 1
    assert isinstance(errors[0], QueryCancelledError)
    assert db.interrupt_all() == 0
    assert next(db.stream("SELECT 1 AS x")).num_rows == 1


def test_timeout_cancels(db: EmbeddedDatabase) -> None:
    started = time.perf_counter()
    with pytest.raises(QueryTimeoutError, match=r"0\.2"):
        list(db.stream(ENDLESS, timeout=0.2))
    assert time.perf_counter() - started < 5


def test_closing_early_frees_the_cursor(db: EmbeddedDatabase) -> None:
    for _ in range(40):  # more than the idle pool holds
        stream = db.stream("SELECT * FROM range(10000000)", batch_rows=1000)
        assert next(stream).num_rows == 1000
        stream.close()
    assert db.interrupt_all() == 0
    assert next(db.stream("SELECT 7 AS x")).column(0)[0].as_py() == 7


def test_interrupt_all_stops_running_streams(db: EmbeddedDatabase) -> None:
    streams = [db.stream(ENDLESS) for _ in range(3)]
    errors: list[BaseException] = []

    def consume(i: int) -> None:
        try:
            list(streams[i])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    workers = [threading.Thread(target=consume, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    time.sleep(0.3)
    assert db.interrupt_all() == 3
    for w in workers:
        w.join(10)
    assert len(errors) == 3
    assert all(isinstance(e, QueryCancelledError) for e in errors)


def test_concurrent_readers_on_a_read_only_database(tmp_path: Path) -> None:
    with EmbeddedDatabase(tmp_path) as writer:
        writer.publish(load_felis(DEMO))
        with writer.transaction() as cur:
            cur.execute(
                'INSERT INTO dp02_dc2_catalogs."CcdVisit" (ccdVisitId, visitId) '
                "SELECT range, range % 100 FROM range(200000)"
            )
    db = EmbeddedDatabase(tmp_path, read_only=True, setup_statements=setup_statements())
    try:

        def work(k: int) -> tuple[int, int, float]:
            sql = (
                "SELECT count(*) AS n, sum(ccdVisitId) AS s, max(adql_distance(0, 0, 0, 1)) AS d "
                f'FROM dp02_dc2_catalogs."CcdVisit" WHERE visitId = {k % 100}'
            )
            batch = next(db.stream(sql))
            row = batch.to_pylist()[0]
            return int(row["n"]), int(row["s"]), float(row["d"])

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(work, range(200)))
        for k, (n, s, d) in enumerate(results):
            visit = k % 100
            expected = [i for i in range(visit, 200000, 100)]
            assert (n, s) == (len(expected), sum(expected))
            assert d == pytest.approx(1.0)
        assert len(db.catalog_tables()) == 8
        with pytest.raises(BackendError), db.transaction():
            pass
        db.ping()
    finally:
        db.close()
    with pytest.raises(BackendUnavailableError):
        db.ping()


def test_read_only_needs_an_existing_catalog(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError):
        EmbeddedDatabase(tmp_path / "missing", read_only=True)


def test_transactions_roll_back_on_error(db: EmbeddedDatabase) -> None:
    db.publish(load_felis(DEMO))

    def failing_change() -> None:
        with db.transaction() as cur:
            cur.execute('INSERT INTO dp02_dc2_catalogs."CcdVisit" (ccdVisitId) VALUES (1)')
            cur.execute('DELETE FROM "TAP_SCHEMA"."columns"')
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing_change()
    assert _rows(db, 'SELECT count(*) AS n FROM dp02_dc2_catalogs."CcdVisit"') == [{"n": 0}]
    assert _rows(db, 'SELECT count(*) AS n FROM "TAP_SCHEMA"."columns"')[0]["n"] > 0


def test_dropping_an_unfinished_stream_frees_its_cursor(db: EmbeddedDatabase) -> None:
    for _ in range(3):
        for batch in db.stream("SELECT * FROM range(10000000)", batch_rows=1000):
            assert batch.num_rows == 1000
            break  # the loop's stream is dropped unfinished
    assert db.interrupt_all() == 0
    assert next(db.stream("SELECT 8 AS x")).column(0)[0].as_py() == 8


def test_a_failing_setup_statement_is_a_backend_error(tmp_path: Path) -> None:
    with EmbeddedDatabase(tmp_path, setup_statements=["CREATE MACRO broken(x) AS nope(x"]) as db:
        with pytest.raises(BackendError, match="could not be prepared"):
            list(db.stream("SELECT 1 AS x"))
        with pytest.raises(BackendError):
            db.catalog_tables()


def test_setup_macros_are_temporary(tmp_path: Path) -> None:
    with EmbeddedDatabase(tmp_path, setup_statements=setup_statements()) as db:
        assert next(db.stream("SELECT adql_distance(0, 0, 0, 2) AS d")).column(0)[0].as_py() == 2
        persisted = db.query(
            "SELECT count(*) AS n FROM duckdb_functions() "
            "WHERE function_name = 'adql_distance' AND database_name <> 'temp'"
        ).to_pylist()
    assert persisted == [{"n": 0}]


def test_mixed_full_reads_and_early_closes_under_threads(db: EmbeddedDatabase) -> None:
    """Pooled cursors handed back after full reads must stay usable by other threads."""

    def work(k: int) -> int:
        total = 0
        for i in range(20):
            stream = db.stream(f"SELECT range AS v FROM range({1000 + k})", batch_rows=256)
            if (i + k) % 3 == 0:
                next(stream)
                stream.close()
                continue
            total += sum(b.num_rows for b in stream)
        return total

    with ThreadPoolExecutor(max_workers=8) as pool:
        totals = list(pool.map(work, range(16)))
    for k, total in enumerate(totals):
        full_reads = sum(1 for i in range(20) if (i + k) % 3 != 0)
        assert total == full_reads * (1000 + k)
    assert db.interrupt_all() == 0


def test_service_connection_keeps_order_by_and_limit_exact(tmp_path: Path) -> None:
    """The service opens the catalog without insertion-order preservation (so LIMIT streams
    instead of holding its rows back): ORDER BY must still order every batch of a long
    result, and LIMIT without ORDER BY must still return distinct rows of the table."""
    from tap_service.config import Config
    from tap_service.factory import open_backend

    rows = 300_000
    with EmbeddedDatabase(tmp_path) as writer:
        writer.publish(load_felis(DEMO))
        with writer.transaction() as cur:
            # Stored in a scrambled order (a permutation of 0..rows-1), so that insertion
            # order, id order and a parallel scan's order all differ.
            cur.execute(
                'INSERT INTO dp02_dc2_catalogs."CcdVisit" (ccdVisitId, visitId) '
                f"SELECT (range * 7919) % {rows}, range % 100 FROM range({rows})"
            )
    db = open_backend(Config(data_dir=tmp_path))
    assert isinstance(db, EmbeddedDatabase)
    try:
        table = 'dp02_dc2_catalogs."CcdVisit"'
        for direction, limit in (("", 250_000), (" DESC", 120_001)):
            sql = f"SELECT ccdVisitId FROM {table} ORDER BY ccdVisitId{direction} LIMIT {limit}"
            batches = list(db.stream(sql, batch_rows=4096))
            assert len(batches) > 10
            ids = pa.Table.from_batches(batches).column(0).to_pylist()
            expected = (
                list(range(limit)) if not direction else list(range(rows - 1, rows - 1 - limit, -1))
            )
            assert ids == expected
        batches = list(db.stream(f"SELECT ccdVisitId FROM {table} LIMIT 200000", batch_rows=4096))
        ids = pa.Table.from_batches(batches).column(0).to_pylist()
        assert len(ids) == 200_000 == len(set(ids))
        assert all(0 <= i < rows for i in ids)
    finally:
        db.close()


def test_service_connection_takes_the_configured_memory_limit(tmp_path: Path) -> None:
    """TAP_EMBEDDED_MEMORY_LIMIT reaches DuckDB (it bounds the block cache, docs/formats.md),
    and a sort larger than the limit still completes by spilling to the data directory."""
    from tap_service.config import Config
    from tap_service.factory import open_backend

    with EmbeddedDatabase(tmp_path) as writer:
        writer.publish(load_felis(DEMO))
        with writer.transaction() as cur:
            cur.execute(
                'INSERT INTO dp02_dc2_catalogs."CcdVisit" (ccdVisitId, visitId) '
                "SELECT range, range % 100 FROM range(2000000)"
            )
    db = open_backend(Config(data_dir=tmp_path, embedded_memory_limit="16MB"))
    assert isinstance(db, EmbeddedDatabase)
    try:
        (setting,) = db.stream("SELECT current_setting('memory_limit') AS m", batch_rows=10)
        assert setting.column(0).to_pylist()[0].endswith("MiB")
        assert float(setting.column(0).to_pylist()[0].split()[0]) <= 16
        sql = (
            'SELECT ccdVisitId FROM dp02_dc2_catalogs."CcdVisit" '
            "ORDER BY visitId DESC, ccdVisitId DESC"
        )
        ids = pa.Table.from_batches(list(db.stream(sql, batch_rows=65536))).column(0)
        assert len(ids) == 2_000_000
        assert ids[0].as_py() == 1_999_999
    finally:
        db.close()


def test_finished_queries_with_a_timeout_are_not_kept_alive(db: EmbeddedDatabase) -> None:
    """Every query schedules a timeout; once it ends, nothing of it may stay reachable.

    Under load a finished stream used to stay in the deadline heap until its timeout would
    have come (an hour for /sync), which `make bench-load` showed as steady RSS growth.
    """
    refs = []
    for i in range(300):
        stream = db.stream(f"SELECT {i} AS n, 'x' AS s", timeout=3600)
        assert [batch.num_rows for batch in stream] == [1]
        refs.append(weakref.ref(stream))
        del stream
    gc.collect()
    assert sum(ref() is not None for ref in refs) == 0
    assert len(db.deadlines) < 100
