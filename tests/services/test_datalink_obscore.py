"""ivoa.ObsCore in the demo: rows, spatial ADQL on s_region (STC-S) against astropy/numpy,
{links} of datasets, the obscore_links descriptor on results, the ObsCore capabilities."""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse

from tap_service import adql
from tap_service.adql.catalog import SimpleCatalog
from tap_service.adql.dialects.embedded import setup_statements
from tap_service.config import Config
from tap_service.factory import Factory
from tap_service.felis.model import load_felis
from tap_service.services.demo_catalog import build_demo_catalog, generate_ccd_visits
from tap_service.services.demo_obscore import (
    OBSCORE_SCHEMA_PATH,
    ccd_visit_from_did,
    generate_obscore,
    publisher_did,
)
from tap_service.services.query import QueryRequest
from tap_service.services.vosi import capabilities_document
from tap_service.storage.embedded import EmbeddedDatabase
from tests.fixtures.sky_geometry import SkyPolygon, parse_stcs_polygon

RUBIN_DATALINK = Path(__file__).resolve().parents[3] / "shared" / "rubin-sdm" / "datalink"
BASE = "https://example.org"


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Factory]:
    data_dir = tmp_path_factory.mktemp("obscore")
    db = EmbeddedDatabase(data_dir, setup_statements=setup_statements())
    build_demo_catalog(db, n_objects=500, n_forced_per_object=5, seed=42)
    db.close()
    config = Config(data_dir=data_dir, datalink={"templates_dir": RUBIN_DATALINK, "base_url": BASE})
    built = Factory(config)
    yield built
    built.close()


def _rows(factory: Factory, query: str) -> list[dict[str, object]]:
    service = factory.query_service()
    prepared = service.prepare(QueryRequest(query=query, lang="ADQL", maxrec="100000"))
    assert prepared.sql is not None
    out: list[dict[str, object]] = []
    for batch in factory.backend.stream(prepared.sql):
        out.extend(batch.to_pylist())
    return out


def _expected_regions() -> tuple[np.ndarray, list[str]]:
    rows = generate_obscore(generate_ccd_visits(42), "http://x")
    return np.array(rows.regions), list(rows.columns["obs_publisher_did"])


@functools.cache
def _polygons() -> tuple[list[SkyPolygon], list[str]]:
    regions, dids = _expected_regions()
    return [SkyPolygon(r[0::2], r[1::2]) for r in regions], dids


def test_a_few_thousand_deterministic_rows(factory: Factory) -> None:
    (row,) = _rows(factory, "SELECT COUNT(*) AS n FROM ivoa.ObsCore")
    _, dids = _expected_regions()
    assert row["n"] == len(dids) == 3600
    assert ccd_visit_from_did(dids[0]) is not None
    assert publisher_did(ccd_visit_from_did(dids[0]) or 0) == dids[0]


def test_s_region_is_an_stcs_polygon_string(factory: Factory) -> None:
    regions, dids = _expected_regions()
    by_did = dict(zip(dids, regions, strict=True))
    rows = _rows(factory, "SELECT TOP 50 obs_publisher_did, s_region FROM ivoa.ObsCore")
    assert len(rows) == 50
    for row in rows:
        text = row["s_region"]
        assert isinstance(text, str)
        frame, numbers = parse_stcs_polygon(text)
        assert frame == "ICRS"
        assert numbers.tolist() == list(by_did[str(row["obs_publisher_did"])])
    service = factory.query_service()
    prepared = service.prepare(
        QueryRequest(query="SELECT TOP 1 s_region FROM ivoa.ObsCore", lang="ADQL")
    )
    field = parse(io.BytesIO(b"".join(service.stream(prepared)))).get_first_table().fields[0]
    assert (field.datatype, field.arraysize, field.xtype) == ("char", "*", "adql:REGION")
    assert field.ucd == "pos.outline;obs.field"


@pytest.mark.parametrize(
    ("row", "offset"),
    [(0, (0.0, 0.0)), (1234, (0.05, -0.08)), (2900, (-0.09, 0.09)), (77, (0.3, 0))],
)
def test_contains_point_in_s_region_matches_brute_force(
    factory: Factory, row: int, offset: tuple[float, float]
) -> None:
    """Positions near a footprint's centre (inside it, near its edge, beyond it)."""
    polygons, dids = _polygons()
    ra, dec = polygons[row].ra0 + offset[0], polygons[row].dec0 + offset[1]
    here = SkyCoord(ra * u.deg, dec * u.deg)
    centres = SkyCoord([p.ra0 for p in polygons] * u.deg, [p.dec0 for p in polygons] * u.deg)
    near = here.separation(centres).deg < 0.5  # footprints are 0.2 deg across
    expected = {
        d for d, p, n in zip(dids, polygons, near, strict=True) if n and p.contains(ra, dec)[0]
    }
    rows = _rows(
        factory,
        "SELECT obs_publisher_did FROM ivoa.ObsCore "
        f"WHERE CONTAINS(POINT('ICRS', {ra}, {dec}), s_region) = 1",
    )
    assert {r["obs_publisher_did"] for r in rows} == expected
    assert (dids[row] in expected) == bool(polygons[row].contains(ra, dec)[0])


@pytest.mark.parametrize(("ra", "dec", "radius"), [(60.0, -35.0, 0.6), (55.1, -40.2, 0.15)])
def test_intersects_circle_and_s_region(
    factory: Factory, ra: float, dec: float, radius: float
) -> None:
    polygons, dids = _polygons()
    here = SkyCoord(ra * u.deg, dec * u.deg)
    centres = SkyCoord([p.ra0 for p in polygons] * u.deg, [p.dec0 for p in polygons] * u.deg)
    near = here.separation(centres).deg < radius + 0.5  # footprints are 0.2 deg across
    expected, ambiguous = set(), set()
    for did, polygon, candidate in zip(dids, polygons, near, strict=True):
        if not candidate:
            continue
        distance = polygon.distance_to_edges(ra, dec)
        if abs(distance - radius) < 1e-4:
            ambiguous.add(did)
        if polygon.contains(ra, dec)[0] or distance <= radius:
            expected.add(did)
    rows = _rows(
        factory,
        "SELECT obs_publisher_did FROM ivoa.ObsCore "
        f"WHERE INTERSECTS(CIRCLE('ICRS', {ra}, {dec}, {radius}), s_region) = 1",
    )
    got = {r["obs_publisher_did"] for r in rows}
    assert got - ambiguous == expected - ambiguous
    assert expected - ambiguous


def test_qserv_refuses_s_region_tests_with_a_clear_message() -> None:
    catalog = SimpleCatalog(load_felis(OBSCORE_SCHEMA_PATH).table_infos())
    for where in (
        "CONTAINS(POINT('ICRS', 60.0, -35.0), s_region) = 1",
        "INTERSECTS(CIRCLE('ICRS', 60.0, -35.0, 1), s_region) = 1",
    ):
        text = f"SELECT obs_id FROM ivoa.ObsCore WHERE {where}"
        checked = adql.check(adql.parse(text), catalog, text=text)
        with pytest.raises(adql.AdqlError, match=r"STC-S string .*not supported by Qserv"):
            adql.to_sql(checked, "qserv")


def test_results_with_access_url_carry_the_links_descriptor(factory: Factory) -> None:
    service = factory.query_service()
    prepared = service.prepare(
        QueryRequest(
            query="SELECT TOP 2 obs_publisher_did, access_url FROM ivoa.ObsCore", lang="ADQL"
        )
    )
    votable = parse(io.BytesIO(b"".join(service.stream(prepared))))
    table = votable.get_first_table()
    assert table.get_field_by_id("ivoa_ObsCore_access_url").name == "access_url"
    (meta,) = [r for r in votable.resources if r.type == "meta"]
    params = {p.name: p for p in meta.params}
    assert params["standardID"].value == "ivo://ivoa.net/std/DataLink#links-1.0"
    assert params["accessURL"].ref == "ivoa_ObsCore_access_url"
    url = str(table.array["access_url"][0])
    # Built without configuration: the default base URL is baked in at build time.
    assert urlsplit(url).path == "/api/datalink/links"
    (did,) = parse_qs(urlsplit(url).query)["ID"]
    assert did == str(table.array["obs_publisher_did"][0])


def test_links_of_datasets(factory: Factory) -> None:
    _, dids = _expected_regions()
    missing = publisher_did(1)
    _, body = factory.links_service().links([dids[0], missing])
    table = parse(io.BytesIO(body)).get_first_table().to_table()
    semantics = [str(r["semantics"]) for r in table if str(r["ID"]) == dids[0]]
    assert semantics == ["#this", "#auxiliary"]
    (error,) = [str(r["error_message"]) for r in table if str(r["ID"]) == missing]
    assert error.startswith("NotFoundFault:")


def test_capabilities_declare_obscore(factory: Factory) -> None:
    document = capabilities_document(
        factory.config, f"{BASE}/api/tap", data_models=factory.data_models()
    )
    assert '<dataModel ivo-id="ivo://ivoa.net/std/ObsCore#core-1.1">ObsCore-1.1</dataModel>' in (
        document
    )
