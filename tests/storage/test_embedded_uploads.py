"""EmbeddedDatabase.stream_with_tables: an uploaded table exists for its own query only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.exceptions import BackendError
from tap_service.storage.embedded import EmbeddedDatabase
from tap_service.storage.streams import QueryCancelledError

UPLOAD = pa.table({"c0": list(range(1000)), "c1": [float(i) / 10 for i in range(1000)]})
SELECT = 'SELECT SUM("c0") AS s FROM "temp"."tap_upload_t"'


@pytest.fixture
def db(tmp_path: Path) -> Iterator[EmbeddedDatabase]:
    EmbeddedDatabase(tmp_path).close()  # create the file; serve it read-only like the API
    database = EmbeddedDatabase(tmp_path, read_only=True, setup_statements=setup_statements())
    yield database
    database.close()


def _total(batches: Iterator[pa.RecordBatch]) -> int:
    return sum(int(v) for batch in batches for v in batch.column(0).to_pylist())


def test_the_table_is_visible_to_its_query_on_a_read_only_catalog(db: EmbeddedDatabase) -> None:
    assert _total(db.stream_with_tables(SELECT, {"tap_upload_t": UPLOAD})) == sum(range(1000))


def test_other_queries_never_see_it_during_or_after(db: EmbeddedDatabase) -> None:
    running = db.stream_with_tables(
        'SELECT "c0" FROM "temp"."tap_upload_t"', {"tap_upload_t": UPLOAD}, batch_rows=10
    )
    next(running)  # the query holds its cursor, with the table registered on it
    with pytest.raises(BackendError, match="tap_upload_t"):
        _total(db.stream(SELECT))
    running.close()
    # Every cursor back in the pool has lost the table, whichever the next query takes.
    for _ in range(4):
        with pytest.raises(BackendError, match="tap_upload_t"):
            _total(db.stream(SELECT))


def test_concurrent_queries_each_see_their_own_table(db: EmbeddedDatabase) -> None:
    results: dict[int, int] = {}

    def run(n: int) -> None:
        table = pa.table({"c0": [n] * 100, "c1": [0.0] * 100})
        results[n] = _total(db.stream_with_tables(SELECT, {"tap_upload_t": table}))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: 100 * n for n in range(8)}


def test_interrupt_works_with_uploads(db: EmbeddedDatabase) -> None:
    stream = db.stream_with_tables(
        # 10^11 pairs, none passing: minutes unless interrupted.
        'SELECT count(*) FROM "temp"."tap_upload_t" t, range(100000000) b '
        'WHERE t."c0" + b.range < 0',
        {"tap_upload_t": UPLOAD},
    )
    timer = threading.Timer(0.3, stream.interrupt)
    timer.start()
    with pytest.raises(QueryCancelledError):
        _total(stream)
    timer.join()
