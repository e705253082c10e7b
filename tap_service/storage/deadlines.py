"""One thread that fires query timeouts, instead of a timer thread per query.

Starting a ``threading.Timer`` per query cost about 2 ms of a cone search's 4 ms in the server
(thread start-up waits for the new thread to take the GIL); a heap of deadlines served by one
daemon thread costs microseconds per query.

Nearly every deadline is cancelled (the query ends long before its timeout), so cancelling must
free what the entry holds at once: the callback is a bound method of the query stream, and a
heap entry that kept it alive until its time came (an hour for a sync timeout) held every
finished stream of the last hour (seen as steady memory growth under load).  A cancelled entry
drops its callback, and the heap is rebuilt without cancelled entries whenever they make up
more than half of it, so its size follows the queries running, not the queries run.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

# Below this many entries a rebuild is not worth it; stale entries are dropped at the head.
_COMPACT_MIN = 64


class Deadline:
    """A scheduled callback; ``cancel`` makes it a no-op if it has not fired yet."""

    __slots__ = ("_owner", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None], owner: Deadlines) -> None:
        self.when = when
        self.callback: Callable[[], None] | None = callback
        self.cancelled = False
        self._owner: Deadlines | None = owner

    def cancel(self) -> None:
        owner = self._owner
        if owner is not None:
            owner._cancelled(self)


class Deadlines:
    """Runs callbacks at their deadlines on one lazily started daemon thread."""

    def __init__(self, name: str = "query-deadlines") -> None:
        self._name = name
        self._heap: list[tuple[float, int, Deadline]] = []
        self._stale = 0  # cancelled entries still in the heap
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        """Entries held, cancelled ones not yet dropped included (for tests and metrics)."""
        with self._wake:
            return len(self._heap)

    def schedule(self, delay: float, callback: Callable[[], None]) -> Deadline:
        deadline = Deadline(time.monotonic() + delay, callback, self)
        with self._wake:
            heapq.heappush(self._heap, (deadline.when, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._wake.notify()  # earlier than anything the thread waits for
        return deadline

    def _cancelled(self, deadline: Deadline) -> None:
        with self._wake:
            if deadline.cancelled or deadline._owner is None:
                return  # cancelled twice, or already fired
            deadline.cancelled = True
            deadline.callback = None
            deadline._owner = None
            self._stale += 1
            if self._stale > _COMPACT_MIN and self._stale * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._stale = 0

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                when, _, deadline = self._heap[0]
                if deadline.cancelled:
                    heapq.heappop(self._heap)
                    self._stale -= 1
                    continue
                delay = when - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                callback, deadline.callback, deadline._owner = deadline.callback, None, None
            if callback is not None:
                callback()
