"""QuotaService on both counter stores: in memory, and Redis as production runs it."""

from __future__ import annotations

import secrets

import pytest

from tap_service.config import QuotaConfig
from tap_service.exceptions import QuotaExceededError
from tap_service.services.quotas import Counters, MemoryCounters, QuotaService, RedisCounters
from tests.fixtures.services import redis_url


@pytest.fixture(params=["memory", "redis"])
def counters(request: pytest.FixtureRequest) -> Counters:
    if request.param == "memory":
        return MemoryCounters()
    # Fails (never skips) naming the command that starts Redis when it is not running.
    return RedisCounters(redis_url(), prefix=f"tap:quota:test:{secrets.token_hex(4)}:")


def service(counters: Counters, now: list[float], *, rate: int, concurrent: int) -> QuotaService:
    config = QuotaConfig(enabled=True, requests_per_minute=rate, concurrent_queries=concurrent)
    return QuotaService(config, counters, clock=lambda: now[0])


def test_rate_limit_per_user_and_window(counters: Counters) -> None:
    now = [6000.0 + 50]
    quotas = service(counters, now, rate=3, concurrent=0)
    for _ in range(3):
        quotas.check_rate("alice")
    with pytest.raises(QuotaExceededError) as caught:
        quotas.check_rate("alice")
    assert caught.value.retry_after == 11
    quotas.check_rate("bob")
    now[0] = 6060.0  # the next minute
    quotas.check_rate("alice")


def test_concurrent_slots_are_held_and_released(counters: Counters) -> None:
    now = [0.0]
    quotas = service(counters, now, rate=0, concurrent=2)
    with quotas.running_query("alice", lambda: 0), quotas.running_query("alice", lambda: 0):
        with pytest.raises(QuotaExceededError), quotas.running_query("alice", lambda: 0):
            pass
        with quotas.running_query("bob", lambda: 1):
            pass
        with pytest.raises(QuotaExceededError):
            quotas.check_job_start("alice", 0)
    # Released, including the refused attempt: two async jobs fit again, a third does not.
    with quotas.running_query("alice", lambda: 1):
        pass
    quotas.check_job_start("alice", 1)
    with pytest.raises(QuotaExceededError, match="not queued"):
        quotas.check_job_start("alice", 2)


def test_disabled_quotas_let_everything_through(counters: Counters) -> None:
    quotas = QuotaService(QuotaConfig(enabled=False, requests_per_minute=1), counters)
    for _ in range(5):
        quotas.check_rate("alice")
    quotas.check_job_start("alice", 100)
