"""/async in-process (FastAPI's test client): the UWS 1.1 surface on the in-process runner."""

from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from astropy.io.votable import parse_single_table
from fastapi.testclient import TestClient

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.config import Config
from tap_service.factory import Factory
from tap_service.main import create_app
from tap_service.services.demo_catalog import build_demo_catalog
from tap_service.storage.embedded import EmbeddedDatabase

BASE = "/api/tap"
NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0", "xlink": "http://www.w3.org/1999/xlink"}
SLOW_QUERY = (
    "SELECT COUNT(*) AS n FROM dp02_dc2_catalogs.Object AS a, dp02_dc2_catalogs.Object AS b, "
    "dp02_dc2_catalogs.Object AS c WHERE SIN(a.coord_ra + b.coord_dec + c.coord_ra) > 2"
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("async")
    with EmbeddedDatabase(path, setup_statements=setup_statements()) as db:
        build_demo_catalog(db, n_objects=2000, n_forced_per_object=3, seed=5)
    return path


@pytest.fixture(scope="module")
def factory(data_dir: Path) -> Factory:
    config = Config(data_dir=data_dir, maxrec_default=50, maxrec_limit=1000)
    config.uws.execution_duration_max = 60
    config.uws.sweep_interval_seconds = 0.5
    return Factory(config)


@pytest.fixture(scope="module")
def client(factory: Factory) -> Iterator[TestClient]:
    with TestClient(create_app(factory=factory)) as test_client:
        yield test_client


def create(client: TestClient, **params: str) -> str:
    response = client.post(f"{BASE}/async", data=params, follow_redirects=False)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("http://testserver/api/tap/async/")
    return location.rsplit("/", 1)[1]


def job_xml(client: TestClient, job_id: str, **params: str) -> ET.Element:
    response = client.get(f"{BASE}/async/{job_id}", params=params)
    assert response.status_code == 200, response.text
    return ET.fromstring(response.content)


def phase_of(client: TestClient, job_id: str) -> str:
    return client.get(f"{BASE}/async/{job_id}/phase").text


def wait_final(client: TestClient, job_id: str, limit: float = 30) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        phase = phase_of(client, job_id)
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            return phase
        job_xml(client, job_id, WAIT="2")
    raise AssertionError(f"job {job_id} still {phase_of(client, job_id)}")


def test_run_to_completion_and_fetch_result(client: TestClient) -> None:
    job_id = create(
        client,
        LANG="ADQL",
        QUERY="SELECT TOP 7 objectId FROM dp02_dc2_catalogs.Object ORDER BY objectId",
        PHASE="RUN",
        RUNID="my-run",
    )
    assert wait_final(client, job_id) == "COMPLETED"
    job = job_xml(client, job_id)
    assert job.attrib["version"] == "1.1"
    assert job.findtext("uws:runId", namespaces=NS) == "my-run"
    assert job.find("uws:startTime", NS).text  # type: ignore[union-attr]
    assert job.findtext("uws:jobInfo/progress", namespaces=NS) == "7 rows read"
    params = {p.attrib["id"]: p.text for p in job.iterfind("uws:parameters/uws:parameter", NS)}
    assert params["LANG"] == "ADQL"
    assert "PHASE" not in params
    result = job.find("uws:results/uws:result", NS)
    assert result is not None
    assert result.attrib["id"] == "result"
    href = result.attrib[f"{{{NS['xlink']}}}href"]
    body = client.get(href.replace("http://testserver", ""))
    assert body.status_code == 200
    table = parse_single_table(io.BytesIO(body.content)).to_table()
    assert len(table) == 7
    assert list(table["objectId"]) == sorted(table["objectId"])
    listing = client.get(f"{BASE}/async/{job_id}/results")
    assert ET.fromstring(listing.content).find("uws:result", NS) is not None


def test_pending_job_sub_resources_and_run(client: TestClient) -> None:
    job_id = create(
        client, LANG="ADQL", QUERY="SELECT TOP 3 objectId FROM dp02_dc2_catalogs.Object"
    )
    assert phase_of(client, job_id) == "PENDING"
    assert client.get(f"{BASE}/async/{job_id}/quote").status_code == 200
    assert client.get(f"{BASE}/async/{job_id}/owner").text == ""
    assert client.get(f"{BASE}/async/{job_id}/executionduration").text == "60"
    r = client.post(
        f"{BASE}/async/{job_id}/executionduration",
        data={"EXECUTIONDURATION": "30"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get(f"{BASE}/async/{job_id}/executionduration").text == "30"
    r = client.post(
        f"{BASE}/async/{job_id}/destruction",
        data={"DESTRUCTION": "2099-01-01T00:00:00Z"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.get(f"{BASE}/async/{job_id}/destruction").text.startswith("20")
    r = client.post(
        f"{BASE}/async/{job_id}/parameters", data={"MAXREC": "2"}, follow_redirects=False
    )
    assert r.status_code == 303
    params = ET.fromstring(client.get(f"{BASE}/async/{job_id}/parameters").content)
    assert {p.attrib["id"]: p.text for p in params}["MAXREC"] == "2"
    r = client.post(f"{BASE}/async/{job_id}/phase", data={"PHASE": "RUN"}, follow_redirects=False)
    assert r.status_code == 303
    assert wait_final(client, job_id) == "COMPLETED"
    body = client.get(f"{BASE}/async/{job_id}/results/result").content
    assert len(parse_single_table(io.BytesIO(body)).array) == 2
    # A running or finished job's parameters are frozen.
    r = client.post(f"{BASE}/async/{job_id}/parameters", data={"MAXREC": "9"})
    assert r.status_code == 409


def test_bad_query_ends_in_error_with_document(client: TestClient) -> None:
    job_id = create(client, LANG="ADQL", QUERY="SELECT nope FROM nowhere", PHASE="RUN")
    assert wait_final(client, job_id) == "ERROR"
    job = job_xml(client, job_id)
    summary = job.find("uws:errorSummary", NS)
    assert summary is not None
    assert summary.attrib["type"] == "fatal"
    error = client.get(f"{BASE}/async/{job_id}/error")
    assert error.status_code == 200
    assert b'name="QUERY_STATUS" value="ERROR"' in error.content
    assert b"nowhere" in error.content


def test_unknown_job_and_bad_parameters(client: TestClient) -> None:
    for path in ("", "/phase", "/parameters", "/results", "/error", "/results/result"):
        r = client.get(f"{BASE}/async/0000000000000000{path}")
        assert r.status_code == 404, path
        assert b'value="ERROR"' in r.content
    r = client.post(f"{BASE}/async", data={"LANG": "ADQL", "QUERY": "SELECT 1", "PHASE": "X"})
    assert r.status_code == 400
    r = client.post(
        f"{BASE}/async", data={"LANG": "ADQL", "QUERY": "SELECT 1", "EXECUTIONDURATION": "x"}
    )
    assert r.status_code == 400
    assert client.get(f"{BASE}/async", params={"PHASE": "NOPE"}).status_code == 400
    assert client.get(f"{BASE}/async", params={"LAST": "-1"}).status_code == 400
    assert client.get(f"{BASE}/async", params={"AFTER": "yesterday"}).status_code == 400
    job_id = create(client, LANG="ADQL", QUERY="SELECT 1")
    r = client.post(f"{BASE}/async/{job_id}/phase", data={"PHASE": "SUSPEND"})
    assert r.status_code == 400


def test_list_filters(client: TestClient) -> None:
    ids = [create(client, LANG="ADQL", QUERY="SELECT TOP 1 objectId FROM dp02_dc2_catalogs.Object")
           for _ in range(3)]  # fmt: skip
    listing = ET.fromstring(client.get(f"{BASE}/async").content)
    assert listing.attrib["version"] == "1.1"
    listed = [ref.attrib["id"] for ref in listing.iterfind("uws:jobref", NS)]
    assert set(ids) <= set(listed)
    last = ET.fromstring(client.get(f"{BASE}/async", params={"LAST": "2"}).content)
    assert [ref.attrib["id"] for ref in last] == [ids[2], ids[1]]
    pending = ET.fromstring(client.get(f"{BASE}/async", params={"PHASE": "PENDING"}).content)
    assert all(ref.findtext("uws:phase", namespaces=NS) == "PENDING" for ref in pending)
    assert set(ids) <= {ref.attrib["id"] for ref in pending}
    created = job_xml(client, ids[1]).findtext("uws:creationTime", namespaces=NS)
    assert created
    after = ET.fromstring(client.get(f"{BASE}/async", params={"AFTER": created}).content)
    after_ids = {ref.attrib["id"] for ref in after}
    assert ids[2] in after_ids
    assert ids[1] not in after_ids
    assert ids[0] not in after_ids


def test_delete_both_ways(client: TestClient) -> None:
    job_id = create(client, LANG="ADQL", QUERY="SELECT 1")
    r = client.post(f"{BASE}/async/{job_id}", data={"ACTION": "DELETE"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].endswith("/api/tap/async")
    assert client.get(f"{BASE}/async/{job_id}").status_code == 404
    job_id = create(client, LANG="ADQL", QUERY="SELECT 1")
    r = client.delete(f"{BASE}/async/{job_id}", follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"{BASE}/async/{job_id}").status_code == 404


def test_wait_blocks_until_phase_changes_and_is_capped(client: TestClient) -> None:
    job_id = create(client, LANG="ADQL", QUERY="SELECT 1")
    start = time.monotonic()
    job = job_xml(client, job_id, WAIT="0.5")
    assert 0.4 < time.monotonic() - start < 3
    assert job.findtext("uws:phase", namespaces=NS) == "PENDING"
    # A PHASE other than the current one returns at once.
    start = time.monotonic()
    job_xml(client, job_id, WAIT="30", PHASE="EXECUTING")
    assert time.monotonic() - start < 0.5


def test_abort_during_execution_interrupts_the_query(client: TestClient, factory: Factory) -> None:
    job_id = create(client, LANG="ADQL", QUERY=SLOW_QUERY, PHASE="RUN")
    deadline = time.monotonic() + 10
    while phase_of(client, job_id) != "EXECUTING" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    backend = factory.backend
    assert isinstance(backend, EmbeddedDatabase)
    assert len(backend._active) >= 1  # the query is running in DuckDB
    start = time.monotonic()
    r = client.post(f"{BASE}/async/{job_id}/phase", data={"PHASE": "ABORT"}, follow_redirects=False)
    assert r.status_code == 303
    assert phase_of(client, job_id) == "ABORTED"
    while backend._active and time.monotonic() - start < 5:
        time.sleep(0.02)
    assert not backend._active, "the DuckDB query still runs after ABORT"
    assert time.monotonic() - start < 2
    while factory.job_runner.running() and time.monotonic() - start < 5:
        time.sleep(0.02)  # the job's thread is tidying up after the interrupted query
    assert factory.job_runner.running() == []
    assert phase_of(client, job_id) == "ABORTED"


def test_execution_duration_cancels_the_query(client: TestClient, factory: Factory) -> None:
    job_id = create(client, LANG="ADQL", QUERY=SLOW_QUERY, EXECUTIONDURATION="1", PHASE="RUN")
    assert wait_final(client, job_id, limit=15) == "ERROR"
    job = job_xml(client, job_id)
    message = job.findtext("uws:errorSummary/uws:message", namespaces=NS) or ""
    assert "EXECUTIONDURATION of 1 s" in message
    assert "cancelled" in message
    assert float(job.findtext("uws:executionDuration", namespaces=NS) or 0) == 1


def test_destruction_sweep_deletes_job_and_result(client: TestClient, factory: Factory) -> None:
    job_id = create(
        client, LANG="ADQL", QUERY="SELECT TOP 2 objectId FROM dp02_dc2_catalogs.Object"
    )
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    r = client.post(f"{BASE}/async/{job_id}/destruction", data={"DESTRUCTION": soon})
    assert r.status_code == 200
    client.post(f"{BASE}/async/{job_id}/phase", data={"PHASE": "RUN"})
    assert wait_final(client, job_id) == "COMPLETED"
    folder = factory.config.data_dir / "results" / job_id
    assert folder.exists()
    deadline = time.monotonic() + 10
    while client.get(f"{BASE}/async/{job_id}/phase").status_code != 404:
        assert time.monotonic() < deadline, "the sweep did not destroy the job"
        time.sleep(0.2)
    assert not folder.exists()


def test_in_process_restart_recovers_jobs(data_dir: Path, tmp_path: Path) -> None:
    """A new API process ends the old one's EXECUTING jobs in ERROR and runs its QUEUED ones."""
    config = Config(data_dir=data_dir)
    config.uws.database_url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    first = Factory(config)
    service = first.job_service()
    query = {"lang": "ADQL", "query": "SELECT TOP 1 objectId FROM dp02_dc2_catalogs.Object"}
    running = service.create(query)
    queued = service.create(query)
    store = first.job_store
    assert store.mark_queued(running.id)
    assert store.mark_executing(running.id)
    assert store.mark_queued(queued.id)  # queued in a process that then died
    first.close()
    second = Factory(config)
    try:
        second.start_jobs()
        again = second.job_service()
        deadline = time.monotonic() + 10
        while again.get(queued.id).phase.value != "COMPLETED":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        lost = again.get(running.id)
        assert lost.phase.value == "ERROR"
        assert "restarted" in (lost.error_message or "")
    finally:
        second.close()


@pytest.mark.parametrize("server", ["mariadb", "postgresql"])
def test_jobs_run_with_a_server_job_store(data_dir: Path, server: str) -> None:
    """The in-process runner on the production job stores: a job runs to COMPLETED."""
    from tests.fixtures.services import mariadb_jobs_url, postgres_jobs_url

    config = Config(data_dir=data_dir)
    config.uws.database_url = (
        mariadb_jobs_url("tap_test_jobs_e2e") if server == "mariadb" else postgres_jobs_url()
    )
    factory = Factory(config)
    try:
        service = factory.job_service()
        job = service.create(
            {"lang": "ADQL", "query": "SELECT TOP 4 objectId FROM dp02_dc2_catalogs.Object",
             "phase": "RUN"}
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while (job := service.get(job.id)).phase.value not in ("COMPLETED", "ERROR"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert job.phase.value == "COMPLETED", job.error_message
        _, location = service.result(job.id, "result")
        assert location.path is not None
        assert len(parse_single_table(str(location.path)).array) == 4
    finally:
        factory.close()
