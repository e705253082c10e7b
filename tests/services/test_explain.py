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
        return cap_samples(*region["circle"], n=200)
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
    assert est.summary().endswith(
        ", ".join(t.table for t in est.tables if t.kind != "replicated")
    )
