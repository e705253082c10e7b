"""Per-user quotas: requests per minute and queries running at once.

Counters live in this process (``MemoryCounters``, the embedded default) or in Redis
(``RedisCounters``, shared by every API replica).  The rate limit uses fixed one-minute windows;
Retry-After is the time left in the window.  Running queries are the user's /sync queries in
flight (a counter taken for the query's duration) plus the user's async jobs QUEUED or EXECUTING
(read from the job store, which every process shares).  An async job over the limit is not
queued: PHASE=RUN on a PENDING job answers 429 and the job stays PENDING, to be run again
later; a job created with PHASE=RUN over the limit is not kept (429, no job).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from tap_service.config import QuotaConfig
from tap_service.exceptions import BackendUnavailableError, QuotaExceededError

# Retry-After of a refused concurrent query: a guess at when a slot frees, short enough that
# clients retrying find it quickly.
CONCURRENT_RETRY_SECONDS = 5


class Counters(Protocol):
    def hit(self, key: str, window: int) -> int:
        """Count one request in the window; returns the count so far in that window."""

    def add_running(self, key: str, delta: int) -> int:
        """Change the number of running queries; returns the new number."""


class MemoryCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, tuple[int, int]] = {}
        self._running: dict[str, int] = {}

    def hit(self, key: str, window: int) -> int:
        with self._lock:
            current, count = self._hits.get(key, (window, 0))
            count = count + 1 if current == window else 1
            self._hits[key] = (window, count)
            return count

    def add_running(self, key: str, delta: int) -> int:
        with self._lock:
            value = max(0, self._running.get(key, 0) + delta)
            if value:
                self._running[key] = value
            else:
                self._running.pop(key, None)
            return value


class RedisCounters:
    """The same counters in Redis, so that every API replica sees one user's totals."""

    # A replica killed mid-query never decrements; the counter forgets it after this long.
    RUNNING_TTL_SECONDS = 3600

    def __init__(self, url: str, prefix: str = "tap:quota:") -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        self._prefix = prefix

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except self._errors as exc:
            raise BackendUnavailableError("The quota counters (Redis) cannot be reached") from exc

    def hit(self, key: str, window: int) -> int:
        name = f"{self._prefix}rate:{key}:{window}"

        def run() -> int:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, 120)
            count, _ = pipe.execute()
            return int(count)

        result: int = self._call(run)
        return result

    def add_running(self, key: str, delta: int) -> int:
        name = f"{self._prefix}running:{key}"

        def run() -> int:
            pipe = self._redis.pipeline()
            pipe.incrby(name, delta)
            pipe.expire(name, self.RUNNING_TTL_SECONDS)
            value, _ = pipe.execute()
            if int(value) < 0:
                self._redis.set(name, 0, ex=self.RUNNING_TTL_SECONDS)
                return 0
            return int(value)

        result: int = self._call(run)
        return result

    def clear(self) -> None:
        """Drop every counter under the prefix (tests)."""
        for name in self._redis.scan_iter(f"{self._prefix}*"):
            self._redis.delete(name)


class QuotaService:
    """Enforces ``QuotaConfig`` for a user key; disabled, it lets everything through."""

    def __init__(
        self,
        config: QuotaConfig,
        counters: Counters,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._counters = counters
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    def check_rate(self, user: str) -> None:
        limit = self._config.requests_per_minute
        if not self._config.enabled or limit <= 0:
            return
        now = self._clock()
        window = int(now // 60)
        if self._counters.hit(user, window) > limit:
            retry = int((window + 1) * 60 - now) + 1
            raise QuotaExceededError(
                f"{user} made more than {limit} requests this minute; retry in {retry} s",
                retry_after=retry,
            )

    def _over(self, user: str, active_jobs: int, running: int) -> str | None:
        limit = self._config.concurrent_queries
        if running + active_jobs > limit:
            return (
                f"{user} already runs {limit} queries at once (the limit); wait for one to finish"
            )
        return None

    @contextmanager
    def running_query(self, user: str, active_jobs: Callable[[], int]) -> Iterator[None]:
        """Hold one of the user's concurrent-query slots for a /sync query."""
        limit = self._config.concurrent_queries
        if not self._config.enabled or limit <= 0:
            yield
            return
        running = self._counters.add_running(user, 1)
        try:
            message = self._over(user, active_jobs(), running)
            if message:
                raise QuotaExceededError(message, retry_after=CONCURRENT_RETRY_SECONDS)
            yield
        finally:
            self._counters.add_running(user, -1)

    def check_job_start(self, user: str, active_jobs: int) -> None:
        """Before an async job is queued: its owner's running queries must leave a slot."""
        limit = self._config.concurrent_queries
        if not self._config.enabled or limit <= 0:
            return
        running = self._counters.add_running(user, 0)
        message = self._over(user, active_jobs + 1, running)
        if message:
            raise QuotaExceededError(
                message + "; the job was not queued (run it again later)",
                retry_after=CONCURRENT_RETRY_SECONDS,
            )
