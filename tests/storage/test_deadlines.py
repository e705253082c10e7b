"""The shared deadline thread fires in order, skips cancelled ones, wakes for earlier ones."""

from __future__ import annotations

import threading
import time

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
