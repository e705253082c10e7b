"""Scale-out on loopback: 2 API processes and 2 Celery workers share Redis, MariaDB and S3.

The machine's MariaDB holds the Qserv stand-in (small demo catalog, scisql functions) and the
job store; Redis is the broker; moto in server mode is the S3 endpoint.  200 async jobs are
created alternately on both APIs; one worker is killed with SIGKILL while jobs run.

The bound, documented in docs/deployment.md: a job EXECUTING on the killed worker ends in ERROR
once its heartbeat is older than TAP_UWS__STALE_AFTER_SECONDS (plus one sweep interval); a job
whose message the killed worker had reserved but not started is delivered again after
TAP_REDIS__VISIBILITY_TIMEOUT_SECONDS and runs on the survivor.  So every job is final within
visibility timeout + stale time + sweep interval + the remaining work, and none is lost.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pymysql
import pytest
import redis
import requests

from tap_service.services.standin import build_standin
from tap_service.storage.jobs import JobStore
from tap_service.storage.mysql_tap_schema import MySQLTapSchema
from tests.adql.conftest import MARIADB_START
from tests.fixtures.services import (
    MotoServer,
    free_port,
    mariadb_jobs_url,
    moto_server,
    redis_url,
)
from tests.integration.conftest import RunningService, start_service, stop_service

pytestmark = [pytest.mark.integration, pytest.mark.mariadb, pytest.mark.slow]

N_OBJECTS = 3_000
N_JOBS = 200
DB = f"tap_test_scale_{os.getpid()}"
TS_DB = f"tap_test_scale_ts_{os.getpid()}"
URL = f"mysql+pymysql://root@127.0.0.1:3306/{DB}"
TS_URL = f"mysql+pymysql://root@127.0.0.1:3306/{TS_DB}"
OBJECT = "dp02_dc2_catalogs.Object"
BUCKET = "tap-scale-results"
STALE_AFTER = 4.0
SWEEP = 1.0
VISIBILITY = 10
# Every job final within this many seconds of the kill (see the module docstring).
BOUND = VISIBILITY + STALE_AFTER + SWEEP + 45


def quick_query(n: int) -> str:
    return f"SELECT TOP {n} objectId FROM {OBJECT} ORDER BY objectId"


# A self-join the stand-in needs a noticeable time for: jobs are still running at the kill.
SLOW_QUERY = f"SELECT COUNT(*) AS n FROM {OBJECT} AS a, {OBJECT} AS b WHERE a.objectId < b.objectId"


def start_worker(
    name: str, env: dict[str, str], data_dir: Path, metrics_port: int
) -> subprocess.Popen[bytes]:
    log_path = data_dir / f"worker-{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tap_service.cli", "worker", "--concurrency", "4",
         "--hostname", f"{name}@%h", "--json-logs"],
        env={**os.environ, "TAP_DATA_DIR": str(data_dir), **env,
             "TAP_METRICS__WORKER_PORT": str(metrics_port)},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tap-service worker exited: {log_path.read_text()}")
        if "ready" in log_path.read_text():
            return process
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"tap-service worker not ready within 60 s: {log_path.read_text()}")


class Cluster:
    def __init__(
        self,
        apis: list[RunningService],
        workers: list[subprocess.Popen[bytes]],
        object_ids: list[int],
        worker_metrics: list[str],
    ) -> None:
        self.apis = apis
        self.workers = workers
        self.object_ids = object_ids
        self.worker_metrics = worker_metrics


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with moto_server(tmp_path_factory.mktemp("moto-scale") / "moto.log") as server:
        yield server


@pytest.fixture(scope="module")
def cluster(moto_s3: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        server = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    except pymysql.err.OperationalError as exc:
        pytest.fail(f"MariaDB is unreachable ({exc}); {MARIADB_START}", pytrace=False)
    build_standin(URL, TS_URL, n_objects=N_OBJECTS, n_forced_per_object=1)
    with server.cursor() as cur:
        cur.execute(f"SELECT objectId FROM {DB}.Object ORDER BY objectId")
        object_ids = [int(row[0]) for row in cur.fetchall()]
    broker = redis_url(10)
    redis.Redis.from_url(broker).flushdb()
    jobs_url = mariadb_jobs_url("tap_test_jobs_scale")
    JobStore.from_url(jobs_url).close()  # the schema once, before four processes race for it
    boto3.client(
        "s3", endpoint_url=moto_s3.url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    ).create_bucket(Bucket=BUCKET)  # fmt: skip
    env = {
        "TAP_BACKEND": "qserv",
        "TAP_QSERV__URL": URL,
        "TAP_QSERV__TAP_SCHEMA_URL": TS_URL,
        "TAP_QSERV__STANDIN_CPOLY_VERTICES": "20",
        "TAP_QSERV__DATABASES": json.dumps({"dp02_dc2_catalogs": DB}),
        "TAP_UWS__RUNNER": "celery",
        "TAP_UWS__RESULT_STORE": "s3",
        "TAP_UWS__DATABASE_URL": jobs_url,
        "TAP_UWS__HEARTBEAT_SECONDS": "0.5",
        "TAP_UWS__STALE_AFTER_SECONDS": str(STALE_AFTER),
        "TAP_UWS__SWEEP_INTERVAL_SECONDS": str(SWEEP),
        "TAP_REDIS__URL": broker,
        "TAP_REDIS__QUEUE": "tap-async-scale",
        "TAP_REDIS__VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY),
        "TAP_S3__ENDPOINT_URL": moto_s3.url,
        "TAP_S3__BUCKET": BUCKET,
        "TAP_S3__ACCESS_KEY_ID": "test",
        "TAP_S3__SECRET_ACCESS_KEY": "test",
    }
    data_dir = tmp_path_factory.mktemp("scale")
    apis: list[RunningService] = []
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with ThreadPoolExecutor(4) as pool:
            api_futures = [
                pool.submit(start_service, data_dir / f"api{i}", data_dir / f"api{i}.log", env)
                for i in (1, 2)
            ]
            for i in (1, 2):
                (data_dir / f"api{i}").mkdir(exist_ok=True)
            ports = [free_port(), free_port()]
            worker_futures = [
                pool.submit(start_worker, f"w{i}", env, data_dir, ports[i - 1]) for i in (1, 2)
            ]
            apis = [f.result() for f in api_futures]
            workers = [f.result() for f in worker_futures]
        yield Cluster(apis, workers, object_ids, [f"http://127.0.0.1:{p}/metrics" for p in ports])
    finally:
        for api in apis:
            stop_service(api)
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
        with server.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        server.close()
        MySQLTapSchema(TS_URL).drop()


def submit(base: str, query: str) -> str:
    response = requests.post(
        f"{base}/async",
        data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv", "PHASE": "RUN"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"].rsplit("/", 1)[1])


def phases(base: str, job_ids: list[str]) -> dict[str, str]:
    with ThreadPoolExecutor(8) as pool:
        found = pool.map(
            lambda j: requests.get(f"{base}/async/{j}/phase", timeout=30).text, job_ids
        )
        return dict(zip(job_ids, found, strict=True))


def result_rows(base: str, job_id: str) -> list[dict[str, Any]]:
    response = requests.get(f"{base}/async/{job_id}/results/result", timeout=30)
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def test_two_apis_two_workers_200_jobs_survive_a_killed_worker(cluster: Cluster) -> None:
    apis = [api.base_url for api in cluster.apis]
    plan: list[tuple[int, str, str]] = []  # (index, creating API, query)
    for k in range(N_JOBS):
        query = SLOW_QUERY if k % 10 == 0 else quick_query(1 + k % 25)
        plan.append((k, apis[k % 2], query))
    with ThreadPoolExecutor(8) as pool:
        job_ids = list(pool.map(lambda p: submit(p[1], p[2]), plan))
    assert len(set(job_ids)) == N_JOBS

    # Kill one worker with SIGKILL while jobs are still queued or executing.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = phases(apis[0], job_ids)
        done = sum(p == "COMPLETED" for p in current.values())
        if done >= 20:
            break
        time.sleep(0.2)
    assert sum(p in ("QUEUED", "EXECUTING") for p in current.values()) > 0, (
        "every job finished before the kill; make the slow query slower"
    )
    killed_at = time.monotonic()
    cluster.workers[0].send_signal(signal.SIGKILL)
    cluster.workers[0].wait(timeout=10)

    final = {"COMPLETED", "ERROR", "ABORTED"}
    while time.monotonic() - killed_at < BOUND:
        current = phases(apis[1], job_ids)
        if all(p in final for p in current.values()):
            break
        time.sleep(0.5)
    pending = {j: p for j, p in current.items() if p not in final}
    assert pending == {}, f"not final {BOUND} s after the kill: {pending}"
    took = time.monotonic() - killed_at

    # Results are right, read through the API that did not create the job.
    errors = []
    pairs = N_OBJECTS * (N_OBJECTS - 1) // 2
    with ThreadPoolExecutor(8) as pool:

        def check(item: tuple[tuple[int, str, str], str]) -> str | None:
            (k, creator, query), job_id = item
            if current[job_id] != "COMPLETED":
                return job_id
            other = apis[1] if creator == apis[0] else apis[0]
            rows = result_rows(other, job_id)
            if query == SLOW_QUERY:
                assert [int(r["n"]) for r in rows] == [pairs]
            else:
                n = 1 + k % 25
                assert [int(r["objectId"]) for r in rows] == cluster.object_ids[:n]
            return None

        errors = [j for j in pool.map(check, zip(plan, job_ids, strict=True)) if j]
    # Only jobs that were executing on the killed worker may have ended in ERROR: at most its
    # concurrency (4), and each says why.
    assert len(errors) <= 4, f"{len(errors)} jobs ended in ERROR"
    for job_id in errors:
        document = requests.get(f"{apis[0]}/async/{job_id}", timeout=30).text
        assert "ERROR" in document
    # The surviving worker's own /metrics counted the jobs it ran, and the API sees none waiting.
    survivor = requests.get(cluster.worker_metrics[1], timeout=10).text
    ran = [
        float(line.rsplit(" ", 1)[1])
        for line in survivor.splitlines()
        if line.startswith('tap_jobs_finished_total{phase="COMPLETED"}')
    ]
    assert ran
    assert ran[0] > 0
    api_metrics = requests.get(apis[0].removesuffix("/api/tap") + "/metrics", timeout=10).text
    assert "tap_queue_depth 0.0" in api_metrics
    print(f"200 jobs final {took:.1f} s after the kill; {len(errors)} in ERROR")
