"""/metrics after known traffic, and JSON logs carrying request id, user and job id.

A real ``tap-service serve`` process (JSON logs, access log) on a small demo catalog; the
traffic is known, so the counters must move by exactly what was sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import cli, free_port

OBJECT = "dp02_dc2_catalogs.Object"


class Server:
    def __init__(self, url: str, root: str, log: Path, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.root = root
        self.log = log
        self.process = process


def start(data_dir: Path, log_path: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tap_service.cli", "serve", "--port", str(port), *extra],
        env={**os.environ, "TAP_DATA_DIR": str(data_dir), **(env or {})},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tap-service serve exited: {log_path.read_text()}")
        try:
            if requests.get(f"{root}/api/tap/availability", timeout=2).ok:
                return Server(f"{root}/api/tap", root, log_path, process)
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    pytest.fail(f"tap-service serve did not answer within 60 s: {log_path.read_text()}")


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def small_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("metrics-data")
    env = {**os.environ, "TAP_DATA_DIR": str(data_dir)}
    result = cli("demo", "--objects", "2000", "--forced-per-object", "5", env=env)
    assert result.returncode == 0, result.stderr
    return data_dir


@pytest.fixture(scope="module")
def server(small_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("metrics-logs") / "serve.log"
    running = start(small_catalog, log, "--json-logs", "--access-log", "--log-level", "info")
    yield running
    stop(running)


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(f"{server.root}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def sync(server: Server, query: str, **headers: str) -> requests.Response:
    return requests.post(
        f"{server.url}/sync",
        data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv"},
        headers=headers,
        timeout=30,
    )


def test_metrics_count_known_traffic(server: Server) -> None:
    before = scrape(server)
    ok = sync(server, f"SELECT TOP 7 objectId FROM {OBJECT}")
    assert ok.status_code == 200
    assert len(ok.text.strip().splitlines()) == 8  # header + 7 rows
    for _ in range(2):
        assert sync(server, "SELEC nothing").status_code == 400
    job = requests.post(
        f"{server.url}/async",
        data={"LANG": "ADQL", "QUERY": f"SELECT TOP 11 objectId FROM {OBJECT}", "PHASE": "RUN"},
        timeout=30,
        allow_redirects=False,
    )
    assert job.status_code == 303
    job_url = job.headers["location"]
    phase = requests.get(f"{job_url}/phase", timeout=10).text
    deadline = time.monotonic() + 30
    while phase not in ("COMPLETED", "ERROR") and time.monotonic() < deadline:
        time.sleep(0.1)
        phase = requests.get(f"{job_url}/phase", timeout=10).text
    assert phase == "COMPLETED"
    after = scrape(server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("tap_http_requests_total", method="POST", route="/sync", status="200") == 1
    assert delta("tap_http_requests_total", method="POST", route="/sync", status="400") == 2
    assert delta("tap_http_request_duration_seconds_count", method="POST", route="/sync") == 3
    assert delta("tap_http_request_duration_seconds_sum", method="POST", route="/sync") > 0
    assert delta("tap_rows_streamed_total") == 7 + 11
    assert delta("tap_bytes_streamed_total") >= len(ok.content)
    assert delta("tap_jobs_finished_total", phase="COMPLETED") == 1
    assert value(after, "tap_jobs", phase="COMPLETED") >= 1
    assert value(after, "tap_jobs", phase="EXECUTING") == 0
    assert ("tap_queue_depth", ()) in after


def test_json_logs_carry_request_user_and_job(server: Server) -> None:
    response = sync(
        server,
        f"SELECT TOP 1 objectId FROM {OBJECT}",
        **{"X-Request-ID": "req-metrics-1", "X-Auth-Request-User": "alice"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-metrics-1"
    generated = sync(server, f"SELECT TOP 1 objectId FROM {OBJECT}").headers["x-request-id"]
    assert len(generated) == 32
    time.sleep(0.3)
    entries = []
    for line in server.log.read_text().splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    assert entries, "no JSON log lines"
    mine = [e for e in entries if e.get("request_id") == "req-metrics-1"]
    assert mine
    assert all(e["user"] == "alice" for e in mine)
    assert {"time", "level", "logger", "message"} <= set(mine[0])
    # The async job of the other test logged its end with its job id.
    assert any(e.get("job_id") and "ended COMPLETED" in e["message"] for e in entries)
