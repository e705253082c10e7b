"""The fetch/encode split: a bounded read-ahead thread between the database and the writer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pyarrow as pa
import pytest

from tap_service.services.query import Prefetch


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
