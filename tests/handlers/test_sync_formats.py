"""Output formats over /sync: VOParquet, the configurable default, capabilities."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from astropy.io.votable import parse
from fastapi.testclient import TestClient

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.config import Config
from tap_service.main import create_app
from tap_service.services.demo_catalog import build_demo_catalog
from tap_service.storage.embedded import EmbeddedDatabase

BASE = "/api/tap"
QUERY = "SELECT TOP 20 objectId, coord_ra, coord_dec FROM dp02_dc2_catalogs.Object"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("formats")
    with EmbeddedDatabase(path, setup_statements=setup_statements()) as db:
        build_demo_catalog(db, n_objects=500, n_forced_per_object=1, seed=3)
    return path


def _client(data_dir: Path, **settings: object) -> TestClient:
    return TestClient(create_app(Config(data_dir=data_dir, maxrec_default=10, **settings)))


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[TestClient]:
    with _client(data_dir) as test_client:
        yield test_client


@pytest.mark.parametrize("name", ["parquet", "application/vnd.apache.parquet"])
def test_parquet_over_sync(client: TestClient, name: str) -> None:
    response = client.post(
        f"{BASE}/sync", data={"LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": name}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(response.content))
    assert table.column_names == ["objectId", "coord_ra", "coord_dec"]
    assert table.num_rows == 10  # MAXREC default: overflow
    ids = table.column("objectId").to_pylist()
    assert all(isinstance(v, int) and v > 2**53 for v in ids)  # exact 64-bit ids
    metadata = pq.read_metadata(io.BytesIO(response.content)).metadata
    assert metadata[b"IVOA.VOTable-Parquet.version"] == b"1.0"
    votable = parse(io.BytesIO(metadata[b"IVOA.VOTable-Parquet.content"]), verify="exception")
    statuses = [i.value for i in votable.resources[0].infos if i.name == "QUERY_STATUS"]
    assert statuses == ["OK", "OVERFLOW"]
    fields = votable.get_first_table().fields
    assert [f.datatype for f in fields] == ["long", "double", "double"]
    assert fields[1].ucd == "pos.eq.ra;meta.main"


def test_capabilities_declare_parquet(client: TestClient) -> None:
    root = ET.fromstring(client.get(f"{BASE}/capabilities").content)
    mimes = {m.text for m in root.iter("mime")}
    aliases = {a.text for a in root.iter("alias")}
    assert "application/vnd.apache.parquet" in mimes
    assert "parquet" in aliases


def test_default_format_is_configurable(data_dir: Path) -> None:
    with _client(data_dir, default_format="csv") as csv_client:
        response = csv_client.post(f"{BASE}/sync", data={"LANG": "ADQL", "QUERY": QUERY})
        assert response.headers["content-type"].startswith("text/csv")
        assert response.text.splitlines()[0] == "objectId,coord_ra,coord_dec"
        explicit = csv_client.post(
            f"{BASE}/sync", data={"LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": "votable"}
        )
        assert "serialization=BINARY2" in explicit.headers["content-type"]


def test_bad_default_format_fails_at_start(data_dir: Path) -> None:
    with (
        pytest.raises(ValueError, match="RESPONSEFORMAT"),
        _client(data_dir, default_format="fits"),
    ):
        pass
