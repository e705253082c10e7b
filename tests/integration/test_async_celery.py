"""Async TAP in its production shape: Celery worker process, Redis, MariaDB job store, S3.

The S3 endpoint is moto in server mode on loopback (started by a fixture); Redis and MariaDB
are the machine's own servers.  The API and the worker are real ``tap-service`` processes.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import duckdb
import pytest
import pyvo
import redis
import requests
import sqlalchemy as sa
from astropy.io.votable import parse_single_table

from tests.fixtures.services import (
    MotoServer,
    free_port,
    mariadb_jobs_url,
    moto_server,
    redis_url,
)
from tests.integration.conftest import RunningService, start_service, stop_service
from tests.integration.test_taplint import run_taplint

NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0", "xlink": "http://www.w3.org/1999/xlink"}
OBJECT = "dp02_dc2_catalogs.Object"
SLOW_QUERY = (
    f"SELECT COUNT(*) AS n FROM {OBJECT} AS a, {OBJECT} AS b, {OBJECT} AS c "
    "WHERE SIN(a.coord_ra + b.coord_dec + c.coord_ra) > 2"
)
STALE_AFTER = 4.0
SWEEP = 1.0
BUCKET = "tap-test-results"


class Stack:
    def __init__(self, env: dict[str, str], data_dir: Path, logs: Path, db_url: str) -> None:
        self.env = env
        self.data_dir = data_dir
        self.logs = logs
        self.db_url = db_url
        self.api: RunningService | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        assert self.api is not None
        return self.api.base_url

    def start_api(self) -> None:
        self.starts += 1
        self.api = start_service(self.data_dir, self.logs / f"api-{self.starts}.log", self.env)

    def stop_api(self) -> None:
        if self.api is not None:
            stop_service(self.api)
            self.api = None

    def start_worker(self) -> None:
        self.starts += 1
        log_path = self.logs / f"worker-{self.starts}.log"
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "tap_service.cli", "worker", "--concurrency", "8",
             "--hostname", f"test{self.starts}@%h"],
            env={**os.environ, "TAP_DATA_DIR": str(self.data_dir), **self.env},
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                pytest.fail(f"tap-service worker exited: {log_path.read_text()}")
            if "ready" in log_path.read_text():
                return
            time.sleep(0.1)
        pytest.fail(f"tap-service worker not ready within 60 s: {log_path.read_text()}")

    def stop_worker(self, sig: int = signal.SIGTERM) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(sig)
            try:
                self.worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        self.worker = None


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture(scope="module")
def stack(
    demo_data_dir: Path,
    moto_s3: MotoServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    broker = redis_url(9)
    redis.Redis.from_url(broker).flushdb()
    db_url = mariadb_jobs_url("tap_test_jobs_celery")
    s3 = boto3.client(
        "s3", endpoint_url=moto_s3.url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)
    env = {
        "TAP_UWS__RUNNER": "celery",
        "TAP_UWS__RESULT_STORE": "s3",
        "TAP_UWS__DATABASE_URL": db_url,
        "TAP_UWS__HEARTBEAT_SECONDS": "0.5",
        "TAP_UWS__STALE_AFTER_SECONDS": str(STALE_AFTER),
        "TAP_UWS__SWEEP_INTERVAL_SECONDS": str(SWEEP),
        "TAP_REDIS__URL": broker,
        "TAP_REDIS__QUEUE": "tap-async-test",
        "TAP_S3__ENDPOINT_URL": moto_s3.url,
        "TAP_S3__BUCKET": BUCKET,
        "TAP_S3__ACCESS_KEY_ID": "test",
        "TAP_S3__SECRET_ACCESS_KEY": "test",
    }
    from tap_service.storage.jobs import JobStore

    JobStore.from_url(db_url).close()  # schema once, before two processes race to create it
    running = Stack(env, demo_data_dir, tmp_path_factory.mktemp("celery-logs"), db_url)
    running.start_worker()
    running.start_api()
    yield running
    running.stop_api()
    running.stop_worker()


@pytest.fixture(scope="module")
def objects(demo_data_dir: Path) -> dict[str, list[float]]:
    con = duckdb.connect(str(demo_data_dir / "catalog.duckdb"), read_only=True)
    try:
        data = con.execute(
            'SELECT objectId, coord_ra FROM "dp02_dc2_catalogs"."Object" ORDER BY objectId'
        ).fetchnumpy()
    finally:
        con.close()
    return {"objectId": [int(x) for x in data["objectId"]], "ra": list(data["coord_ra"])}


def create(base: str, **params: str) -> str:
    response = requests.post(f"{base}/async", data=params, allow_redirects=False, timeout=30)
    assert response.status_code == 303, response.text
    return str(response.headers["location"].rsplit("/", 1)[1])


def phase(base: str, job_id: str) -> str:
    return requests.get(f"{base}/async/{job_id}/phase", timeout=30).text


def wait_phase(base: str, job_id: str, wanted: set[str], limit: float) -> str:
    deadline = time.monotonic() + limit
    current = phase(base, job_id)
    while current not in wanted and time.monotonic() < deadline:
        requests.get(f"{base}/async/{job_id}", params={"WAIT": "1"}, timeout=30)
        current = phase(base, job_id)
    return current


def test_pyvo_against_celery_and_s3(stack: Stack, objects: dict[str, list[float]]) -> None:
    tap = pyvo.dal.TAPService(stack.url)
    table = tap.run_async(f"SELECT TOP 5 objectId FROM {OBJECT} ORDER BY objectId").to_table()
    assert [int(x) for x in table["objectId"]] == objects["objectId"][:5]
    job = tap.submit_job(f"SELECT TOP 3 objectId FROM {OBJECT} ORDER BY objectId")
    job.run()
    job.wait(timeout=60)
    assert job.phase == "COMPLETED"
    # The result link answers 303 to a presigned S3 URL on the moto endpoint.
    redirect = requests.get(
        f"{stack.url}/async/{job.job_id}/results/result", allow_redirects=False, timeout=30
    )
    assert redirect.status_code == 303
    assert redirect.headers["location"].startswith(stack.env["TAP_S3__ENDPOINT_URL"])
    assert "X-Amz-Signature" in redirect.headers["location"]
    assert [int(x) for x in job.fetch_result().to_table()["objectId"]] == objects["objectId"][:3]


def test_upload_reaches_the_worker_through_s3(
    stack: Stack, objects: dict[str, list[float]], moto_s3: MotoServer
) -> None:
    """The API keeps the uploaded table in the bucket; the worker process reads it from there."""
    from astropy.table import Table

    ids = [*objects["objectId"][::100][:500], -1, -2]
    tap = pyvo.dal.TAPService(stack.url)
    job = tap.submit_job(
        f"SELECT t.objid, o.coord_ra FROM TAP_UPLOAD.t AS t JOIN {OBJECT} AS o "
        "ON o.objectId = t.objid",
        uploads={"t": Table({"objid": ids})},
        maxrec=10_000,
    )
    s3 = boto3.client(
        "s3", endpoint_url=moto_s3.url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip
    key = f"async/{job.job_id}/uploads/t.parquet"  # TAP_S3__PREFIX defaults to async/
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "COMPLETED", job.phase
    result = job.fetch_result().to_table()
    ra = dict(zip(objects["objectId"], objects["ra"], strict=True))
    got = {int(i): float(r) for i, r in zip(result["objid"], result["coord_ra"], strict=True)}
    assert got == {i: ra[i] for i in ids if i in ra}
    job.delete()
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"async/{job.job_id}/")
    assert listing.get("KeyCount", 0) == 0  # the upload went with the job


def test_taplint_async_stages_on_celery(stack: Stack, artifacts: Path) -> None:
    report = artifacts / "taplint-async-celery.txt"
    output, counts = run_taplint(stack.url, "QAS UWS UPL", report)
    problems = [line for line in output.splitlines() if re.match(r"^[EFW]-", line)]
    summary = f"taplint: {counts}; report in {report}\n" + "\n".join(problems[:60])
    assert counts["errors"] == 0, summary
    assert counts["failures"] == 0, summary
    assert re.search(r"S-QAS-QNUM-\d+ Successful/submitted TAP queries: (\d+)/\1", output), summary


def test_twenty_concurrent_jobs_survive_an_api_restart(stack: Stack, demo_data_dir: Path) -> None:
    limits = [52.0 + 1.0 * i for i in range(20)]
    join = (
        '"dp02_dc2_catalogs"."ForcedSource" AS f JOIN "dp02_dc2_catalogs"."Object" AS o '
        "ON f.objectId = o.objectId"
    )
    con = duckdb.connect(str(demo_data_dir / "catalog.duckdb"), read_only=True)
    try:
        expected = {
            lim: int(con.execute(f"SELECT COUNT(*) FROM {join} WHERE o.coord_ra < ?", [lim])
                     .fetchone()[0])  # type: ignore[index]
            for lim in limits
        }  # fmt: skip
    finally:
        con.close()
    queries = {
        lim: "SELECT COUNT(*) AS n FROM dp02_dc2_catalogs.ForcedSource AS f "
        "JOIN dp02_dc2_catalogs.Object AS o ON f.objectId = o.objectId "
        f"WHERE o.coord_ra < {lim}"
        for lim in limits
    }
    base = stack.url
    with ThreadPoolExecutor(20) as pool:
        ids = list(
            pool.map(lambda lim: create(base, LANG="ADQL", QUERY=queries[lim], PHASE="RUN"),
                     limits)
        )  # fmt: skip
    engine = sa.create_engine(stack.db_url)
    with engine.connect() as con_db:
        phases = dict(
            con_db.execute(sa.text("SELECT id, phase FROM tap_uws_job")).all()  # type: ignore[arg-type]
        )
    engine.dispose()
    in_flight = [i for i in ids if phases[i] in ("QUEUED", "EXECUTING")]
    print(f"at the API restart, {len(in_flight)} of 20 jobs were QUEUED or EXECUTING")
    stack.stop_api()  # in the middle: jobs are queued or running in the worker
    stack.start_api()
    base = stack.url
    listed = ET.fromstring(requests.get(f"{base}/async", timeout=30).content)
    listed_ids = {ref.attrib["id"] for ref in listed.iterfind("uws:jobref", NS)}
    assert set(ids) <= listed_ids
    for job_id, lim in zip(ids, limits, strict=True):
        assert wait_phase(base, job_id, {"COMPLETED", "ERROR", "ABORTED"}, 60) == "COMPLETED"
        body = requests.get(f"{base}/async/{job_id}/results/result", timeout=30)
        assert body.status_code == 200
        n = parse_single_table(io.BytesIO(body.content)).array["n"][0]
        assert int(n) == expected[lim], (job_id, lim)
    assert in_flight, "every job had finished before the restart: the test proved nothing"
    # A second restart: the finished jobs are all still listed, with their phases and results.
    stack.stop_api()
    stack.start_api()
    listing = ET.fromstring(
        requests.get(f"{stack.url}/async", params={"PHASE": "COMPLETED"}, timeout=30).content
    )
    assert set(ids) <= {ref.attrib["id"] for ref in listing.iterfind("uws:jobref", NS)}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_abort_stops_the_query_in_the_worker(stack: Stack) -> None:
    base = stack.url
    job_id = create(base, LANG="ADQL", QUERY=SLOW_QUERY, PHASE="RUN")
    assert wait_phase(base, job_id, {"EXECUTING"}, 30) == "EXECUTING"
    assert stack.worker is not None
    pid = stack.worker.pid
    before = _cpu_seconds(pid)
    time.sleep(1.5)
    busy = _cpu_seconds(pid) - before
    # DuckDB uses every core it may; other test suites on this machine may take some.
    assert busy > 0.3, f"the worker is not running the query ({busy:.2f} s CPU in 1.5 s)"
    aborted_at = time.monotonic()
    r = requests.post(f"{base}/async/{job_id}/phase", data={"PHASE": "ABORT"}, timeout=30)
    assert r.status_code == 200  # followed the 303 to the job
    assert phase(base, job_id) == "ABORTED"
    time.sleep(1.0)  # the worker's watchdog polls every 0.25 s
    before = _cpu_seconds(pid)
    time.sleep(1.5)
    idle = _cpu_seconds(pid) - before
    assert idle < min(0.2, busy / 3), (
        f"the query still burns CPU after ABORT ({idle:.2f} s in 1.5 s, {busy:.2f} s before)"
    )
    assert time.monotonic() - aborted_at < 5


def test_killed_worker_job_ends_in_error_within_bound(stack: Stack) -> None:
    base = stack.url
    job_id = create(base, LANG="ADQL", QUERY=SLOW_QUERY, PHASE="RUN")
    assert wait_phase(base, job_id, {"EXECUTING"}, 30) == "EXECUTING"
    killed_at = time.monotonic()
    stack.stop_worker(signal.SIGKILL)
    final = wait_phase(base, job_id, {"ERROR", "COMPLETED", "ABORTED"}, STALE_AFTER + 3 * SWEEP + 5)
    took = time.monotonic() - killed_at
    print(f"kill -9 of the worker: job in {final} after {took:.1f} s")
    assert final == "ERROR", f"still {final} {took:.1f} s after kill -9"
    assert took <= STALE_AFTER + 2 * SWEEP + 2
    doc = ET.fromstring(requests.get(f"{base}/async/{job_id}", timeout=30).content)
    assert "worker running this job stopped" in (
        doc.findtext("uws:errorSummary/uws:message", namespaces=NS) or ""
    )
    stack.start_worker()  # a new worker does not take the dead job up again
    time.sleep(2)
    assert phase(base, job_id) == "ERROR"


def test_redis_unreachable_answers_503_and_creates_nothing(
    stack: Stack, demo_data_dir: Path, tmp_path: Path
) -> None:
    env = {**stack.env, "TAP_REDIS__URL": f"redis://127.0.0.1:{free_port()}/0"}
    api = start_service(demo_data_dir, tmp_path / "api-no-redis.log", env)
    try:
        engine = sa.create_engine(stack.db_url)
        with engine.connect() as con:
            before = con.execute(sa.text("SELECT COUNT(*) FROM tap_uws_job")).scalar()
        for extra in ({"PHASE": "RUN"}, {}):
            r = requests.post(
                f"{api.base_url}/async",
                data={"LANG": "ADQL", "QUERY": "SELECT 1", **extra},
                allow_redirects=False,
                timeout=30,
            )
            assert r.status_code == 503
            assert b"Redis" in r.content
            assert b"no job was created" in r.content
        with engine.connect() as con:
            after = con.execute(sa.text("SELECT COUNT(*) FROM tap_uws_job")).scalar()
        engine.dispose()
        assert after == before
    finally:
        stop_service(api)
