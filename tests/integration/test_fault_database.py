"""The Qserv backend loses its database and gets it back, with no restart of the API.

Two faults: the server killed (connections refused), and the server frozen with SIGSTOP (the
kernel still accepts connections, nothing answers: a hung server or a black-holed network).

A private MariaDB (its own port and data directory: the machine's shared server is never
touched) holds the stand-in catalog and TAP_SCHEMA.  The server is killed with SIGKILL while the
service runs: /sync answers 503 with a DALI error, /availability says false with a note, and an
async job ends in ERROR saying the database does not answer.  Once the server is started again
on the same port, the service's pool reconnects by itself and queries succeed.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tap_service.services.standin import build_standin
from tests.fixtures.private import PrivateMariaDB, assert_clean_unavailable, private_mariadb
from tests.integration.conftest import RunningService, start_service, stop_service

pytestmark = [pytest.mark.integration, pytest.mark.mariadb]

N_OBJECTS = 500
CACHE = 1.0  # TAP_QSERV__AVAILABILITY_CACHE_SECONDS
CONNECT_TIMEOUT = 2.0  # TAP_QSERV__CONNECT_TIMEOUT_SECONDS
QUERY = "SELECT TOP 5 objectId FROM dp02_dc2_catalogs.Object ORDER BY objectId"
NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0"}


class Setup:
    def __init__(self, db: PrivateMariaDB, api: RunningService) -> None:
        self.db = db
        self.api = api


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("fault-db")
    with private_mariadb(root / "mariadb") as db:
        url, ts_url = f"{db.url}/standin", f"{db.url}/tap_schema"
        build_standin(url, ts_url, n_objects=N_OBJECTS, n_forced_per_object=1)
        env = {
            "TAP_BACKEND": "qserv",
            "TAP_QSERV__URL": url,
            "TAP_QSERV__TAP_SCHEMA_URL": ts_url,
            "TAP_QSERV__STANDIN_CPOLY_VERTICES": "20",
            "TAP_QSERV__DATABASES": json.dumps({"dp02_dc2_catalogs": "standin"}),
            "TAP_QSERV__CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
            "TAP_QSERV__AVAILABILITY_CACHE_SECONDS": str(CACHE),
        }
        data_dir = root / "data"
        data_dir.mkdir()
        api = start_service(data_dir, root / "serve.log", env)
        try:
            yield Setup(db, api)
        finally:
            stop_service(api)


def sync(base: str, timeout: float = 30) -> requests.Response:
    return requests.post(
        f"{base}/sync",
        data={"LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": "csv"},
        timeout=timeout,
    )


def available(base: str, timeout: float = 30) -> tuple[bool, str]:
    doc = ET.fromstring(requests.get(f"{base}/availability", timeout=timeout).content)
    ns = {"vosi": "http://www.ivoa.net/xml/VOSIAvailability/v1.0"}
    flag = doc.findtext("vosi:available", namespaces=ns) == "true"
    return flag, doc.findtext("vosi:note", namespaces=ns) or ""


def test_database_killed_then_restarted(setup: Setup, tmp_path: Path) -> None:
    base = setup.api.base_url
    before = sync(base)
    assert before.status_code == 200, before.text
    rows = before.text.splitlines()
    assert rows[0] == "objectId"
    assert len(rows) == 6
    assert available(base)[0]

    setup.db.kill()
    killed_at = time.monotonic()

    down = sync(base)
    took = time.monotonic() - killed_at
    assert_clean_unavailable(down, "does not answer")
    assert took < 10, f"/sync took {took:.1f} s to report the dead database"

    time.sleep(CACHE + 0.2)  # the availability outcome is cached for CACHE seconds
    flag, note = available(base)
    assert not flag
    assert "does not answer" in note

    # An async job run while the database is down ends in ERROR, saying why.
    created = requests.post(
        f"{base}/async", data={"LANG": "ADQL", "QUERY": QUERY, "PHASE": "RUN"},
        allow_redirects=False, timeout=30,
    )  # fmt: skip
    assert created.status_code == 303, created.text
    job_url = f"{base}/async/{created.headers['location'].rsplit('/', 1)[1]}"
    deadline = time.monotonic() + 30
    phase = ""
    while time.monotonic() < deadline:
        phase = requests.get(f"{job_url}/phase", timeout=30).text
        if phase in ("COMPLETED", "ERROR"):
            break
        time.sleep(0.2)
    assert phase == "ERROR"
    job = ET.fromstring(requests.get(job_url, timeout=30).content)
    assert "does not answer" in (job.findtext("uws:errorSummary/uws:message", namespaces=NS) or "")
    assert job.find("uws:errorSummary", NS).attrib["type"] == "transient"  # type: ignore[union-attr]

    # Back: the same port and data directory; the API process is left alone.
    api_pid = setup.api.process.pid
    restarted_at = time.monotonic()
    setup.db.start()
    server_up = time.monotonic() - restarted_at
    recovered = None
    while time.monotonic() - restarted_at < 30:
        reply = sync(base)
        if reply.status_code == 200:
            recovered = time.monotonic() - restarted_at
            assert reply.text == before.text
            break
        assert reply.status_code == 503, reply.text[:500]
        time.sleep(0.2)
    assert recovered is not None, "queries still fail 30 s after the database came back"
    deadline = time.monotonic() + CACHE + 5
    while not available(base)[0]:
        assert time.monotonic() < deadline, "availability still false after the database came back"
        time.sleep(0.2)
    assert setup.api.process.pid == api_pid
    assert setup.api.process.poll() is None
    # Every pooled connection was dead; several queries in a row all succeed.
    for _ in range(10):
        assert sync(base).status_code == 200
    print(
        f"database down: /sync 503 after {took:.2f} s; server back in {server_up:.1f} s, "
        f"first query OK {recovered:.2f} s after the restart began"
    )


def test_database_frozen_then_thawed(setup: Setup) -> None:
    """A hung server must not hang the service: answers within a bound of the connect timeout."""
    base = setup.api.base_url
    assert sync(base).status_code == 200  # a pooled connection is idle: its ping must time out
    setup.db.freeze()
    try:
        time.sleep(CACHE + 0.2)  # past the cached outcome of the last availability check
        bound = 4 * CONNECT_TIMEOUT + 5
        start = time.monotonic()
        flag, note = available(base, timeout=60)
        availability_took = time.monotonic() - start
        assert not flag
        assert "does not answer" in note
        assert availability_took < bound, f"/availability took {availability_took:.1f} s"
        start = time.monotonic()
        reply = sync(base, timeout=60)
        sync_took = time.monotonic() - start
        assert reply.status_code == 503, reply.text[:300]
        assert "does not answer" in reply.text
        assert sync_took < bound, f"/sync took {sync_took:.1f} s"
    finally:
        setup.db.thaw()
    thawed_at = time.monotonic()
    while sync(base).status_code != 200:
        assert time.monotonic() - thawed_at < 30, "no recovery 30 s after the thaw"
        time.sleep(0.2)
    print(
        f"\ndatabase frozen: /availability false in {availability_took:.1f} s, /sync 503 in "
        f"{sync_took:.1f} s; queries OK {time.monotonic() - thawed_at:.2f} s after the thaw"
    )


# Tens of seconds for MariaDB on the stand-in: still running when the server is frozen.
SLOW_QUERY = (
    "SELECT COUNT(*) AS n FROM dp02_dc2_catalogs.Object AS a, dp02_dc2_catalogs.Object AS b, "
    "dp02_dc2_catalogs.Object AS c WHERE SIN(a.coord_ra + b.coord_dec + c.coord_ra) > 2"
)


def test_running_query_on_a_frozen_database_ends_at_its_deadline(setup: Setup) -> None:
    """KILL QUERY cannot reach a hung server: the service cuts its own socket at the deadline."""
    base = setup.api.base_url
    duration = 3
    created = requests.post(
        f"{base}/async",
        data={"LANG": "ADQL", "QUERY": SLOW_QUERY, "PHASE": "RUN",
              "EXECUTIONDURATION": str(duration)},
        allow_redirects=False, timeout=30,
    )  # fmt: skip
    assert created.status_code == 303, created.text
    job_url = f"{base}/async/{created.headers['location'].rsplit('/', 1)[1]}"
    deadline = time.monotonic() + 20
    while requests.get(f"{job_url}/phase", timeout=30).text != "EXECUTING":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    started = time.monotonic()
    time.sleep(0.5)
    setup.db.freeze()
    try:
        bound = duration + 2 * CONNECT_TIMEOUT + 8
        phase = ""
        while time.monotonic() - started < bound:
            phase = requests.get(f"{job_url}/phase", timeout=30).text
            if phase != "EXECUTING":
                break
            time.sleep(0.2)
        took = time.monotonic() - started
        assert phase == "ERROR", f"still {phase} {took:.1f} s after the job started"
        job = ET.fromstring(requests.get(job_url, timeout=30).content)
        message = job.findtext("uws:errorSummary/uws:message", namespaces=NS) or ""
        assert f"EXECUTIONDURATION of {duration} s" in message, message
    finally:
        setup.db.thaw()
    thawed_at = time.monotonic()
    while sync(base).status_code != 200:
        assert time.monotonic() - thawed_at < 30, "no recovery 30 s after the thaw"
        time.sleep(0.2)
    print(f"\nquery running on a frozen database: job ERROR {took:.1f} s after it started "
          f"(EXECUTIONDURATION {duration} s, connect timeout {CONNECT_TIMEOUT:g} s)")  # fmt: skip
