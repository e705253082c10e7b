"""The job store on SQLite, MariaDB and PostgreSQL: schema by alembic, compare-and-set phases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tap_service.storage.jobs import JobStore, sqlite_url
from tap_service.uws import ErrorType, Job, JobResult, Phase
from tests.fixtures.services import mariadb_jobs_url, postgres_jobs_url


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "jobs.sqlite3")
    elif request.param == "mariadb":
        url = mariadb_jobs_url()
    else:
        url = postgres_jobs_url()
    store = JobStore.from_url(url)
    JobStore.from_url(url).close()  # migrating twice is harmless
    yield store
    store.close()


def new_job(job_id: str, created: datetime, **kw: object) -> Job:
    values: dict[str, object] = {
        "id": job_id,
        "owner": None,
        "phase": Phase.PENDING,
        "run_id": None,
        "parameters": (("QUERY", "SELECT 'x' FROM t -- ü"), ("LANG", "ADQL")),
        "creation_time": created,
        "execution_duration": 60,
        "destruction_time": created + timedelta(days=1),
    }
    values.update(kw)
    return Job(**values)  # type: ignore[arg-type]


def test_round_trip_and_phases(store: JobStore) -> None:
    created = datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    store.add(new_job("j1", created, run_id="run'; DROP TABLE tap_uws_job; --"))
    job = store.get("j1")
    assert job is not None
    assert job.creation_time == created
    assert job.run_id == "run'; DROP TABLE tap_uws_job; --"
    assert job.parameter("query") == "SELECT 'x' FROM t -- ü"
    assert not store.mark_executing("j1")  # PENDING cannot jump to EXECUTING
    assert store.mark_queued("j1")
    assert store.mark_executing("j1")
    assert store.phase("j1") is Phase.EXECUTING
    assert store.mark_completed(
        "j1", [JobResult(id="result", key="j1/result.xml", mime_type="text/xml", size=10)]
    )
    assert not store.mark_aborted("j1")  # a finished job stays finished
    job = store.get("j1")
    assert job is not None
    assert job.phase is Phase.COMPLETED
    assert job.results[0].size == 10
    assert job.start_time is not None
    assert job.end_time is not None


def test_filters_stale_and_expired(store: JobStore) -> None:
    base = datetime(2026, 5, 1, tzinfo=UTC)
    for i in range(4):
        store.add(new_job(f"f{i}", base + timedelta(minutes=i)))
    assert [j.id for j in store.list_jobs()] == ["f3", "f2", "f1", "f0"]
    assert [j.id for j in store.list_jobs(last=2)] == ["f3", "f2"]
    assert [j.id for j in store.list_jobs(after=base + timedelta(minutes=1))] == ["f3", "f2"]
    store.mark_queued("f1")
    assert [j.id for j in store.list_jobs(phases=[Phase.QUEUED])] == ["f1"]
    store.mark_executing("f1")
    assert store.stale_executing(datetime.now(UTC) - timedelta(seconds=60)) == []
    assert store.stale_executing(datetime.now(UTC) + timedelta(seconds=1)) == ["f1"]
    assert store.mark_error("f1", "worker lost", ErrorType.TRANSIENT)
    job = store.get("f1")
    assert job is not None
    assert job.error_type is ErrorType.TRANSIENT
    expired = store.expired(base + timedelta(days=1, minutes=1, seconds=30))
    assert sorted(j.id for j in expired) == ["f0", "f1"]
    assert store.delete("f0")
    assert store.get("f0") is None
    assert store.get("nope") is None
    assert not store.delete("nope")
