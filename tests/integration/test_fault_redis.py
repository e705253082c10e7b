"""Redis (the Celery broker) restarted while a stream of async jobs is submitted and running.

Everything here is real and private to the test: a Redis server on its own port (the machine's
shared Redis is never touched), two Celery worker processes, the API process, and a MariaDB
database on the shared server as the job store.  Results are files under the shared data
directory (the local result store), so the only moving part under test is the broker.

The Redis server is killed with SIGKILL (no persistence: every queued message, every unacked
message and kombu's queue bindings are gone) in the middle of the stream, and started again
three seconds later.  What must hold:

* the API keeps answering: job documents are read from the job store, and a submission while
  Redis is down gets 503 (DALI error, "no job was created") and leaves no job behind;
* no accepted job is lost or stuck: every job the API answered 303 for reaches COMPLETED (or an
  ERROR that says why) within a bound; a job whose message vanished with Redis is sent again by
  the API's sweep once it is ``stale_after`` seconds old, however many jobs accepted after the
  restart wait in the queue;
* both workers are still running at the end: a worker with a job running and a thread free used
  to exit on the lost connection (tests/worker/test_broker.py shows that case on its own).
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
import requests

from tap_service.storage.jobs import JobStore
from tests.fixtures.private import PrivateRedis, private_redis
from tests.fixtures.services import mariadb_jobs_url
from tests.integration.conftest import RunningService, cli, start_service, stop_service

pytestmark = [pytest.mark.integration, pytest.mark.mariadb, pytest.mark.slow]

N_OBJECTS = 3_000
N_JOBS = 60
SUBMIT_EVERY = 0.15
KILL_AFTER = 15  # submissions before the kill
DOWN_FOR = 3.0
STALE_AFTER = 4.0
SWEEP = 1.0
# Every accepted job final within this many seconds of Redis coming back: the sweep's re-send
# (stale_after + sweep), the worker's reconnection (a few seconds), and the remaining work.
BOUND = 60.0
OBJECT = "dp02_dc2_catalogs.Object"
# About a second of DuckDB on this catalog: jobs are still EXECUTING when Redis goes.
SLOW_QUERY = (
    f"SELECT COUNT(*) AS n FROM {OBJECT} AS a, {OBJECT} AS b, {OBJECT} AS c "
    "WHERE c.coord_ra < 50.025 AND SIN(a.coord_ra + b.coord_dec + c.coord_ra) > 2"
)
NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0"}
FINAL = {"COMPLETED", "ERROR", "ABORTED"}


def quick_query(n: int) -> str:
    return f"SELECT TOP {n} objectId FROM {OBJECT} ORDER BY objectId"


class Stack:
    def __init__(self, redis: PrivateRedis, env: dict[str, str], data_dir: Path, logs: Path):
        self.redis = redis
        self.env = env
        self.data_dir = data_dir
        self.logs = logs
        self.api: RunningService | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self, name: str) -> None:
        log_path = self.logs / f"worker-{name}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "tap_service.cli", "worker", "--concurrency", "3",
             "--hostname", f"{name}@%h"],
            env={**os.environ, "TAP_DATA_DIR": str(self.data_dir), **self.env},
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"tap-service worker exited: {log_path.read_text()}")
            if "ready" in log_path.read_text():
                return
            time.sleep(0.1)
        pytest.fail(f"tap-service worker not ready within 60 s: {log_path.read_text()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("fault-redis")
    data_dir = root / "data"
    env = {**os.environ, "TAP_DATA_DIR": str(data_dir)}
    built = cli("demo", "--objects", str(N_OBJECTS), "--forced-per-object", "1", env=env)
    assert built.returncode == 0, built.stderr
    jobs_url = mariadb_jobs_url("tap_test_jobs_fault_redis")
    JobStore.from_url(jobs_url).close()  # the schema once, before three processes race for it
    with private_redis(root / "redis") as redis_server:
        stack_env = {
            "TAP_UWS__RUNNER": "celery",
            "TAP_UWS__RESULT_STORE": "local",
            "TAP_UWS__DATABASE_URL": jobs_url,
            "TAP_UWS__HEARTBEAT_SECONDS": "0.5",
            "TAP_UWS__STALE_AFTER_SECONDS": str(STALE_AFTER),
            "TAP_UWS__SWEEP_INTERVAL_SECONDS": str(SWEEP),
            "TAP_REDIS__URL": redis_server.url,
            "TAP_REDIS__QUEUE": "tap-async-fault",
            "TAP_REDIS__VISIBILITY_TIMEOUT_SECONDS": "10",
        }
        running = Stack(redis_server, stack_env, data_dir, root)
        try:
            running.start_worker("w1")
            running.start_worker("w2")
            running.api = start_service(data_dir, root / "api.log", stack_env)
            yield running
        finally:
            if running.api is not None:
                stop_service(running.api)
            for worker in running.workers:
                worker.terminate()
            for worker in running.workers:
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()


@dataclass
class Submission:
    index: int
    query: str
    status: int = 0
    job_id: str | None = None
    body: str = ""
    took: float = 0.0


@dataclass
class Log:
    submissions: list[Submission] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def submit(base: str, sub: Submission) -> None:
    start = time.monotonic()
    reply = requests.post(
        f"{base}/async",
        data={"LANG": "ADQL", "QUERY": sub.query, "RESPONSEFORMAT": "csv", "PHASE": "RUN"},
        allow_redirects=False,
        timeout=30,
    )
    sub.took = time.monotonic() - start
    sub.status = reply.status_code
    sub.body = reply.text
    if reply.status_code == 303:
        sub.job_id = reply.headers["location"].rsplit("/", 1)[1]


def phases(base: str, ids: list[str]) -> dict[str, str]:
    with ThreadPoolExecutor(8) as pool:
        got = pool.map(lambda j: requests.get(f"{base}/async/{j}/phase", timeout=30).text, ids)
        return dict(zip(ids, got, strict=True))


def test_redis_restarted_during_a_stream_of_jobs(stack: Stack) -> None:
    assert stack.api is not None
    base = stack.api.base_url
    con = duckdb.connect(str(stack.data_dir / "catalog.duckdb"), read_only=True)
    try:
        object_ids = [
            int(r[0])
            for r in con.execute(
                'SELECT objectId FROM "dp02_dc2_catalogs"."Object" ORDER BY objectId LIMIT 30'
            ).fetchall()
        ]
    finally:
        con.close()
    plan = [
        Submission(k, SLOW_QUERY if k % 4 == 0 else quick_query(1 + k % 30)) for k in range(N_JOBS)
    ]
    stream_done = threading.Event()

    def stream() -> None:
        with ThreadPoolExecutor(4) as pool:
            for sub in plan:
                pool.submit(submit, base, sub)
                time.sleep(SUBMIT_EVERY)
        stream_done.set()

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    while sum(s.status != 0 for s in plan) < KILL_AFTER:
        time.sleep(0.02)
    accepted_before = [s.job_id for s in plan if s.job_id]
    in_flight = [
        j for j, p in phases(base, accepted_before).items() if p in ("QUEUED", "EXECUTING")
    ]
    stack.redis.kill()
    killed_at = time.monotonic()

    # While Redis is down the API answers: job documents come from the job store.
    probes = []
    while time.monotonic() - killed_at < DOWN_FOR:
        start = time.monotonic()
        reply = requests.get(f"{base}/async/{accepted_before[0]}", timeout=10)
        probes.append(time.monotonic() - start)
        assert reply.status_code == 200
        time.sleep(0.2)
    stack.redis.start()
    back_at = time.monotonic()
    streamer.join(timeout=120)
    assert stream_done.is_set()

    refused = [s for s in plan if s.status == 503]
    accepted = [s for s in plan if s.status == 303]
    other = [(s.index, s.status, s.body[:200]) for s in plan if s.status not in (303, 503)]
    assert other == [], other
    for sub in refused:
        assert "Redis" in sub.body
        assert "no job was created" in sub.body
    assert max(s.took for s in plan) < 10, "a submission hung while Redis was down"

    ids = [s.job_id for s in accepted if s.job_id]
    current: dict[str, str] = {}
    while time.monotonic() - back_at < BOUND:
        current = phases(base, ids)
        if all(p in FINAL for p in current.values()):
            break
        time.sleep(0.5)
    took = time.monotonic() - back_at
    stuck = {j: p for j, p in current.items() if p not in FINAL}
    exited = {w.args[-1]: w.returncode for w in stack.workers if w.poll() is not None}
    assert stuck == {}, f"not final {BOUND:g} s after Redis came back: {stuck}; exited: {exited}"
    assert exited == {}, f"workers exited when Redis went away: {exited}"

    errors = {}
    for sub in accepted:
        assert sub.job_id is not None
        if current[sub.job_id] == "COMPLETED":
            reply = requests.get(f"{base}/async/{sub.job_id}/results/result", timeout=30)
            assert reply.status_code == 200
            rows = list(csv.DictReader(io.StringIO(reply.text)))
            if sub.query == SLOW_QUERY:
                assert [int(r["n"]) for r in rows] == [0]
            else:
                n = 1 + sub.index % 30
                assert [int(r["objectId"]) for r in rows] == object_ids[:n]
        else:
            doc = ET.fromstring(requests.get(f"{base}/async/{sub.job_id}", timeout=30).content)
            errors[sub.job_id] = doc.findtext("uws:errorSummary/uws:message", namespaces=NS)
    assert all(errors.values()), f"an ERROR without a message: {errors}"
    assert in_flight, "no job was queued or running at the kill: the test proved nothing"
    print(
        f"\nRedis down {DOWN_FOR:g} s with {len(in_flight)} jobs QUEUED/EXECUTING; "
        f"{len(accepted)} jobs accepted, {len(refused)} refused with 503; all final "
        f"{took:.1f} s after Redis came back; {len(errors)} in ERROR {errors}; "
        f"job document during the outage answered in at most {max(probes):.2f} s"
    )
    assert not errors, f"jobs lost to the Redis restart: {errors}"
