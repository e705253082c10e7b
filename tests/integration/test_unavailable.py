"""A service whose database cannot be opened says so: availability false, 503 DALI errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.integration.conftest import RunningService, start_service, stop_service


@pytest.fixture(scope="module")
def broken_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    data_dir = tmp_path_factory.mktemp("empty-data")
    running = start_service(data_dir, tmp_path_factory.mktemp("logs") / "serve.log")
    yield running
    stop_service(running)


def test_availability_reports_the_missing_database(broken_service: RunningService) -> None:
    response = requests.get(f"{broken_service.base_url}/availability", timeout=10)
    assert response.status_code == 200
    assert "<vosi:available>false</vosi:available>" in response.text
    assert "tap-service demo" in response.text


def test_queries_get_503_with_a_dali_error(broken_service: RunningService) -> None:
    response = requests.post(
        f"{broken_service.base_url}/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT TOP 1 * FROM TAP_SCHEMA.tables"},
        timeout=10,
    )
    assert response.status_code == 503
    assert 'value="ERROR"' in response.text
    assert "Traceback" not in response.text
    assert response.headers.get("retry-after")


def test_errors_name_no_server_paths(broken_service: RunningService) -> None:
    response = requests.get(f"{broken_service.base_url}/tables", timeout=10)
    assert response.status_code == 503
    assert "no catalog" in response.text
    assert str(broken_service.data_dir) not in response.text
    assert 'File "' not in response.text
