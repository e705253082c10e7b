"""Explain estimates, as a table (tests/data/explain_cases.yaml), checked independently.

Classification is checked against the Qserv dialect's own SQL (a spatial estimate must come
with a ``scisql_s2PtIn...(...) = 1`` restrictor first in WHERE, and no other estimate may), and
chunk counts against dense sampling of the region (tests/adql/test_chunks.py's reference,
which shares no code with ``adql.chunks``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tap_service import adql
from tap_service.adql import sphere
from tap_service.config import PartitionedTableConfig
from tap_service.services.explain import estimate
from tests.adql.catalogs import CATALOG
from tests.adql.test_chunks import cap_samples, polygon_samples, ref_chunks_per_stripe, ref_locate

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parents[1] / "data" / "explain_cases.yaml").read_text()
)
NS = 340
PARTITIONING = {
    "dp02_dc2_catalogs.Object": PartitionedTableConfig(
        kind="director", director_key="objectId", num_stripes=NS, num_sub_stripes_per_stripe=3
    ),
    "dp02_dc2_catalogs.ForcedSource": PartitionedTableConfig(
        kind="child", director_key="objectId", num_stripes=NS, num_sub_stripes_per_stripe=3
    ),
}
TOTAL = sum(ref_chunks_per_stripe(NS))


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30
    kinds = {c["restriction"] for c in CASES}
    assert kinds == {"spatial", "secondary_index", "full_scan", "none"}


def region_samples(region: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    if "circle" in region:
        lon, lat, r = region["circle"]
        return cap_samples(lon, lat, r, n=200)
    if "box" in region:
        verts = sphere.box_vertices(*region["box"])
    else:
        verts = [tuple(v) for v in region["polygon"]]
    shape = sphere.polygon_shape(verts)
    return polygon_samples(list(shape.parts[0]), n=200)


def sampled_bounds(region: dict[str, Any]) -> tuple[int, int]:
    """(chunks certainly touched, chunks touched by the region grown by 1e-6 deg)."""
    lon, lat = region_samples(region)
    inside = set(ref_locate(NS, lon, lat).tolist())
    near = set(inside)
    for dlon, dlat in ((1e-6, 0), (-1e-6, 0), (0, 1e-6), (0, -1e-6)):
        near |= set(ref_locate(NS, lon + dlon, np.clip(lat + dlat, -90, 90)).tolist())
    return len(inside), len(near)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_explain_case(case: dict[str, Any]) -> None:
    checked = adql.check(adql.parse(case["adql"]), CATALOG)
    est = estimate(checked, PARTITIONING)
    assert est.restriction == case["restriction"], est.summary()

    sql = adql.to_sql(checked, "qserv")
    where = sql.split(" WHERE ", 1)[1] if " WHERE " in sql else ""
    restricted = re.match(r"scisql_s2PtIn\w+\([^)]*\) = 1", where) is not None
    assert restricted == (est.restriction == "spatial"), sql

    if est.restriction == "none":
        assert est.chunks == 0
        return
    assert est.total_chunks == TOTAL
    if est.restriction == "full_scan":
        assert est.chunks == TOTAL
    elif est.restriction == "secondary_index":
        assert est.chunks == est.ids == case["ids"]
    else:
        low, high = sampled_bounds(case["region"])
        assert low <= est.chunks <= high, (low, est.chunks, high)
        assert est.chunks == case["chunks"]
    assert est.summary().endswith(", ".join(t.table for t in est.tables if t.kind != "replicated"))


# --------------------------------------------------------------------------- guard, INFO, explain

COUNT = "SELECT COUNT(*) FROM dp02_dc2_catalogs.Object WHERE r_psfFlux > 100"
CONE = COUNT + " AND CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62, -37, 0.5)) = 1"


def make_service(dialect: str = "qserv", limit: int | None = 100) -> Any:
    from types import SimpleNamespace

    from tap_service.config import Config, QservConfig
    from tap_service.services.query import QueryService

    config = Config(
        backend="qserv" if dialect == "qserv" else "embedded",
        qserv=QservConfig(partitioning=PARTITIONING, sync_max_chunks=limit),
    )
    backend: Any = SimpleNamespace(dialect=dialect)
    tap_schema: Any = SimpleNamespace(model=CATALOG)
    return QueryService(config, backend, tap_schema)


def request(text: str, *, sync: bool) -> Any:
    from tap_service.services.query import QueryRequest

    return QueryRequest(query=text, lang="ADQL", sync=sync)


def test_guard_refuses_full_scan_on_sync() -> None:
    from tap_service.exceptions import UsageError

    with pytest.raises(UsageError) as info:
        make_service().prepare(request(COUNT, sync=True))
    message = info.value.message
    assert message.startswith(
        f"Refused on /sync: this query would scan {TOTAL} of {TOTAL} chunks of "
        "dp02_dc2_catalogs.Object (there is no restriction Qserv can use); synchronous "
        "queries may touch at most 100."
    )
    assert "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 62.0, -37.0, 0.1)) = 1" in message
    assert "constant arguments" in message
    assert "async job (/async)" in message


def test_guard_accepts_the_same_query_with_a_constant_cone() -> None:
    prepared = make_service().prepare(request(CONE, sync=True))
    head = prepared.writer.begin().decode()
    assert 'name="QSERV_ESTIMATE"' in head
    assert "restricted spatially by CIRCLE(62, -37, 0.5)" in head


def test_guard_refuses_a_too_large_region_and_says_so() -> None:
    from tap_service.exceptions import UsageError

    big = COUNT + (
        " AND CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62, -37, 10)) = 1"
    )
    with pytest.raises(UsageError, match=r"restricted spatially by CIRCLE\(62, -37, 10\)"):
        make_service().prepare(request(big, sync=True))


def test_async_and_unguarded_configurations_run() -> None:
    make_service().prepare(request(COUNT, sync=False))
    make_service(limit=None).prepare(request(COUNT, sync=True))


def test_embedded_backend_is_unchanged() -> None:
    prepared = make_service("embedded").prepare(request(COUNT, sync=True))
    assert "QSERV_ESTIMATE" not in prepared.writer.begin().decode()
    doc = make_service("embedded").explain(request(COUNT, sync=True))
    assert doc["restriction"] == "none"


def test_explain_document() -> None:
    doc = make_service().explain(request(CONE, sync=True))
    assert doc["restriction"] == "spatial"
    assert doc["sync_allowed"] is True
    assert doc["total_chunks"] == TOTAL
    full = make_service().explain(request(COUNT, sync=True))
    assert full["restriction"] == "full_scan"
    assert full["sync_allowed"] is False


def test_explain_route_on_the_embedded_app(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tap_service.adql.dialects.embedded import setup_statements
    from tap_service.config import Config
    from tap_service.main import create_app
    from tap_service.services.demo_catalog import build_demo_catalog
    from tap_service.storage.embedded import EmbeddedDatabase

    with EmbeddedDatabase(tmp_path, setup_statements=setup_statements()) as db:
        build_demo_catalog(db, n_objects=50, n_forced_per_object=1, seed=5)
    with TestClient(create_app(Config(data_dir=tmp_path))) as client:
        query = "SELECT COUNT(*) FROM TAP_SCHEMA.tables"
        r = client.get("/api/tap/explain", params={"LANG": "ADQL", "QUERY": query})
        assert r.status_code == 200, r.text
        assert r.json()["restriction"] == "none"
        bad = client.post("/api/tap/explain", data={"LANG": "ADQL", "QUERY": "SELEC 1"})
        assert bad.status_code == 400


def test_cli_adql_explain() -> None:
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    env = {
        **os.environ,
        "TAP_QSERV__PARTITIONING": json.dumps(
            {"dp02_dc2_catalogs.Object": {"director_key": "objectId", "num_stripes": NS}}
        ),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tap_service.cli", "adql", "--explain",
         "--schema", str(root / "schema" / "dp02_demo.yaml"), CONE.replace("r_psfFlux", "1")],
        capture_output=True, text=True, check=False, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["restriction"] == "spatial"
    assert doc["total_chunks"] == TOTAL
    assert 0 < doc["chunks"] < 20
