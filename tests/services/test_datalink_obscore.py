"""ivoa.ObsCore in the demo: rows, spatial ADQL on s_region against brute force, {links} of
datasets, the obscore_links descriptor on results, and the ObsCore declaration in capabilities."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
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


def _inside(poly: np.ndarray, ra: float, dec: float) -> np.ndarray:
    """Point in the axis-aligned footprint (our footprints are RA/Dec boxes)."""
    ras, decs = poly[:, 0::2], poly[:, 1::2]
    return (ras.min(1) <= ra) & (ra <= ras.max(1)) & (decs.min(1) <= dec) & (dec <= decs.max(1))


def test_a_few_thousand_deterministic_rows(factory: Factory) -> None:
    (row,) = _rows(factory, "SELECT COUNT(*) AS n FROM ivoa.ObsCore")
    _, dids = _expected_regions()
    assert row["n"] == len(dids) == 3600
    assert ccd_visit_from_did(dids[0]) is not None
    assert publisher_did(ccd_visit_from_did(dids[0]) or 0) == dids[0]


@pytest.mark.parametrize(("ra", "dec"), [(60.0, -35.0), (52.3, -30.1), (70.5, -43.2)])
def test_contains_point_in_s_region_matches_brute_force(
    factory: Factory, ra: float, dec: float
) -> None:
    polys, dids = _expected_regions()
    expected = {d for d, hit in zip(dids, _inside(polys, ra, dec), strict=True) if hit}
    rows = _rows(
        factory,
        "SELECT obs_publisher_did FROM ivoa.ObsCore "
        f"WHERE CONTAINS(POINT('ICRS', {ra}, {dec}), s_region) = 1",
    )
    assert {r["obs_publisher_did"] for r in rows} == expected


def test_intersects_circle_and_s_region(factory: Factory) -> None:
    polys, dids = _expected_regions()
    # Footprints whose centre lies within 0.5 deg certainly meet a 0.6 deg circle; footprints
    # 2 deg away certainly do not.
    rows = _rows(
        factory,
        "SELECT obs_publisher_did, s_ra, s_dec FROM ivoa.ObsCore "
        "WHERE INTERSECTS(CIRCLE('ICRS', 60, -35, 0.6), s_region) = 1",
    )
    got = {r["obs_publisher_did"] for r in rows}
    centre_ra = polys[:, 0::2].mean(1)
    centre_dec = polys[:, 1::2].mean(1)
    sep = np.degrees(
        np.arccos(
            np.clip(
                np.sin(np.radians(centre_dec)) * np.sin(np.radians(-35))
                + np.cos(np.radians(centre_dec))
                * np.cos(np.radians(-35))
                * np.cos(np.radians(centre_ra - 60)),
                -1,
                1,
            )
        )
    )
    assert {d for d, s in zip(dids, sep, strict=True) if s < 0.5} <= got
    assert not {d for d, s in zip(dids, sep, strict=True) if s > 2.0} & got
    assert got


def test_qserv_refuses_s_region_tests_with_a_clear_message() -> None:
    catalog = SimpleCatalog(load_felis(OBSCORE_SCHEMA_PATH).table_infos())
    text = (
        "SELECT obs_id FROM ivoa.ObsCore WHERE CONTAINS(POINT('ICRS', 60.0, -35.0), s_region) = 1"
    )
    checked = adql.check(adql.parse(text), catalog, text=text)
    with pytest.raises(adql.AdqlError, match="on Qserv the region must be"):
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
