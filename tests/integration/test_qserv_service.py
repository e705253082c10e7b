"""The service with TAP_BACKEND=qserv on the MariaDB stand-in, driven over HTTP.

A per-process stand-in (small demo catalog, same generator and seed as an embedded demo built
beside it) is served by ``tap-service serve``; the embedded demo is served by a second process.
/sync answers must be the same documents; a dropped /sync connection and an async ABORT must
leave no query in the server's process list.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
import requests

from tap_service.services.standin import build_standin
from tap_service.storage.mysql_tap_schema import MySQLTapSchema
from tests.fixtures.services import mariadb_admin
from tests.integration.conftest import RunningService, cli, start_service, stop_service

pytestmark = [pytest.mark.integration, pytest.mark.mariadb]

N_OBJECTS = 3_000
N_FORCED = 3
DB = f"tap_test_qsvc_{os.getpid()}"
TS_DB = f"tap_test_qsvc_ts_{os.getpid()}"
URL = f"mysql+pymysql://root@127.0.0.1:3306/{DB}"
TS_URL = f"mysql+pymysql://root@127.0.0.1:3306/{TS_DB}"


@pytest.fixture(scope="module")
def server() -> Iterator[pymysql.Connection[Any]]:
    con = mariadb_admin()
    yield con
    con.close()


@pytest.fixture(scope="module")
def qserv_service(
    server: pymysql.Connection[Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    build_standin(URL, TS_URL, n_objects=N_OBJECTS, n_forced_per_object=N_FORCED)
    data_dir = tmp_path_factory.mktemp("qserv-data")
    env = {
        "TAP_BACKEND": "qserv",
        "TAP_QSERV__URL": URL,
        "TAP_QSERV__TAP_SCHEMA_URL": TS_URL,
        "TAP_QSERV__STANDIN_CPOLY_VERTICES": "20",
        "TAP_QSERV__DATABASES": json.dumps({"dp02_dc2_catalogs": DB}),
    }
    running = start_service(data_dir, data_dir / "serve.log", env)
    try:
        yield running
    finally:
        stop_service(running)
        with server.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        MySQLTapSchema(TS_URL).drop()


@pytest.fixture(scope="module")
def embedded_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    data_dir = tmp_path_factory.mktemp("embedded-data")
    env = {**os.environ, "TAP_DATA_DIR": str(data_dir)}
    result = cli("demo", "--objects", str(N_OBJECTS), "--forced-per-object", str(N_FORCED), env=env)
    assert result.returncode == 0, result.stderr
    running = start_service(data_dir, data_dir / "serve.log")
    yield running
    stop_service(running)


def _sync(service: RunningService, query: str, **extra: str) -> requests.Response:
    return requests.post(
        f"{service.base_url}/sync",
        data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv", **extra},
        timeout=120,
    )


QUERIES = [
    "SELECT TOP 20 objectId, coord_ra, coord_dec, g_psfFlux, detect_isPrimary "
    "FROM dp02_dc2_catalogs.Object ORDER BY objectId",
    "SELECT COUNT(*) AS n FROM dp02_dc2_catalogs.ForcedSource",
    "SELECT objectId, r_psfFlux FROM dp02_dc2_catalogs.Object "
    "WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62, -37, 1)) = 1",
    "SELECT TOP 50 f.forcedSourceId, f.objectId, f.psfFlux, c.expMidptMJD "
    "FROM dp02_dc2_catalogs.ForcedSource AS f JOIN dp02_dc2_catalogs.CcdVisit AS c "
    "ON f.ccdVisitId = c.ccdVisitId ORDER BY f.forcedSourceId",
    "SELECT table_name FROM TAP_SCHEMA.tables WHERE schema_name = 'dp02_dc2_catalogs'",
    "SELECT column_name, datatype FROM TAP_SCHEMA.columns "
    "WHERE table_name = 'dp02_dc2_catalogs.Object'",
]


@pytest.mark.parametrize("query", QUERIES)
def test_sync_documents_equal_the_embedded_ones(
    query: str, qserv_service: RunningService, embedded_service: RunningService
) -> None:
    got = _sync(qserv_service, query)
    want = _sync(embedded_service, query)
    assert got.status_code == want.status_code == 200, got.text[:500]
    got_lines, want_lines = got.text.splitlines(), want.text.splitlines()
    assert got_lines[0] == want_lines[0]
    if "ORDER BY" not in query:
        got_lines, want_lines = sorted(got_lines), sorted(want_lines)
    assert got_lines == want_lines
    assert len(got_lines) > 1


def test_mixed_query_is_refused(qserv_service: RunningService) -> None:
    reply = _sync(
        qserv_service,
        "SELECT t.table_name, o.objectId FROM TAP_SCHEMA.tables AS t, "
        "dp02_dc2_catalogs.Object AS o",
        RESPONSEFORMAT="votable",
    )
    assert reply.status_code == 400
    assert "TAP_SCHEMA" in reply.text


def test_availability_reflects_both_databases(qserv_service: RunningService) -> None:
    reply = requests.get(f"{qserv_service.base_url}/availability", timeout=10)
    assert reply.status_code == 200
    assert "<vosi:available>true</vosi:available>" in reply.text.replace(" ", "")


def _running(server: pymysql.Connection[Any], marker: str) -> list[Any]:
    with server.cursor() as cur:
        cur.execute(
            "SELECT id, info FROM information_schema.processlist WHERE info LIKE %s "
            "AND info NOT LIKE '%%information_schema.processlist%%'",
            (f"%{marker}%",),
        )
        return list(cur.fetchall())


def _wait(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _marker() -> str:
    return str(-(10**8) - uuid.uuid4().int % 10**8)


def _endless(marker: str) -> str:
    """27 billion rows: runs for hours unless cancelled; the marker finds it server-side."""
    return (
        "SELECT a.objectId, b.objectId AS b_id FROM dp02_dc2_catalogs.Object AS a, "
        "dp02_dc2_catalogs.Object AS b, dp02_dc2_catalogs.Object AS c "
        f"WHERE a.coord_ra > {marker}"
    )


def test_dropped_sync_connection_leaves_no_query(
    qserv_service: RunningService, server: pymysql.Connection[Any]
) -> None:
    marker = _marker()
    host, port = qserv_service.base_url.split("//")[1].split("/")[0].split(":")
    body = f"LANG=ADQL&MAXREC=100000000&QUERY={requests.utils.quote(_endless(marker))}"
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        (
            f"POST /api/tap/sync HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
    )
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    assert _running(server, marker)
    sock.close()
    _wait(lambda: not _running(server, marker), 15, "query still running after disconnect")


def test_abort_of_an_async_job_leaves_no_query(
    qserv_service: RunningService, server: pymysql.Connection[Any]
) -> None:
    marker = _marker()
    count = (
        "SELECT COUNT(*) AS n FROM dp02_dc2_catalogs.Object AS a, "
        "dp02_dc2_catalogs.Object AS b, dp02_dc2_catalogs.Object AS c "
        f"WHERE a.coord_ra > {marker}"
    )
    created = requests.post(
        f"{qserv_service.base_url}/async",
        data={"LANG": "ADQL", "QUERY": count, "PHASE": "RUN"},
        allow_redirects=False,
        timeout=30,
    )
    assert created.status_code == 303
    job_url = created.headers["Location"]
    if job_url.startswith("/"):
        job_url = qserv_service.base_url.split("/api/")[0] + job_url
    _wait(lambda: bool(_running(server, marker)), 15, "the job's query never started")
    reply = requests.post(f"{job_url}/phase", data={"PHASE": "ABORT"}, timeout=30)
    assert reply.status_code in (200, 303)
    _wait(lambda: not _running(server, marker), 15, "query still running after ABORT")
    phase = requests.get(f"{job_url}/phase", timeout=10).text.strip()
    assert phase == "ABORTED"


def test_standin_and_embedded_demo_hold_the_same_rows(
    qserv_service: RunningService, embedded_service: RunningService
) -> None:
    query = (
        "SELECT COUNT(*) AS n, SUM(detect_isPrimary) AS p, MIN(objectId) AS lo, "
        "MAX(objectId) AS hi FROM dp02_dc2_catalogs.Object"
    )
    got, want = _sync(qserv_service, query), _sync(embedded_service, query)
    assert got.status_code == want.status_code == 200, (got.text, want.text)
    assert got.text.splitlines() == want.text.splitlines()
