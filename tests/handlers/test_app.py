"""The HTTP surface in-process (FastAPI's test client) on a small real demo catalog."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from astropy.io.votable import parse_single_table
from fastapi.testclient import TestClient

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.config import Config, UserFunctionConfig
from tap_service.main import create_app
from tap_service.services.demo_catalog import build_demo_catalog
from tap_service.storage.embedded import EmbeddedDatabase

BASE = "/api/tap"
NS = {
    "vosi": "http://www.ivoa.net/xml/VOSICapabilities/v1.0",
    "tr": "http://www.ivoa.net/xml/TAPRegExt/v1.0",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("app")
    with EmbeddedDatabase(data_dir, setup_statements=setup_statements()) as db:
        build_demo_catalog(db, n_objects=2000, n_forced_per_object=3, seed=5)
    config = Config(
        data_dir=data_dir,
        maxrec_default=50,
        maxrec_limit=1000,
        user_functions=[
            UserFunctionConfig(
                name="ivo_string_length",
                signature="ivo_string_length(s VARCHAR) -> INTEGER",
                returns="int",
                description="Number of characters of a string.",
                sql={"embedded": "length"},
            )
        ],
    )
    with TestClient(create_app(config)) as test_client:
        yield test_client


def sync(client: TestClient, **params: str) -> tuple[int, bytes, str]:
    response = client.post(f"{BASE}/sync", data=params)
    return response.status_code, response.content, response.headers["content-type"]


def test_default_and_hard_row_limits(client: TestClient) -> None:
    status, body, _ = sync(
        client, LANG="ADQL", QUERY="SELECT objectId FROM dp02_dc2_catalogs.Object"
    )
    assert status == 200
    table = parse_single_table(io.BytesIO(body))
    assert len(table.array) == 50  # TAP_MAXREC_DEFAULT
    assert b'name="QUERY_STATUS" value="OVERFLOW"' in body
    status, body, _ = sync(
        client, LANG="ADQL", QUERY="SELECT objectId FROM dp02_dc2_catalogs.Object", MAXREC="5000"
    )
    assert len(parse_single_table(io.BytesIO(body)).array) == 1000  # TAP_MAXREC_LIMIT


def test_maxrec_zero_returns_metadata_only(client: TestClient) -> None:
    status, body, _ = sync(
        client, LANG="ADQL", QUERY="SELECT objectId, coord_ra FROM dp02_dc2_catalogs.Object",
        MAXREC="0",
    )  # fmt: skip
    assert status == 200
    table = parse_single_table(io.BytesIO(body))
    assert len(table.array) == 0
    assert [f.name for f in table.fields] == ["objectId", "coord_ra"]


def test_get_and_post_agree_and_request_doquery_is_optional(client: TestClient) -> None:
    query = "SELECT TOP 3 objectId FROM dp02_dc2_catalogs.Object ORDER BY objectId"
    got = client.get(f"{BASE}/sync", params={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query})
    posted = client.post(f"{BASE}/sync", data={"LANG": "ADQL-2.1", "QUERY": query})
    assert got.status_code == posted.status_code == 200
    assert got.content == posted.content.replace(b'value="ADQL-2.1"', b'value="ADQL"')
    bad = client.get(f"{BASE}/sync", params={"REQUEST": "getCapabilities", "LANG": "ADQL"})
    assert bad.status_code == 400


def test_multipart_form_is_read(client: TestClient) -> None:
    response = client.post(
        f"{BASE}/sync",
        files={"QUERY": (None, "SELECT TOP 1 objectId FROM dp02_dc2_catalogs.Object"),
               "LANG": (None, "ADQL")},
    )  # fmt: skip
    assert response.status_code == 200, response.text


def test_semantic_error_names_the_position(client: TestClient) -> None:
    status, body, media = sync(
        client, LANG="ADQL",
        QUERY="SELECT objectId\nFROM dp02_dc2_catalogs.Object\nWHERE CONTAINS(coord_ra, 3) = 1",
    )  # fmt: skip
    assert status == 400
    assert media.startswith("application/x-votable+xml")
    assert b'<INFO name="LINE" value="3"/>' in body
    assert b"QUERY_STATUS" in body


def test_capabilities_declare_what_the_service_does(client: TestClient) -> None:
    response = client.get(f"{BASE}/capabilities")
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    tap = [c for c in root.iter("capability") if c.get("standardID") == "ivo://ivoa.net/std/TAP"]
    assert len(tap) == 1
    forms = {f.text for f in tap[0].iter("form")}
    assert {"CONTAINS", "POINT", "CIRCLE", "BOX", "POLYGON", "DISTANCE", "WITH", "OFFSET"} <= forms
    assert "REGION" not in forms  # not supported: not declared
    mimes = {m.text for m in tap[0].iter("mime")}
    assert any(m and m.startswith("text/csv") for m in mimes)
    assert any(m and "BINARY2" in m for m in mimes)
    hard = next(tap[0].iter("outputLimit")).find("hard")
    assert hard is not None
    assert hard.text == "1000"
    access = next(tap[0].iter("accessURL")).text
    assert access is not None
    assert access.endswith("/api/tap")


def test_tables_detail_and_single_table(client: TestClient) -> None:
    full = client.get(f"{BASE}/tables").text
    short = client.get(f"{BASE}/tables", params={"detail": "min"}).text
    assert "<column>" in full
    assert "<column>" not in short
    assert "dp02_dc2_catalogs.Object" in short
    one = client.get(f"{BASE}/tables/dp02_dc2_catalogs.ForcedSource")
    assert one.status_code == 200
    assert "<foreignKey>" in one.text
    assert one.text.count("<table") == 0  # the root is vosi:table
    missing = client.get(f"{BASE}/tables/nope.nothing")
    assert missing.status_code == 404
    assert "QUERY_STATUS" in missing.text
    assert client.get(f"{BASE}/tables", params={"detail": "everything"}).status_code == 400


def test_unknown_paths_and_methods_are_dali_errors(client: TestClient) -> None:
    assert client.get(f"{BASE}/nothing-here").status_code == 404
    response = client.delete(f"{BASE}/sync")
    assert response.status_code == 405
    assert "QUERY_STATUS" in response.text


def test_examples_are_xhtml_with_queries_that_run(client: TestClient) -> None:
    response = client.get(f"{BASE}/examples")
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    queries = [e.text for e in root.iter() if e.get("property") == "query"]
    assert len(queries) >= 5
    for query in queries:
        assert query is not None
        status, body, _ = sync(client, LANG="ADQL", QUERY=query, MAXREC="10")
        assert status == 200, body[:500]


def test_query_length_limit(client: TestClient) -> None:
    status, body, _ = sync(client, LANG="ADQL", QUERY="SELECT " + "1+" * 60_000 + "1 FROM x")
    assert status == 400
    assert b"limit" in body


def test_configured_user_function_is_declared_and_runs(client: TestClient) -> None:
    capabilities = client.get(f"{BASE}/capabilities").text
    assert "features-udf" in capabilities
    assert "ivo_string_length(s VARCHAR) -&gt; INTEGER" in capabilities
    status, body, _ = sync(
        client, LANG="ADQL",
        QUERY="SELECT TOP 1 band, ivo_string_length(band) AS n FROM dp02_dc2_catalogs.CcdVisit",
    )  # fmt: skip
    assert status == 200, body[:400]
    row = parse_single_table(io.BytesIO(body)).array[0]
    assert int(row["n"]) == len(str(row["band"]))
    status, body, _ = sync(
        client, LANG="ADQL", QUERY="SELECT ivo_no_such_function(1) FROM dp02_dc2_catalogs.CcdVisit"
    )
    assert status == 400
    assert b"ivo_no_such_function" in body
