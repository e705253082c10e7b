"""The sweep sends again a QUEUED job whose broker message is gone, and only then."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tap_service.config import Config
from tap_service.services.jobs import JobService
from tap_service.storage.jobs import JobStore, sqlite_url, utcnow
from tap_service.storage.results import LocalResultStore
from tap_service.uws import Job, Phase


class FakeBrokerQueue:
    def __init__(self, depth: int) -> None:
        self.waiting = depth
        self.sent: list[str] = []

    def enqueue(self, job_id: str) -> None:
        self.sent.append(job_id)

    def abort(self, job_id: str) -> None:
        return None

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None

    def depth(self) -> int:
        return self.waiting


def service(tmp_path: Path, queue: FakeBrokerQueue) -> tuple[JobService, JobStore]:
    config = Config(data_dir=tmp_path, uws={"stale_after_seconds": 5})
    store = JobStore.from_url(sqlite_url(tmp_path / "jobs.sqlite3"))
    jobs = JobService(config, store, queue, LocalResultStore(tmp_path / "results"))
    now = utcnow()
    for job_id, phase, age in [("old", Phase.QUEUED, 60), ("young", Phase.QUEUED, 1),
                               ("running", Phase.EXECUTING, 60), ("idle", Phase.PENDING, 60)]:
        store.add(Job(id=job_id, owner=None, phase=phase, run_id=None, parameters=(),
                      creation_time=now - timedelta(seconds=age),
                      destruction_time=now + timedelta(days=1)))
    return jobs, store


def test_old_queued_job_is_sent_again_when_the_broker_is_empty(tmp_path: Path) -> None:
    queue = FakeBrokerQueue(depth=0)
    jobs, store = service(tmp_path, queue)
    assert jobs.sweep()["requeued"] == 1
    assert queue.sent == ["old"]
    store.close()


def test_nothing_is_sent_while_messages_wait(tmp_path: Path) -> None:
    queue = FakeBrokerQueue(depth=3)
    jobs, store = service(tmp_path, queue)
    assert jobs.sweep()["requeued"] == 0
    assert queue.sent == []
    store.close()
