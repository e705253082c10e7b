"""The result store fails under a running async job: S3 unreachable, local disk full.

S3: moto in server mode behind a loopback TCP relay (``TcpProxy``), so the network to the
endpoint can be cut (connection refused, as from a stopped server) and restored, or made to
reset connections.  The service runs jobs in-process and writes results to the bucket.

Disk full: the local result store's directory is a 1 MiB tmpfs, a real file system that
answers ENOSPC; a job whose result is larger fails.  The tmpfs is mounted by the test when it
may (root), else in the service's own user and mount namespace (``unshare``); set
TAP_TEST_SMALL_DISK=unshare to use the fallback anyway.  No exception is faked in either case.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

from tests.fixtures.private import TcpProxy, small_disk
from tests.fixtures.services import moto_server
from tests.integration.conftest import RunningService, cli, start_service, stop_service

pytestmark = [pytest.mark.integration]

N_OBJECTS = 3_000
BUCKET = "tap-fault-results"
NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0"}
OBJECT = "dp02_dc2_catalogs.Object"
# Two to three seconds of DuckDB on this catalog: the job is EXECUTING when the network goes.
SLOW_QUERY = (
    f"SELECT COUNT(*) AS n FROM {OBJECT} AS a, {OBJECT} AS b, {OBJECT} AS c "
    "WHERE c.coord_ra < 50.035 AND SIN(a.coord_ra + b.coord_dec + c.coord_ra) > 2"
)
QUICK_QUERY = f"SELECT TOP 3 objectId FROM {OBJECT} ORDER BY objectId"
# Far more than 1 MiB as a VOTable: every column of every object, twice over.
BIG_QUERY = f"SELECT a.*, b.* FROM {OBJECT} AS a JOIN {OBJECT} AS b ON a.objectId = b.objectId"
S3_ATTEMPTS = 4


def demo(root: Path) -> Path:
    data_dir = root / "data"
    env = {**os.environ, "TAP_DATA_DIR": str(data_dir)}
    built = cli("demo", "--objects", str(N_OBJECTS), "--forced-per-object", "1", env=env)
    assert built.returncode == 0, built.stderr
    return data_dir


def submit(base: str, query: str, fmt: str = "votable") -> str:
    reply = requests.post(
        f"{base}/async",
        data={"LANG": "ADQL", "QUERY": query, "PHASE": "RUN", "RESPONSEFORMAT": fmt},
        allow_redirects=False,
        timeout=30,
    )
    assert reply.status_code == 303, reply.text
    return str(reply.headers["location"].rsplit("/", 1)[1])


def wait_final(base: str, job_id: str, limit: float) -> str:
    deadline = time.monotonic() + limit
    phase = ""
    while time.monotonic() < deadline:
        phase = requests.get(f"{base}/async/{job_id}/phase", timeout=30).text
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            return phase
        requests.get(f"{base}/async/{job_id}", params={"WAIT": "1"}, timeout=30)
    return phase


def wait_phase(base: str, job_id: str, wanted: str, limit: float) -> str:
    deadline = time.monotonic() + limit
    phase = ""
    while time.monotonic() < deadline:
        phase = requests.get(f"{base}/async/{job_id}/phase", timeout=30).text
        if phase == wanted:
            break
        time.sleep(0.05)
    return phase


def error_summary(base: str, job_id: str) -> tuple[str, str]:
    doc = ET.fromstring(requests.get(f"{base}/async/{job_id}", timeout=30).content)
    summary = doc.find("uws:errorSummary", NS)
    assert summary is not None
    return summary.attrib["type"], summary.findtext("uws:message", namespaces=NS) or ""


# -- S3 -------------------------------------------------------------------------------------


class S3Setup:
    def __init__(self, api: RunningService, proxy: TcpProxy) -> None:
        self.api = api
        self.proxy = proxy


@pytest.fixture(scope="module")
def s3_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Setup]:
    root = tmp_path_factory.mktemp("fault-s3")
    data_dir = demo(root)
    with moto_server(root / "moto.log") as moto:
        boto3.client(
            "s3", endpoint_url=moto.url, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
        ).create_bucket(Bucket=BUCKET)  # fmt: skip
        proxy = TcpProxy(int(moto.url.rsplit(":", 1)[1]))
        env = {
            "TAP_UWS__RESULT_STORE": "s3",
            "TAP_S3__ENDPOINT_URL": proxy.url,
            "TAP_S3__BUCKET": BUCKET,
            "TAP_S3__ACCESS_KEY_ID": "test",
            "TAP_S3__SECRET_ACCESS_KEY": "test",
            "TAP_S3__MAX_ATTEMPTS": str(S3_ATTEMPTS),
            "TAP_S3__CONNECT_TIMEOUT_SECONDS": "2",
            "TAP_S3__READ_TIMEOUT_SECONDS": "10",
        }
        api = start_service(data_dir, root / "serve.log", env)
        try:
            yield S3Setup(api, proxy)
        finally:
            stop_service(api)
            proxy.refuse()


def test_s3_unreachable_during_a_job(s3_setup: S3Setup) -> None:
    base, proxy = s3_setup.api.base_url, s3_setup.proxy
    done = submit(base, QUICK_QUERY)
    assert wait_final(base, done, 30) == "COMPLETED"

    job_id = submit(base, SLOW_QUERY)
    assert wait_phase(base, job_id, "EXECUTING", 30) == "EXECUTING"
    proxy.refuse()
    cut_at = time.monotonic()
    assert requests.get(f"{base}/async/{job_id}/phase", timeout=30).text == "EXECUTING", (
        "the job finished before the network was cut: make SLOW_QUERY slower"
    )

    # The API answers while S3 is gone: job documents, the presigned link of an earlier result.
    start = time.monotonic()
    assert requests.get(f"{base}/async/{done}", timeout=10).status_code == 200
    link = requests.get(f"{base}/async/{done}/results/result", allow_redirects=False, timeout=10)
    assert link.status_code == 303
    assert time.monotonic() - start < 2

    final = wait_final(base, job_id, 60)
    took = time.monotonic() - cut_at
    assert final == "ERROR", f"{final} {took:.1f} s after S3 was cut"
    kind, message = error_summary(base, job_id)
    assert kind == "transient"
    assert f"result bucket {BUCKET} cannot be reached" in message, message
    assert "the endpoint does not answer" in message, message
    assert "127.0.0.1" not in message
    assert "Traceback" not in message
    error_doc = requests.get(f"{base}/async/{job_id}/error", timeout=10)
    assert f"result bucket {BUCKET}" in error_doc.text

    # Deleting a job needs S3 too: a bounded 503, not a hang or a 500.
    start = time.monotonic()
    deleted = requests.delete(f"{base}/async/{done}", allow_redirects=False, timeout=60)
    delete_took = time.monotonic() - start
    assert deleted.status_code == 503, deleted.text[:300]
    assert "Traceback" not in deleted.text
    assert delete_took < 30

    proxy.restore()
    restored_at = time.monotonic()
    again = submit(base, QUICK_QUERY)
    assert wait_final(base, again, 30) == "COMPLETED"
    print(
        f"\nS3 cut while the job executed: ERROR {took:.1f} s later ({S3_ATTEMPTS} attempts); "
        f"DELETE answered 503 in {delete_took:.1f} s; after restoring, a job COMPLETED in "
        f"{time.monotonic() - restored_at:.1f} s. Message: {message}"
    )


def test_s3_upload_retried_through_reset_connections(s3_setup: S3Setup) -> None:
    base, proxy = s3_setup.api.base_url, s3_setup.proxy
    before = proxy.accepted
    proxy.reset_next(S3_ATTEMPTS - 1)  # one attempt is left for the upload to succeed
    job_id = submit(base, QUICK_QUERY, fmt="csv")
    assert wait_final(base, job_id, 60) == "COMPLETED"
    assert proxy.accepted - before >= S3_ATTEMPTS, "the upload was not retried"
    reply = requests.get(f"{base}/async/{job_id}/results/result", timeout=30)
    assert reply.status_code == 200
    assert reply.text.splitlines()[0] == "objectId"
    assert len(reply.text.splitlines()) == 4
    print(f"\nupload through {S3_ATTEMPTS - 1} reset connections: COMPLETED")


# -- disk full ------------------------------------------------------------------------------


def test_disk_full_on_the_local_result_store(tmp_path: Path) -> None:
    data_dir = demo(tmp_path)
    with small_disk(data_dir / "results", "1m") as disk:
        api = start_service(data_dir, tmp_path / "serve.log", wrapper=disk.wrapper)
        try:
            base = api.base_url
            results = disk.view(api.process.pid)
            small = submit(base, QUICK_QUERY)
            assert wait_final(base, small, 30) == "COMPLETED"
            used_before = {p.name for p in results.iterdir()}
            assert used_before == {small}

            big = submit(base, BIG_QUERY)
            start = time.monotonic()
            final = wait_final(base, big, 60)
            took = time.monotonic() - start
            assert final == "ERROR"
            kind, message = error_summary(base, big)
            assert kind == "transient"
            assert "No space left" in message, message
            assert "partial result was removed" in message
            assert str(data_dir) not in message
            # Nothing of the failed job stays on the disk: the partial file and its folder.
            assert {p.name for p in results.iterdir()} == used_before
            stat = os.statvfs(results)
            assert stat.f_blocks * stat.f_frsize <= 1024 * 1024, "not the small disk"
            free = stat.f_bavail * stat.f_frsize
            assert free > 0.9 * 1024 * 1024, f"only {free} bytes free after the cleanup"

            # The space is back: the next small job completes, the first result still reads.
            after = submit(base, QUICK_QUERY)
            assert wait_final(base, after, 30) == "COMPLETED"
            reply = requests.get(f"{base}/async/{small}/results/result", timeout=30)
            assert reply.status_code == 200
            assert b"<VOTABLE" in reply.content
            print(f"\ndisk full ({disk.how}): ERROR {took:.1f} s after submission: {message}")
        finally:
            stop_service(api)
