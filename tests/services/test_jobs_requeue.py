"""The sweep sends again a QUEUED job whose broker message is gone, and only then.

Whether the broker queue is empty does not matter: a job's message is looked for job by job, so
a lost message is replaced while other jobs keep the queue busy (after a Redis restart the API
goes on accepting jobs, and workers may be slow to drain them).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import timedelta
from pathlib import Path

from tap_service.config import Config
from tap_service.exceptions import QueueUnavailableError
from tap_service.services.jobs import JobService
from tap_service.storage.jobs import JobStore, sqlite_url, utcnow
from tap_service.storage.results import LocalResultStore
from tap_service.uws import Job, Phase


class InProcessQueue:
    """A queue with no broker to ask (the in-process runner): the sweep re-sends nothing."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def enqueue(self, job_id: str) -> None:
        self.sent.append(job_id)

    def abort(self, job_id: str) -> None:
        return None

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None


class FakeBrokerQueue(InProcessQueue):
    """A broker holding messages for ``held`` (and ``waiting`` messages of other jobs)."""

    def __init__(self, held: Collection[str] = (), waiting: int = 0) -> None:
        super().__init__()
        self.held = set(held)
        self.waiting = waiting
        self.looks: list[set[str]] = []
        self.on_look: Callable[[int], None] | None = None
        self.down = False

    def depth(self) -> int:
        return self.waiting + len(self.held)

    def holding(self, job_ids: Collection[str], *, taken_within: float) -> set[str]:
        assert taken_within == 5  # stale_after_seconds
        if self.down:
            raise QueueUnavailableError("The job queue (Redis at here:6379) cannot be reached")
        self.looks.append(set(job_ids))
        if self.on_look is not None:
            self.on_look(len(self.looks))
        return self.held & set(job_ids)


JOBS = [
    ("old", Phase.QUEUED, 60),
    ("older", Phase.QUEUED, 90),
    ("young", Phase.QUEUED, 1),
    ("running", Phase.EXECUTING, 60),
    ("idle", Phase.PENDING, 60),
]


def service(tmp_path: Path, queue: object) -> tuple[JobService, JobStore]:
    config = Config(data_dir=tmp_path, uws={"stale_after_seconds": 5})
    store = JobStore.from_url(sqlite_url(tmp_path / "jobs.sqlite3"))
    jobs = JobService(config, store, queue, LocalResultStore(tmp_path / "results"))  # type: ignore[arg-type]
    now = utcnow()
    for job_id, phase, age in JOBS:
        store.add(Job(id=job_id, owner=None, phase=phase, run_id=None, parameters=(),
                      creation_time=now - timedelta(seconds=age),
                      destruction_time=now + timedelta(days=1)))  # fmt: skip
    return jobs, store


def test_old_queued_jobs_without_a_message_are_sent_again(tmp_path: Path) -> None:
    queue = FakeBrokerQueue()
    jobs, store = service(tmp_path, queue)
    assert jobs.sweep()["requeued"] == 2
    assert queue.sent == ["older", "old"]  # oldest first
    # only QUEUED jobs older than stale_after are looked for
    assert queue.looks[0] == {"old", "older"}
    store.close()


def test_a_lost_message_is_replaced_while_other_jobs_fill_the_queue(tmp_path: Path) -> None:
    queue = FakeBrokerQueue(held={"older"}, waiting=500)
    jobs, store = service(tmp_path, queue)
    assert queue.depth() > 0
    assert jobs.sweep()["requeued"] == 1
    assert queue.sent == ["old"]
    store.close()


def test_nothing_is_sent_for_jobs_whose_message_is_held(tmp_path: Path) -> None:
    queue = FakeBrokerQueue(held={"old", "older"})
    jobs, store = service(tmp_path, queue)
    assert jobs.sweep()["requeued"] == 0
    assert queue.sent == []
    store.close()


def test_a_message_seen_at_the_second_look_is_not_duplicated(tmp_path: Path) -> None:
    # A worker was taking "old"'s message (out of the list, not yet in kombu's unacked hash)
    # during the first look.
    queue = FakeBrokerQueue()

    def appears(look: int) -> None:
        if look == 2:
            queue.held.add("old")

    queue.on_look = appears
    jobs, store = service(tmp_path, queue)
    assert jobs.sweep()["requeued"] == 1
    assert queue.sent == ["older"]
    assert queue.looks == [{"old", "older"}, {"old", "older"}]
    store.close()


def test_a_job_that_leaves_queued_meanwhile_is_not_sent(tmp_path: Path) -> None:
    queue = FakeBrokerQueue()
    jobs, store = service(tmp_path, queue)
    queue.on_look = lambda look: store.mark_executing("old") if look == 2 else None
    assert jobs.sweep()["requeued"] == 1
    assert queue.sent == ["older"]
    store.close()


def test_a_broker_outage_sends_nothing_and_the_sweep_goes_on(tmp_path: Path) -> None:
    queue = FakeBrokerQueue()
    queue.down = True
    jobs, store = service(tmp_path, queue)
    assert jobs.sweep() == {"lost": 0, "requeued": 0, "destroyed": 0}
    assert queue.sent == []
    store.close()


def test_the_in_process_runner_is_left_alone(tmp_path: Path) -> None:
    queue = InProcessQueue()
    jobs, store = service(tmp_path, queue)
    assert jobs.sweep()["requeued"] == 0
    assert queue.sent == []
    store.close()
