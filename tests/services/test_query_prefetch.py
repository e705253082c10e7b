"""The fetch/encode split: a bounded read-ahead thread between the database and the writer."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io.votable import parse

from tap_service.config import Config
from tap_service.services.query import Prefetch, PreparedQuery, QueryService
from tap_service.votable import Field, make_writer


def _batches(
    produced: list[int], count: int, fail_at: int | None = None
) -> Iterator[pa.RecordBatch]:
    for index in range(count):
        if index == fail_at:
            raise RuntimeError("disk on fire")
        produced.append(index)
        yield pa.record_batch([pa.array([index])], names=["i"])


def _wait_for(condition: object, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():  # type: ignore[operator]
        time.sleep(0.01)


def test_reads_everything_in_order() -> None:
    produced: list[int] = []
    values = [batch.column(0)[0].as_py() for batch in Prefetch(_batches(produced, 50))]
    assert values == list(range(50))


def test_backpressure_bounds_the_read_ahead() -> None:
    """A consumer that does not read stops the database reader after one batch ahead."""
    produced: list[int] = []
    prefetch = Prefetch(_batches(produced, 1000), depth=1)
    _wait_for(lambda: len(produced) >= 2)
    time.sleep(0.2)
    assert len(produced) <= 2  # one in the queue, one waiting to be put
    next(prefetch)
    _wait_for(lambda: len(produced) >= 3)
    time.sleep(0.1)
    assert len(produced) <= 3
    prefetch.close()


def test_errors_reach_the_consumer() -> None:
    produced: list[int] = []
    prefetch = Prefetch(_batches(produced, 10, fail_at=3))
    assert [next(prefetch).column(0)[0].as_py() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(RuntimeError, match="disk on fire"):
        next(prefetch)
    with pytest.raises(StopIteration):
        next(prefetch)


def test_close_stops_the_reader_and_the_source() -> None:
    closed = threading.Event()
    produced: list[int] = []

    def source() -> Iterator[pa.RecordBatch]:
        try:
            yield from _batches(produced, 10_000)
        finally:
            closed.set()

    prefetch = Prefetch(source())
    next(prefetch)
    prefetch.close()
    assert closed.wait(2.0)
    count = len(produced)
    time.sleep(0.1)
    assert len(produced) == count
    with pytest.raises(StopIteration):
        next(prefetch)


class FailingBackend:
    """Hands over ``good`` full batches, then fails like a lost database connection."""

    dialect = "embedded"

    def __init__(self, good: int) -> None:
        self.good = good

    def stream(
        self, sql: str, *, batch_rows: int = 65536, timeout: float | None = None
    ) -> Iterator[pa.RecordBatch]:
        for index in range(self.good):
            start = index * batch_rows
            yield pa.record_batch([pa.array(range(start, start + batch_rows))], names=["n"])
        raise ConnectionError("Lost connection to server during query\nsecond line")

    def ping(self) -> None:
        pass


@pytest.mark.parametrize("response_format", ["votable", "votable/td", "csv", "tsv", "parquet"])
def test_error_after_rows_ends_every_format(response_format: str) -> None:
    """Through the service (read-ahead thread included): rows, then the format's error end."""
    config = Config(data_dir=Path("unused"), batch_rows=1000)
    service = QueryService(config, FailingBackend(good=3), None)  # type: ignore[arg-type]
    writer = make_writer(response_format, [Field(name="n", datatype="long")])
    prepared = PreparedQuery(checked=None, sql="SELECT n", maxrec=10_000, writer=writer)  # type: ignore[arg-type]
    document = b"".join(service.stream(prepared))
    message = "The database failed while sending rows: Lost connection to server during query"
    if response_format.startswith("votable"):
        votable = parse(io.BytesIO(document), verify="exception")
        assert len(votable.get_first_table().array) == 3000
        infos = [(i.value, i.content) for i in votable.resources[0].infos]
        assert infos[-1] == ("ERROR", message)
    elif response_format == "parquet":
        assert pq.read_table(io.BytesIO(document)).num_rows == 3000
        content = pq.read_metadata(io.BytesIO(document)).metadata[b"IVOA.VOTable-Parquet.content"]
        assert b'value="ERROR">' + message.encode() in content
    else:
        lines = document.decode().splitlines()
        assert len(lines) == 1 + 3000 + 1
        assert lines[-1] == f"QUERY_STATUS=ERROR: {message}"
