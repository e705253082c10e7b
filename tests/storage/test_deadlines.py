"""The shared deadline thread fires in order, skips cancelled ones, wakes for earlier ones."""

from __future__ import annotations

import threading
import time
import weakref

from tap_service.storage.deadlines import Deadlines


def test_fires_in_deadline_order_and_skips_cancelled() -> None:
    deadlines = Deadlines()
    fired: list[str] = []
    done = threading.Event()
    deadlines.schedule(0.30, lambda: (fired.append("late"), done.set()))
    cancelled = deadlines.schedule(0.10, lambda: fired.append("cancelled"))
    deadlines.schedule(0.05, lambda: fired.append("early"))  # earlier than the head: wakes
    cancelled.cancel()
    assert done.wait(5)
    assert fired == ["early", "late"]


def test_one_thread_serves_many_deadlines() -> None:
    deadlines = Deadlines(name="deadline-test")
    count = threading.Semaphore(0)
    before = threading.active_count()
    start = time.monotonic()
    for i in range(200):
        deadlines.schedule(0.01 + i * 0.0005, count.release)
    assert threading.active_count() <= before + 1
    for _ in range(200):
        assert count.acquire(timeout=5)
    assert time.monotonic() - start < 5


def test_cancelled_deadlines_release_their_callbacks_and_entries() -> None:
    """A finished query must not stay reachable from the heap until its timeout comes."""
    deadlines = Deadlines(name="deadline-compact")
    deadlines.schedule(3600, lambda: None)  # starts the thread; stays

    class Stream:
        def expire(self) -> None:
            raise AssertionError("a cancelled deadline fired")

    refs = []
    for _ in range(10_000):
        stream = Stream()
        refs.append(weakref.ref(stream))
        deadlines.schedule(3600, stream.expire).cancel()
        del stream
    assert sum(ref() is not None for ref in refs) == 0
    assert len(deadlines) <= 200  # 10,001 scheduled; the cancelled are compacted away


def test_a_fired_deadline_cannot_be_cancelled_into_the_stale_count() -> None:
    deadlines = Deadlines(name="deadline-fired")
    fired = threading.Event()
    deadline = deadlines.schedule(0.01, fired.set)
    assert fired.wait(5)
    deadline.cancel()  # a query that ends right after its timeout fired
    deadline.cancel()
    assert deadlines._stale == 0
    late = threading.Event()
    deadlines.schedule(0.01, late.set)
    assert late.wait(5)
