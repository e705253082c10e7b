"""Bad input against /sync over HTTP (the whole in-process app on a real demo catalog).

Every answer must be a result (200, a VOTable whose QUERY_STATUS is OK or OVERFLOW) or a 400
DALI error document (QUERY_STATUS=ERROR); a rejected query's document names the line and
column.  No 5xx, ever: a query the service accepted and the database then refused is the
service's bug (the checker let through something the backend cannot run).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fixtures.demo_app import VOTABLE_NS, build_demo, dali_error, demo_client
from tests.fuzzing import byte_mutants, fuzz_settings, token_mutants

SYNC = "/api/tap/sync"

# Queries on the demo catalog: its examples, plus strings, geometry and TAP_SCHEMA.
HTTP_SEEDS = (
    "SELECT objectId, coord_ra, coord_dec, DISTANCE(POINT('ICRS', coord_ra, coord_dec), "
    "POINT('ICRS', 62.0, -37.0)) AS dist FROM dp02_dc2_catalogs.Object WHERE "
    "CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.0, -37.0, 0.05)) = 1 "
    "ORDER BY dist",
    "SELECT TOP 100 objectId, r_psfFlux FROM dp02_dc2_catalogs.Object WHERE "
    "CONTAINS(POINT('ICRS', coord_ra, coord_dec), BOX('ICRS', 60.0, -35.0, 1.0, 1.0)) = 1 "
    "AND detect_isPrimary = 1 AND r_psfFlux > 10000 ORDER BY r_psfFlux DESC",
    "SELECT fs.objectId, fs.band, cv.expMidptMJD AS mjd FROM dp02_dc2_catalogs.ForcedSource "
    "AS fs JOIN dp02_dc2_catalogs.CcdVisit AS cv ON fs.ccdVisitId = cv.ccdVisitId "
    "WHERE fs.objectId IN (SELECT TOP 1 objectId FROM dp02_dc2_catalogs.Object) ORDER BY mjd",
    "SELECT band, COUNT(*) AS n, AVG(psfFlux) AS mean_flux FROM "
    "dp02_dc2_catalogs.ForcedSource GROUP BY band HAVING COUNT(*) > 1 ORDER BY band",
    "SELECT column_name, datatype, unit FROM TAP_SCHEMA.columns WHERE "
    "table_name = 'dp02_dc2_catalogs.Object' AND column_name LIKE 'coord%' ORDER BY column_index",
    "SELECT TOP 5 band, UPPER(band) || '''x' AS b, ROUND(expMidptMJD, 3) FROM "
    "dp02_dc2_catalogs.CcdVisit WHERE band IN ('g', 'r') OR band ILIKE 'I'",
    'SELECT TOP 5 "objectId", o.coord_ra * 2 + 1 FROM dp02_dc2_catalogs.Object AS o '
    "WHERE o.coord_dec BETWEEN -40 AND -30 AND o.r_psfFlux IS NOT NULL",
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = build_demo(tmp_path_factory.mktemp("fuzz-sync"))
    with demo_client(data_dir, maxrec_default=20) as test_client:
        yield test_client


def check_answer(client: TestClient, text: str, **params: str) -> int:
    """POST the query; assert the answer is a result or a positioned DALI error."""
    response = client.post(SYNC, data={"LANG": "ADQL", "QUERY": text, "MAXREC": "5", **params})
    status = response.status_code
    assert status in (200, 400), (status, text, response.content[:500])
    assert response.headers["content-type"].startswith("application/x-votable+xml")
    if status == 400:
        message, infos = dali_error(response.content)
        # A value the database refused while running (a CAST that does not fit) has no position.
        if text.strip() and not message.startswith("The query failed on a value"):
            assert "LINE" in infos, (message, text)
            assert int(infos["LINE"]) >= 1
            assert int(infos["COLUMN"]) >= 1
        return status
    root = ET.fromstring(response.content)
    statuses = [
        i.get("value") for i in root.iter(f"{VOTABLE_NS}INFO") if i.get("name") == "QUERY_STATUS"
    ]
    # A trailing ERROR would mean the database failed on a query the service accepted.
    assert statuses, text
    assert set(statuses) <= {"OK", "OVERFLOW"}, (statuses, text)
    return status


def test_every_seed_runs(client: TestClient) -> None:
    for text in HTTP_SEEDS:
        assert check_answer(client, text) == 200, text


@fuzz_settings(max_examples=400)
@given(token_mutants(HTTP_SEEDS))
@example("SELECT TOP 5 objectId FROM dp02_dc2_catalogs.Object WHERE 1e400 < coord_ra")
@example("SELECT 1" + "0" * 400 + " FROM dp02_dc2_catalogs.CcdVisit")
@example("SELECT TOP 1 SQRT(-1), LOG(0), 1 / 0, EXP(1000) FROM dp02_dc2_catalogs.CcdVisit")
@example("SELECT TOP 1 POINT('ICRS' * coord_ra, coord_dec) FROM dp02_dc2_catalogs.Object")
@example("SELECT TOP 1 '30' * coord_ra, -coord_dec FROM dp02_dc2_catalogs.Object")
@example("SELECT TOP 5 objectId FROM dp02_dc2_catalogs.Object WHERE coord_dec BETWEEN 'x' AND 1")
@example("SELECT TOP 2 CAST(ccdVisitId AS SMALLINT) FROM dp02_dc2_catalogs.CcdVisit")
@example("SELECT TOP 2 band, ccdVisitId FROM dp02_dc2_catalogs.CcdVisit ORDER BY -1")
@example("SELECT TOP 2 99999999999999999999 * 99999999999999999999 FROM dp02_dc2_catalogs.CcdVisit")
def test_token_mutants_over_http(client: TestClient, text: str) -> None:
    check_answer(client, text)


@fuzz_settings(max_examples=200)
@given(byte_mutants(HTTP_SEEDS).map(lambda t: t.encode("utf-8", "replace").decode("utf-8")))
@example("SELECT\x00 1 FROM dp02_dc2_catalogs.CcdVisit")
def test_byte_mutants_over_http(client: TestClient, text: str) -> None:
    check_answer(client, text)


UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"


@fuzz_settings(max_examples=20)
@given(token_mutants(HTTP_SEEDS))
def test_token_mutants_as_async_jobs(client: TestClient, text: str) -> None:
    # The same query path in a job: it ends COMPLETED with a clean result or in ERROR with an
    # error document and a client-facing summary, never stuck, never an internal error.
    created = client.post(
        "/api/tap/async",
        data={"LANG": "ADQL", "QUERY": text, "PHASE": "RUN", "MAXREC": "5"},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.content[:300]
    job = created.headers["location"]
    deadline = time.monotonic() + 60
    while True:  # WAIT returns at each phase change (QUEUED, EXECUTING, ...)
        document = ET.fromstring(client.get(job, params={"WAIT": "10"}).content)
        phase = document.findtext(f"{UWS}phase")
        if phase not in ("PENDING", "QUEUED", "EXECUTING") or time.monotonic() > deadline:
            break
    assert phase in ("COMPLETED", "ERROR"), phase
    if phase == "COMPLETED":
        result = client.get(f"{job}/results/result")
        assert result.status_code == 200
        assert b'value="ERROR"' not in result.content
    else:
        assert client.get(f"{job}/error").status_code == 200
        summary = "".join(document.find(f"{UWS}errorSummary").itertext())  # type: ignore[union-attr]
        assert "Internal error" not in summary, summary
        assert "could not run" not in summary, summary
    assert client.delete(job, follow_redirects=False).status_code == 303


_param_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
) | st.sampled_from(["", " ", "-1", "0", "1e3", "99999999999999999999", "nan", "votable", "csv"])


@fuzz_settings(max_examples=80)
@given(
    maxrec=_param_text,
    fmt=_param_text,
    lang=_param_text | st.sampled_from(["ADQL", "adql-2.0", "ADQL-2.1"]),
    request=_param_text | st.just("doQuery"),
)
def test_parameter_values(
    client: TestClient, maxrec: str, fmt: str, lang: str, request: str
) -> None:
    response = client.post(
        SYNC,
        data={
            "LANG": lang,
            "QUERY": "SELECT TOP 3 band FROM dp02_dc2_catalogs.CcdVisit",
            "MAXREC": maxrec,
            "RESPONSEFORMAT": fmt,
            "REQUEST": request,
        },
    )
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        dali_error(response.content)


def test_boolean_flags_are_numbers_in_expressions(client: TestClient) -> None:
    # Found by the fuzzer: a flag in POINT (or arithmetic) was a DuckDB binder error (500).
    base = "FROM dp02_dc2_catalogs.Object"
    for query in (
        f"SELECT TOP 3 objectId {base} WHERE CONTAINS(POINT('ICRS', detect_isPrimary, "
        "coord_dec), BOX('ICRS', 60.0, -35.0, 1.0, 1.0)) = 1",
        f"SELECT detect_isPrimary, COUNT(*) AS n {base} GROUP BY detect_isPrimary "
        "ORDER BY detect_isPrimary",
        f"SELECT DISTINCT detect_isPrimary {base} ORDER BY detect_isPrimary DESC",
    ):
        assert check_answer(client, query) == 200, query
    response = client.post(
        SYNC,
        data={
            "LANG": "ADQL",
            "QUERY": f"SELECT TOP 5 detect_isPrimary, detect_isPrimary + 1 AS x {base}",
            "RESPONSEFORMAT": "csv",
        },
    )
    rows = [line.split(",") for line in response.text.splitlines()[1:]]
    assert rows
    for flag, x in rows:
        assert float(x) == (2.0 if flag.lower() in ("true", "t", "1") else 1.0), (flag, x)


def test_huge_uws_list_filter(client: TestClient) -> None:
    # LAST beyond a 64-bit integer overflowed the job store's driver (HTTP 500): capped now.
    response = client.get("/api/tap/async", params={"LAST": str(2**63)})
    assert response.status_code == 200, response.content[:300]
    assert client.get("/api/tap/async", params={"LAST": "0"}).status_code == 400


def test_repeated_and_odd_parameter_names(client: TestClient) -> None:
    query = "SELECT TOP 1 band FROM dp02_dc2_catalogs.CcdVisit"
    body = f"LANG=ADQL&QUERY={query}&MAXREC=1&maxrec=2".encode()
    response = client.post(
        SYNC, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert "MAXREC" in dali_error(response.content)[0]
    odd = {"LANG": "ADQL", "QUERY": query, "\x00": "1", "QUERY\x00": "x", "é" * 300: "y"}
    assert client.post(SYNC, data=odd).status_code == 200
    broken = b"LANG=ADQL&QUERY=%ZZ%00%ff&MAXREC=%"
    response = client.post(
        SYNC, content=broken, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    dali_error(response.content)
    response = client.post(
        SYNC,
        content=b'--x\r\nContent-Disposition: form-data; name="QUERY"\r\n\r\nSELECT',
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 400
    dali_error(response.content)
