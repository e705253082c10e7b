"""Async TAP round-trip overhead: create, run, wait, fetch, beyond the query itself.

Run with `make bench` (or `python benchmarks/bench_async.py [--runs N]`).  It builds a small demo
catalog with the real CLI, then measures two real deployments side by side in one run:

* in-process runner (embedded default): `tap-service serve`, SQLite job store, local results;
* Celery: `tap-service serve` + `tap-service worker`, Redis broker, MariaDB job store, results
  in S3 (moto server on loopback), fetched through the 303 to the presigned URL.

For each, the same small query is run N times through /sync and N times as an async job
(POST /async PHASE=RUN, GET job with WAIT until final, GET the result); the overhead is the
difference of the medians.  Targets (issue 4): <= 100 ms in-process, <= 300 ms with Celery.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.services import mariadb_jobs_url, moto_server, redis_url  # noqa: E402
from tests.integration.conftest import start_service, stop_service  # noqa: E402

QUERY = "SELECT TOP 10 objectId, coord_ra, coord_dec FROM dp02_dc2_catalogs.Object"
NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0"}
FINAL = {"COMPLETED", "ERROR", "ABORTED"}


class Client:
    def __init__(self, base: str) -> None:
        url = urllib.parse.urlsplit(base)
        self.path = url.path
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port)
        self.others: dict[str, http.client.HTTPConnection] = {}

    def request(
        self, method: str, path: str, params: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        body = urllib.parse.urlencode(params) if params and method == "POST" else None
        if params and method == "GET":
            path = f"{path}?{urllib.parse.urlencode(params)}"
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        self.conn.request(method, path, body, headers)
        response = self.conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    def get_url(self, url: str) -> bytes:
        """GET an absolute URL (the presigned S3 one) on a kept-alive connection."""
        parts = urllib.parse.urlsplit(url)
        key = parts.netloc
        if key not in self.others:
            self.others[key] = http.client.HTTPConnection(parts.hostname, parts.port)
        conn = self.others[key]
        conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
        response = conn.getresponse()
        data = response.read()
        assert response.status == 200, (response.status, data[:200])
        return data

    def sync(self) -> bytes:
        status, _, data = self.request(
            "POST", f"{self.path}/sync", {"LANG": "ADQL", "QUERY": QUERY}
        )
        assert status == 200, data[:300]
        return data

    def run_async(self) -> bytes:
        status, headers, _ = self.request(
            "POST", f"{self.path}/async", {"LANG": "ADQL", "QUERY": QUERY, "PHASE": "RUN"}
        )
        assert status == 303
        job = urllib.parse.urlsplit(headers["location"]).path
        while True:
            status, _, doc = self.request("GET", job, {"WAIT": "10"})
            phase = ET.fromstring(doc).findtext("uws:phase", namespaces=NS)
            if phase in FINAL:
                break
        assert phase == "COMPLETED", doc[:500]
        status, headers, data = self.request("GET", f"{job}/results/result")
        if status == 303:
            return self.get_url(headers["location"])
        assert status == 200
        return data


def measure(base: str, runs: int) -> tuple[float, float]:
    client = Client(base)
    for _ in range(3):  # warm both paths
        client.sync()
        client.run_async()
    sync_times, async_times = [], []
    for _ in range(runs):
        start = time.perf_counter()
        client.sync()
        sync_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        client.run_async()
        async_times.append(time.perf_counter() - start)
    return statistics.median(sync_times) * 1000, statistics.median(async_times) * 1000


def report(name: str, sync_ms: float, async_ms: float, target: float) -> None:
    overhead = async_ms - sync_ms
    print(
        f"{name:<34} sync {sync_ms:7.1f} ms   async {async_ms:7.1f} ms   "
        f"overhead {overhead:7.1f} ms   target <= {target:.0f} ms "
        f"({overhead / target:.2f} of it)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--objects", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        env = {**os.environ, "TAP_DATA_DIR": str(data_dir)}
        subprocess.run(
            [sys.executable, "-m", "tap_service.cli", "demo", "--objects", str(args.objects)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        print(f"Async round trip, median of {args.runs}, query: {QUERY}")

        api = start_service(data_dir, Path(tmp) / "inprocess.log")
        try:
            sync_ms, async_ms = measure(api.base_url, args.runs)
        finally:
            stop_service(api)
        report("in-process (SQLite, local files)", sync_ms, async_ms, 100)

        with moto_server(Path(tmp) / "moto.log") as moto:
            import boto3
            import redis

            broker = redis_url(10)
            redis.Redis.from_url(broker).flushdb()
            boto3.client(
                "s3", endpoint_url=moto.url, region_name="us-east-1",
                aws_access_key_id="test", aws_secret_access_key="test",
            ).create_bucket(Bucket="bench")  # fmt: skip
            celery_env = {
                "TAP_UWS__RUNNER": "celery",
                "TAP_UWS__RESULT_STORE": "s3",
                "TAP_UWS__DATABASE_URL": mariadb_jobs_url("tap_bench_jobs"),
                "TAP_REDIS__URL": broker,
                "TAP_REDIS__QUEUE": "tap-async-bench",
                "TAP_S3__ENDPOINT_URL": moto.url,
                "TAP_S3__BUCKET": "bench",
                "TAP_S3__ACCESS_KEY_ID": "test",
                "TAP_S3__SECRET_ACCESS_KEY": "test",
            }
            from tap_service.storage.jobs import JobStore

            JobStore.from_url(celery_env["TAP_UWS__DATABASE_URL"]).close()
            worker_log = Path(tmp) / "worker.log"
            worker = subprocess.Popen(
                [sys.executable, "-m", "tap_service.cli", "worker", "--concurrency", "4"],
                env={**env, **celery_env}, stdout=worker_log.open("wb"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 60
                while "ready" not in worker_log.read_text():
                    if worker.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"worker did not start: {worker_log.read_text()}")
                    time.sleep(0.1)
                api = start_service(data_dir, Path(tmp) / "celery-api.log", celery_env)
                try:
                    sync_ms, async_ms = measure(api.base_url, args.runs)
                finally:
                    stop_service(api)
            finally:
                worker.terminate()
                worker.wait(timeout=30)
            report("Celery (Redis, MariaDB, S3/moto)", sync_ms, async_ms, 300)


if __name__ == "__main__":
    main()
