"""ABORT and EXECUTIONDURATION on the MySQL-protocol backend: the statement leaves MariaDB.

The job runs through the Qserv-dialect backend (``RoutingBackend`` over MariaDB, the Qserv
stand-in): the ADQL is checked against a TAP_SCHEMA snapshot, rendered for Qserv and sent to
MariaDB, where it shows in the server's process list until the job is aborted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.config import Config, PartitionedTableConfig, QservConfig
from tap_service.services.demo_catalog import build_demo_catalog
from tap_service.services.jobs import InProcessJobQueue, JobRunner, JobService
from tap_service.services.tapschema import TapSchemaService
from tap_service.storage.embedded import EmbeddedDatabase
from tap_service.storage.jobs import JobStore, sqlite_url
from tap_service.storage.qserv import MySQLBackend, RoutingBackend
from tap_service.storage.results import LocalResultStore
from tap_service.uws import Phase
from tests.fixtures.services import mariadb_admin

CATALOG_DB = f"tap_test_abort_{os.getpid()}"
MARKER = f"n_abort_{os.getpid()}"
# 400^3 = 64 million rows through SIN(): many seconds of MariaDB time.
SLOW_QUERY = (
    f"SELECT COUNT(*) AS {MARKER} FROM dp02_dc2_catalogs.Object AS a, "
    "dp02_dc2_catalogs.Object AS b, dp02_dc2_catalogs.Object AS c "
    "WHERE SIN(a.coord_ra + b.coord_dec + c.coord_ra) > 2"
)


@pytest.fixture(scope="module")
def mariadb_catalog() -> Iterator[None]:
    con = mariadb_admin()
    cur = con.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {CATALOG_DB}")
    cur.execute(f"CREATE DATABASE {CATALOG_DB}")
    cur.execute(
        f"CREATE TABLE {CATALOG_DB}.Object (objectId BIGINT PRIMARY KEY, coord_ra DOUBLE, "
        "coord_dec DOUBLE)"
    )
    cur.executemany(
        f"INSERT INTO {CATALOG_DB}.Object VALUES (%s, %s, %s)",
        [(i, 50.0 + i * 0.01, -30.0 - i * 0.01) for i in range(400)],
    )
    try:
        yield
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {CATALOG_DB}")
        con.close()


@pytest.fixture
def jobs(
    mariadb_catalog: None, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> Iterator[tuple[JobService, JobRunner]]:
    data_dir = tmp_path_factory.mktemp("abort-catalog")
    with EmbeddedDatabase(data_dir, setup_statements=setup_statements()) as db:
        build_demo_catalog(db, n_objects=50, n_forced_per_object=1, seed=3)
    snapshot = EmbeddedDatabase(data_dir, read_only=True)
    tap_schema = TapSchemaService(snapshot)
    backend = RoutingBackend(
        MySQLBackend("mysql+pymysql://root@127.0.0.1:3306/"),
        MySQLBackend(f"mysql+pymysql://root@127.0.0.1:3306/{CATALOG_DB}_ts"),
        databases={"dp02_dc2_catalogs": CATALOG_DB},
    )
    config = Config(
        data_dir=tmp_path,
        qserv=QservConfig(
            partitioning={
                "dp02_dc2_catalogs.Object": PartitionedTableConfig(director_key="objectId")
            }
        ),
    )
    store = JobStore.from_url(sqlite_url(tmp_path / "jobs.sqlite3"))
    results = LocalResultStore(tmp_path / "results")
    runner = JobRunner(config, store, results, lambda: backend, lambda: tap_schema)
    queue = InProcessJobQueue(runner, 2)
    try:
        yield JobService(config, store, queue, results), runner
    finally:
        queue.close()
        backend.close()
        snapshot.close()
        store.close()


def running_statements() -> list[tuple[int, str]]:
    con = mariadb_admin()
    try:
        cur = con.cursor()
        cur.execute(
            "SELECT ID, INFO FROM information_schema.PROCESSLIST "
            "WHERE COMMAND = 'Query' AND INFO LIKE %s",
            (f"%{MARKER}%",),
        )
        return [(int(row[0]), str(row[1])) for row in cur.fetchall() if "PROCESSLIST" not in row[1]]
    finally:
        con.close()


def wait_for(predicate: object, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_abort_kills_the_statement_on_the_server(jobs: tuple[JobService, JobRunner]) -> None:
    service, runner = jobs
    job = service.create({"lang": "ADQL", "query": SLOW_QUERY, "phase": "RUN"})
    assert wait_for(lambda: running_statements(), 15), "the query never reached MariaDB"
    assert service.get(job.id).phase is Phase.EXECUTING
    statements = running_statements()
    assert CATALOG_DB in statements[0][1]  # the physical database name, routed
    aborted_at = time.monotonic()
    assert service.abort(job.id).phase is Phase.ABORTED
    assert wait_for(lambda: not running_statements(), 5), (
        f"still in MariaDB's process list after ABORT: {running_statements()}"
    )
    assert time.monotonic() - aborted_at < 3
    assert wait_for(lambda: not runner.running(), 5)
    assert service.get(job.id).phase is Phase.ABORTED


def test_execution_duration_kills_the_statement(jobs: tuple[JobService, JobRunner]) -> None:
    service, _ = jobs
    job = service.create(
        {"lang": "ADQL", "query": SLOW_QUERY, "executionduration": "2", "phase": "RUN"}
    )
    assert wait_for(lambda: running_statements(), 15), "the query never reached MariaDB"
    assert wait_for(lambda: service.get(job.id).phase is Phase.ERROR, 10)
    assert "EXECUTIONDURATION of 2 s" in (service.get(job.id).error_message or "")
    assert wait_for(lambda: not running_statements(), 3), running_statements()


def test_job_progress_reports_the_qserv_chunk_count(jobs: tuple[JobService, JobRunner]) -> None:
    """jobInfo progress carries the chunks the query touches (issue: know a query's cost)."""
    service, _ = jobs
    by_id = service.create(
        {
            "lang": "ADQL",
            "phase": "RUN",
            "query": "SELECT objectId FROM dp02_dc2_catalogs.Object WHERE objectId IN (1, 2, 3)",
        }
    )
    scan = service.create(
        {"lang": "ADQL", "phase": "RUN", "query": "SELECT COUNT(*) FROM dp02_dc2_catalogs.Object"}
    )
    for job in (by_id, scan):
        assert wait_for(lambda job=job: service.get(job.id).phase is Phase.COMPLETED, 15), (
            service.get(job.id).error_message
        )

    def chunks(job_id: str) -> tuple[int, int]:
        progress = service.get(job_id).progress or ""
        assert progress.endswith(" chunks"), progress
        counted = progress.split("; ")[1].removesuffix(" chunks")
        touched, total = counted.split(" of ")
        return int(touched), int(total)

    assert service.get(by_id.id).progress.startswith("3 rows read")  # type: ignore[union-attr]
    assert chunks(by_id.id)[0] == 3  # one chunk per director-key value (secondary index)
    touched, total = chunks(scan.id)
    assert touched == total == chunks(by_id.id)[1] > 1000  # a full scan touches every chunk
