"""Limits: each exceeded one gives a clear answer in the protocol's form (or a documented cap),
and 200 over-limit requests of each kind leave the process as they found it (open files,
threads, memory).  docs/security.md lists the limits and their settings.
"""

from __future__ import annotations

import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.demo_app import VOTABLE_NS, build_demo, dali_error, demo_client

SYNC = "/api/tap/sync"
ASYNC = "/api/tap/async"
UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
MAX_QUERY = 2_000
HARD_MAXREC = 50
WAIT_CAP = 0.3
RATE = 30
OBJECTS = "SELECT objectId FROM dp02_dc2_catalogs.Object"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("limits"))


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[TestClient]:
    with demo_client(
        data_dir,
        max_query_length=MAX_QUERY,
        maxrec_default=10,
        maxrec_limit=HARD_MAXREC,
        uws={"wait_max_seconds": WAIT_CAP},
    ) as test_client:
        yield test_client


def long_query(length: int) -> str:
    head = "SELECT objectId FROM dp02_dc2_catalogs.Object WHERE objectId IN (1"
    body = ", 1" * ((length - len(head) - 1) // 3)
    text = head + body + ")"
    return text + " " * (length - len(text))


def test_query_length_limit(client: TestClient) -> None:
    at_limit = long_query(MAX_QUERY)
    assert len(at_limit) == MAX_QUERY
    assert client.post(SYNC, data={"LANG": "ADQL", "QUERY": at_limit}).status_code == 200
    response = client.post(SYNC, data={"LANG": "ADQL", "QUERY": at_limit + " "})
    assert response.status_code == 400
    message, _ = dali_error(response.content)
    assert f"the limit is {MAX_QUERY}" in message
    # The same limit on async jobs, at creation: nothing is stored.
    before = len(ET.fromstring(client.get(ASYNC).content))
    created = client.post(
        ASYNC, data={"LANG": "ADQL", "QUERY": at_limit + " "}, follow_redirects=False
    )
    assert created.status_code == 400
    assert "TAP_MAX_QUERY_LENGTH" in dali_error(created.content)[0]
    assert len(ET.fromstring(client.get(ASYNC).content)) == before
    too_many = {f"P{i}": "x" for i in range(150)}
    created = client.post(ASYNC, data={"LANG": "ADQL", "QUERY": OBJECTS, **too_many})
    assert created.status_code == 400


def test_oversized_form_body_is_refused_while_it_arrives(client: TestClient) -> None:
    """A URL-encoded body past 3 bytes a query character (plus 1 MiB for the rest) is no valid
    request: 413 with a DALI error, declared or not, without the body being held."""
    limit = 3 * MAX_QUERY + (1 << 20)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b"LANG=ADQL&QUERY=" + b"x" * limit
    declared = client.post(SYNC, content=body, headers=form)
    assert declared.status_code == 413
    assert f"limited to {limit} bytes" in dali_error(declared.content)[0]

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused after `limit` bytes
        yield b"LANG=ADQL&QUERY="
        for _ in range(64):
            yield b"x" * (256 * 1024)

    streamed = client.post(SYNC, content=chunks(), headers=form)
    assert streamed.status_code == 413
    assert "it was not read further" in dali_error(streamed.content)[0]
    # Just at the limit the body is read and judged on its query (too long: 400).
    at_limit = b"LANG=ADQL&QUERY=" + b"x" * (limit - 16)
    assert client.post(SYNC, content=at_limit, headers=form).status_code == 400


def _rows_and_status(body: bytes) -> tuple[int, list[str]]:
    root = ET.fromstring(body)
    rows = len(list(root.iter(f"{VOTABLE_NS}TR")))
    infos = root.iter(f"{VOTABLE_NS}INFO")
    statuses = [i.get("value", "") for i in infos if i.get("name") == "QUERY_STATUS"]
    return rows, statuses


@pytest.mark.parametrize("maxrec", [str(HARD_MAXREC + 1), "1000000", str(2**70)])
def test_maxrec_above_the_hard_limit_is_capped(client: TestClient, maxrec: str) -> None:
    # TAP 1.1 2.7.4: a MAXREC above the service's hard limit is capped to it (the limit is in
    # /capabilities); the result says OVERFLOW when rows were left out.
    response = client.post(
        SYNC,
        data={"LANG": "ADQL", "QUERY": OBJECTS, "MAXREC": maxrec, "RESPONSEFORMAT": "votable/td"},
    )
    assert response.status_code == 200
    rows, statuses = _rows_and_status(response.content)
    assert rows == HARD_MAXREC
    assert statuses[-1] == "OVERFLOW"
    capabilities = client.get("/api/tap/capabilities").text
    assert f'<hard unit="row">{HARD_MAXREC}</hard>' in capabilities


@pytest.mark.parametrize("wait", ["1e9", "inf", "-1", "600"])
def test_wait_is_capped(client: TestClient, wait: str) -> None:
    created = client.post(ASYNC, data={"LANG": "ADQL", "QUERY": OBJECTS}, follow_redirects=False)
    job = created.headers["location"]
    started = time.monotonic()
    response = client.get(job, params={"WAIT": wait})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert ET.fromstring(response.content).find(f"{UWS}phase").text == "PENDING"  # type: ignore[union-attr]
    assert WAIT_CAP * 0.8 <= elapsed < WAIT_CAP + 2.0, elapsed
    client.delete(job)


def test_wait_that_is_not_a_number(client: TestClient) -> None:
    created = client.post(ASYNC, data={"LANG": "ADQL", "QUERY": OBJECTS}, follow_redirects=False)
    job = created.headers["location"]
    assert client.get(job, params={"WAIT": "soon"}).status_code == 400
    started = time.monotonic()
    assert client.get(job, params={"WAIT": "nan"}).status_code == 200
    assert time.monotonic() - started < WAIT_CAP + 2.0
    client.delete(job)


# --------------------------------------------------------------------------- resources


def _resources() -> tuple[int, int, int]:
    """Open file descriptors, threads, resident memory (kB) of this process."""
    fds = len(os.listdir("/proc/self/fd"))
    rss = 0
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return fds, threading.active_count(), rss


def _over_limit_requests(client: TestClient, n: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    too_long = long_query(MAX_QUERY + 500)
    huge = {"LANG": "ADQL", "QUERY": OBJECTS, "MAXREC": "9" * 30}
    for i in range(n):
        kind = i % 4
        if kind == 0:
            response = client.post(SYNC, data={"LANG": "ADQL", "QUERY": too_long})
        elif kind == 1:
            response = client.post(SYNC, data={"LANG": "ADQL", "QUERY": OBJECTS, "MAXREC": "1e9"})
        elif kind == 2:
            response = client.post(SYNC, data=huge)
        else:
            response = client.post(ASYNC, data={"LANG": "ADQL", "QUERY": too_long})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return statuses


def test_over_limit_requests_leave_no_trace(client: TestClient) -> None:
    _over_limit_requests(client, 20)  # warm every path (caches, pools, lazy imports)
    fds, threads, rss = _resources()
    statuses = _over_limit_requests(client, 200)
    after = _resources()
    # MAXREC=1e9 is not an integer (400); thirty nines are one, capped to the hard limit (200).
    assert statuses == {400: 150, 200: 50}, statuses
    assert after[0] <= fds + 3, (fds, after)
    assert after[1] <= threads + 2, (threads, after)
    assert after[2] - rss < 30_000, (rss, after)  # kB


def test_rate_quota_refusals_leave_no_trace(data_dir: Path) -> None:
    with demo_client(
        data_dir,
        max_query_length=MAX_QUERY,
        quotas={"enabled": True, "requests_per_minute": RATE, "concurrent_queries": 2},
    ) as limited:
        query = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 band FROM dp02_dc2_catalogs.CcdVisit"}
        # Stay within one minute window: start right after a window begins if it is about to end.
        if 60 - time.time() % 60 < 10:
            time.sleep(60 - time.time() % 60 + 0.1)
        for _ in range(RATE):
            assert limited.post(SYNC, data=query).status_code == 200
        fds, threads, rss = _resources()
        refused = [limited.post(SYNC, data=query) for _ in range(200)]
        after = _resources()
        assert {r.status_code for r in refused} == {429}
        retry = int(refused[-1].headers["Retry-After"])
        assert 1 <= retry <= 61
        assert "requests this minute" in dali_error(refused[-1].content)[0]
        assert after[0] <= fds + 3, (fds, after)
        assert after[1] <= threads + 2, (threads, after)
        assert after[2] - rss < 30_000, (rss, after)
