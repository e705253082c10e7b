"""schemathesis against the service's own OpenAPI document (in-process, a real demo catalog).

Requests generated from /openapi.json must never get a 5xx, and every answer must conform to
what the document declares (status code, content type, headers).  The document itself is
checked first: the IVOA endpoints declare their parameters and media types.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.fixtures.demo_app import build_demo, demo_client
from tests.fuzzing import PROFILE, SCALE

OPENAPI = "/api/tap/openapi.json"
# Two checks cannot hold for DALI endpoints, whose contract JSON Schema cannot express:
# * a string the schema allows is rarely valid ADQL, an existing job id or a date UWS takes, so
#   "schema-valid data is accepted" fails on the first random QUERY;
# * DALI is lenient where the schema is exact: parameter names and values are case-insensitive
#   (LANG=adql), numbers may carry spaces, unknown parameters are ignored, and an async job's
#   parameters are judged when it runs (UWS); so "schema-violating data is rejected" fails too.
# Negative (schema-violating) requests are still sent: they must not get a 5xx, and every
# other check (status codes, content types, headers) applies to them.
NOT_EXPRESSIBLE = [
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = build_demo(tmp_path_factory.mktemp("schemathesis"))
    with demo_client(data_dir, maxrec_default=20, uws={"wait_max_seconds": 1}) as test_client:
        yield test_client


def test_document_describes_the_ivoa_endpoints(client: TestClient) -> None:
    document = client.get(OPENAPI).json()
    paths = document["paths"]
    sync_post = paths["/api/tap/sync"]["post"]
    form = sync_post["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {"QUERY", "LANG", "MAXREC", "RESPONSEFORMAT"} <= set(form["properties"])
    assert set(form["required"]) == {"QUERY", "LANG"}
    sync_get = paths["/api/tap/sync"]["get"]
    assert {p["name"] for p in sync_get["parameters"]} >= {"QUERY", "LANG", "MAXREC"}
    assert "application/x-votable+xml" in sync_get["responses"]["200"]["content"]
    operation_ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))
    for path, ops in paths.items():
        for method, op in ops.items():
            responses = op["responses"]
            # FastAPI's JSON 422 is never sent: every error is a DALI VOTable.
            assert "422" not in responses, (method, path)
            assert "application/x-votable+xml" in responses["4XX"]["content"], (method, path)
            assert "application/json" not in responses.get("200", {}).get("content", {}) or (
                path.endswith("/explain")
            ), (method, path)
    assert "303" in paths["/api/tap/async"]["post"]["responses"]


def test_api_conforms_to_its_document(client: TestClient) -> None:
    # The app already runs (the client entered its lifespan); schemathesis calls it in-process.
    # (Its pytest fixtures do not work with pytest 9, so the operations are looped over here.)
    api = schemathesis.openapi.from_asgi(OPENAPI, client.app)
    tested = 0
    for result in api.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=10 * SCALE,
            derandomize=PROFILE != "long",
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=operation.as_strategy(GenerationMode.POSITIVE)
            | operation.as_strategy(GenerationMode.NEGATIVE)
        )
        def run(case: Any) -> None:
            # Redirects are part of the contract (UWS answers with 303): do not follow them.
            case.call_and_validate(allow_redirects=False, excluded_checks=NOT_EXPRESSIBLE)

        run()
        tested += 1
    assert tested >= 30  # every TAP, VOSI, UWS and DataLink operation
