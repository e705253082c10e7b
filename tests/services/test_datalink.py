"""Light curves, {links} and service descriptors on a small real demo catalog (DuckDB).

Expected light curves are computed from the generator's arrays with numpy, independently of
the ADQL the service builds.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io.votable import parse, parse_single_table
from PIL import Image

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.config import Config
from tap_service.exceptions import UsageError
from tap_service.factory import Factory
from tap_service.services.datalink import BAND_CHOICES, DETAILS, LightCurveRequest
from tap_service.services.demo_catalog import DemoData, build_demo_catalog, generate_demo_data
from tap_service.services.query import QueryRequest
from tap_service.storage.embedded import EmbeddedDatabase

RUBIN_DATALINK = Path(__file__).resolve().parents[3] / "shared" / "rubin-sdm" / "datalink"
N_OBJECTS = 1_000
TIMESERIES_ID = "lsst://api.data.lsst.cloud/datalink/timeseries#v0.1"


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo_data(N_OBJECTS, 20, seed=42)


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Factory]:
    data_dir = tmp_path_factory.mktemp("datalink")
    db = EmbeddedDatabase(data_dir, setup_statements=setup_statements())
    build_demo_catalog(db, n_objects=N_OBJECTS, n_forced_per_object=20, seed=42)
    db.close()
    config = Config(
        data_dir=data_dir,
        datalink={"templates_dir": RUBIN_DATALINK, "base_url": "https://example.org"},
    )
    built = Factory(config)
    yield built
    built.close()


def _sync(factory: Factory, query: str, fmt: str = "votable") -> bytes:
    service = factory.query_service()
    prepared = service.prepare(QueryRequest(query=query, lang="ADQL", response_format=fmt))
    return b"".join(service.stream(prepared))


def test_object_results_carry_the_timeseries_descriptor(factory: Factory) -> None:
    document = _sync(factory, "SELECT TOP 3 coord_ra, objectId FROM dp02_dc2_catalogs.Object")
    votable = parse(io.BytesIO(document))
    table = votable.get_first_table()
    assert table.get_field_by_id("dp02_dc2_catalogs_Object_objectId").name == "objectId"
    services = [r for r in votable.resources if r.type == "meta"]
    assert len(services) == 1
    params = {p.name: p for p in services[0].params}
    assert params["standardID"].value == TIMESERIES_ID
    assert params["accessURL"].value == "https://example.org/api/datalink/timeseries"
    (group,) = services[0].groups
    id_param = next(p for p in group.entries if p.name == "id")
    assert id_param.ref == "dp02_dc2_catalogs_Object_objectId"


@pytest.mark.parametrize(
    "query",
    [
        "SELECT TOP 3 coord_ra FROM dp02_dc2_catalogs.Object",
        "SELECT TOP 3 objectId + 0 AS x FROM dp02_dc2_catalogs.Object",
        "SELECT TOP 3 objectId FROM dp02_dc2_catalogs.ForcedSource",
    ],
)
def test_no_descriptor_without_the_needed_column(factory: Factory, query: str) -> None:
    document = _sync(factory, query)
    assert b'type="meta"' not in document
    assert b" ID=" not in document


def test_tabledata_and_csv(factory: Factory) -> None:
    td = _sync(factory, "SELECT TOP 1 objectId FROM dp02_dc2_catalogs.Object", "votable/td")
    assert b"adhoc:service" in td
    csv = _sync(factory, "SELECT TOP 1 objectId FROM dp02_dc2_catalogs.Object", "csv")
    assert b"adhoc:service" not in csv


def _expected(demo: DemoData, object_id: int, band: str) -> tuple[list[int], list[float]]:
    fs = demo.forced_sources.columns
    ccd = demo.ccd_visits.columns
    mask = fs["objectId"] == object_id
    if band != "all":
        mask &= fs["band"] == band
    mjd_of = dict(zip(ccd["ccdVisitId"].tolist(), ccd["expMidptMJD"].tolist(), strict=True))
    ids = fs["forcedSourceId"][mask].tolist()
    times = [mjd_of[c] for c in fs["ccdVisitId"][mask].tolist()]
    order = np.argsort(times, kind="stable")
    return sorted(ids), [times[i] for i in order]


@pytest.mark.parametrize("band", BAND_CHOICES)
@pytest.mark.parametrize("detail", DETAILS)
def test_light_curve_every_band_and_detail(
    factory: Factory, demo: DemoData, band: str, detail: str
) -> None:
    object_id = int(demo.objects.table.columns["objectId"][17])
    service = factory.lightcurve_service()
    media_type, document = service.run(
        LightCurveRequest(id=str(object_id), band=band.upper(), detail=detail)
    )
    assert media_type.startswith("application/x-votable+xml")
    table = parse_single_table(io.BytesIO(b"".join(document))).to_table()
    expected_ids, expected_times = _expected(demo, object_id, band)
    assert len(table) == len(expected_times)
    np.testing.assert_allclose(np.asarray(table["expMidptMJD"]), expected_times)
    assert set(table["objectId"].tolist()) <= {object_id}
    if band != "all":
        assert set(table["band"].tolist()) <= {band}
    forced = factory.tap_schema.model.find_table("dp02_dc2_catalogs.ForcedSource")
    assert forced is not None
    if detail == "full":
        assert table.colnames == [c.name for c in forced.columns] + ["expMidptMJD"]
        assert sorted(table["forcedSourceId"].tolist()) == expected_ids
    elif detail == "principal":
        assert table.colnames == [c.name for c in forced.columns if c.principal] + ["expMidptMJD"]
    else:
        assert table.colnames == ["objectId", "band", "psfFlux", "psfFluxErr", "expMidptMJD"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "votable/td", "votable/b2"])
def test_light_curve_other_formats(factory: Factory, demo: DemoData, fmt: str) -> None:
    object_id = int(demo.objects.table.columns["objectId"][3])
    media_type, document = factory.lightcurve_service().run(
        LightCurveRequest(id=str(object_id), response_format=fmt)
    )
    body = b"".join(document)
    rows = len(_expected(demo, object_id, "all")[1])
    if fmt in ("csv", "tsv"):
        assert body.decode().count("\n") == rows + 1
        assert media_type.startswith("text/")
    else:
        assert len(parse_single_table(io.BytesIO(body)).to_table()) == rows


@pytest.mark.parametrize("band", ["all", "r"])
def test_light_curve_png_is_a_readable_plot(factory: Factory, demo: DemoData, band: str) -> None:
    object_id = int(demo.objects.table.columns["objectId"][5])
    media_type, document = factory.lightcurve_service().run(
        LightCurveRequest(id=str(object_id), band=band, response_format="image/png")
    )
    assert media_type == "image/png"
    image = Image.open(io.BytesIO(b"".join(document)))
    image.load()
    assert image.format == "PNG"
    assert image.size == (800, 450)
    pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # not blank
    if band == "all":
        # Points in several band colours, e.g. the r band's red.
        assert np.any(np.all(pixels == (0xD6, 0x27, 0x28), axis=-1))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "abc"}, "integer ID"),
        ({"id": "99999999999999999999"}, "integer ID"),
        ({"band": "q"}, "band parameter"),
        ({"detail": "everything"}, "detail parameter"),
        ({"table": "dp02_dc2_catalogs.Nope"}, "no published table"),
        ({"id_column": "objectId; DROP TABLE x"}, "names no column"),
        ({"join_time_column": "expMidptMJD"}, "schema.table.column"),
        ({"join_time_column": "dp02_dc2_catalogs.CcdVisit.nope"}, "names no column"),
        (
            {
                "table": "dp02_dc2_catalogs.CcdVisit",
                "id_column": "visitId",
                "join_time_column": "dp02_dc2_catalogs.ForcedSource.psfFlux",
            },
            "no foreign key",
        ),
        (
            {
                "table": "dp02_dc2_catalogs.CcdVisit",
                "id_column": "visitId",
                "band": "r",
                "join_time_column": "dp02_dc2_catalogs.CcdVisit.expMidptMJD",
                "detail": "minimal",
            },
            None,
        ),
    ],
)
def test_light_curve_parameters_are_validated(
    factory: Factory, changes: dict[str, str], message: str | None
) -> None:
    request = LightCurveRequest(**{"id": "1", **changes})
    service = factory.lightcurve_service()
    if message is None:
        service.plan(request)  # a table holding its own time column needs no join
        return
    with pytest.raises(UsageError, match=message):
        service.plan(request)


def test_links_several_ids_with_errors(factory: Factory, demo: DemoData) -> None:
    ids = [int(v) for v in demo.objects.table.columns["objectId"][:2]]
    media_type, body = factory.links_service().links([str(ids[0]), "12", "x", str(ids[1])])
    assert media_type == "application/x-votable+xml;content=datalink"
    votable = parse(io.BytesIO(body))
    table = votable.get_first_table().to_table()
    by_id: dict[str, list[str]] = {}
    for row in table:
        by_id.setdefault(str(row["ID"]), []).append(str(row["semantics"]))
    for object_id in ids:
        assert by_id[str(object_id)] == ["#this", "#auxiliary", "#preview", "#proc"]
    errors = {str(r["ID"]): str(r["error_message"]) for r in table if r["error_message"]}
    assert errors["12"].startswith("NotFoundFault:")
    assert errors["x"].startswith("UsageFault:")
    services = {r.ID: r for r in votable.resources if r.type == "meta"}
    assert set(services) == {f"timeseries-{i}" for i in ids}
    id_param = next(p for p in services[f"timeseries-{ids[0]}"].groups[0].entries if p.name == "id")
    assert int(id_param.value) == ids[0]


def test_links_needs_an_id(factory: Factory) -> None:
    with pytest.raises(UsageError, match="ID parameter"):
        factory.links_service().links([])


def test_wrong_templates_directory_stops_start_up(factory: Factory, tmp_path: Path) -> None:
    from tap_service.datalink import DatalinkConfigError

    config = Config(data_dir=factory.config.data_dir, datalink={"templates_dir": tmp_path})
    broken = Factory(config)
    try:
        with pytest.raises(DatalinkConfigError, match=r"datalink-manifest\.json"):
            broken.warm_up()
    finally:
        broken.close()
