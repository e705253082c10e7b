"""pyvo against the running demo service: what an astronomer's script does.

Expected answers are computed independently: straight from the catalog file with DuckDB's own
Python API (no ADQL, no translation) and numpy for the geometry.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest
import pyvo
import requests
from astropy.io.votable import parse_single_table

from tests.integration.conftest import RunningService

OBJECT = "dp02_dc2_catalogs.Object"


@pytest.fixture(scope="module")
def tap(tap_url: str) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(tap_url)


@pytest.fixture(scope="module")
def raw(service: RunningService) -> dict[str, dict[str, np.ndarray]]:
    """Columns read from the catalog file directly, bypassing the service."""
    con = duckdb.connect(str(Path(service.data_dir) / "catalog.duckdb"), read_only=True)
    try:
        objects = con.execute(
            'SELECT objectId, coord_ra, coord_dec, r_psfFlux FROM "dp02_dc2_catalogs"."Object"'
        ).fetchnumpy()
        forced = con.execute(
            'SELECT objectId, band, psfFlux, ccdVisitId FROM "dp02_dc2_catalogs"."ForcedSource"'
        ).fetchnumpy()
        visits = con.execute(
            'SELECT ccdVisitId, expMidptMJD FROM "dp02_dc2_catalogs"."CcdVisit"'
        ).fetchnumpy()
    finally:
        con.close()
    return {"Object": objects, "ForcedSource": forced, "CcdVisit": visits}


def angular_distance(ra1: np.ndarray, dec1: np.ndarray, ra2: float, dec2: float) -> np.ndarray:
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    hav = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1))))


def test_tables_lists_demo_tables_with_columns(tap: pyvo.dal.TAPService) -> None:
    tables = {t.name: t for t in tap.tables}
    for name in (OBJECT, "dp02_dc2_catalogs.ForcedSource", "dp02_dc2_catalogs.CcdVisit"):
        assert name in tables, f"{name} missing from /tables: {sorted(tables)}"
    columns = {c.name: c for c in tables[OBJECT].columns}
    assert {"objectId", "coord_ra", "coord_dec", "detect_isPrimary"} <= set(columns)
    assert columns["coord_ra"].unit == "deg"
    assert columns["coord_ra"].ucd.startswith("pos.eq.ra")
    assert "TAP_SCHEMA.columns" in tables


def test_cone_search_matches_numpy(
    tap: pyvo.dal.TAPService, raw: dict[str, dict[str, np.ndarray]]
) -> None:
    obj = raw["Object"]
    ra0, dec0 = float(np.median(obj["coord_ra"])), float(np.median(obj["coord_dec"]))
    radius = 0.1
    result = tap.run_sync(
        "SELECT objectId, coord_ra, coord_dec, "
        f"DISTANCE(POINT('ICRS', coord_ra, coord_dec), POINT('ICRS', {ra0}, {dec0})) AS dist "
        f"FROM {OBJECT} "
        "WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), "
        f"CIRCLE('ICRS', {ra0}, {dec0}, {radius})) = 1 "
        "ORDER BY dist"
    ).to_table()
    distances = angular_distance(obj["coord_ra"], obj["coord_dec"], ra0, dec0)
    expected = obj["objectId"][distances <= radius]
    assert len(result) == len(expected) > 0
    assert set(np.asarray(result["objectId"], dtype=np.int64)) == set(expected.astype(np.int64))
    assert np.all(np.diff(np.asarray(result["dist"])) >= 0)
    assert result["objectId"].dtype == np.int64
    assert int(np.min(result["objectId"])) > 2**53


def test_join_object_forced_source(
    tap: pyvo.dal.TAPService, raw: dict[str, dict[str, np.ndarray]]
) -> None:
    target = int(raw["Object"]["objectId"][123])
    result = tap.run_sync(
        "SELECT o.objectId, fs.band, fs.psfFlux, cv.expMidptMJD "
        f"FROM {OBJECT} AS o "
        "JOIN dp02_dc2_catalogs.ForcedSource AS fs ON fs.objectId = o.objectId "
        "JOIN dp02_dc2_catalogs.CcdVisit AS cv ON cv.ccdVisitId = fs.ccdVisitId "
        f"WHERE o.objectId = {target} ORDER BY cv.expMidptMJD"
    ).to_table()
    forced = raw["ForcedSource"]
    mask = forced["objectId"] == target
    assert len(result) == int(mask.sum()) > 0
    assert set(int(v) for v in result["objectId"]) == {target}
    assert np.all(np.diff(np.asarray(result["expMidptMJD"])) >= 0)


def test_aggregate_counts_per_band(
    tap: pyvo.dal.TAPService, raw: dict[str, dict[str, np.ndarray]]
) -> None:
    result = tap.run_sync(
        "SELECT band, COUNT(*) AS n FROM dp02_dc2_catalogs.ForcedSource GROUP BY band ORDER BY band"
    ).to_table()
    bands, counts = np.unique(raw["ForcedSource"]["band"].astype(str), return_counts=True)
    assert [str(b) for b in result["band"]] == list(bands)
    assert [int(n) for n in result["n"]] == [int(c) for c in counts]


def test_tap_schema_is_queryable(tap: pyvo.dal.TAPService) -> None:
    result = tap.run_sync(
        "SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns "
        f"WHERE table_name = '{OBJECT}' ORDER BY column_index"
    ).to_table()
    names = [str(n) for n in result["column_name"]]
    assert names[0] == "objectId"
    assert "coord_ra" in names
    schemas = tap.run_sync("SELECT schema_name FROM TAP_SCHEMA.schemas").to_table()
    assert {"TAP_SCHEMA", "dp02_dc2_catalogs"} <= {str(s) for s in schemas["schema_name"]}


def test_maxrec_overflow(tap: pyvo.dal.TAPService) -> None:
    result = tap.run_sync(f"SELECT objectId FROM {OBJECT}", maxrec=10)
    assert len(result) == 10
    assert result.query_status == "OVERFLOW"
    exact = tap.run_sync(f"SELECT TOP 10 objectId FROM {OBJECT}", maxrec=10)
    assert len(exact) == 10
    assert exact.query_status == "OK"


def test_adql_error_is_a_dali_error_with_position(tap_url: str) -> None:
    response = requests.post(
        f"{tap_url}/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT objectId\nFORM dp02_dc2_catalogs.Object"},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/x-votable+xml")
    body = response.text
    assert 'name="QUERY_STATUS" value="ERROR"' in body
    assert "line 2" in body
    with pytest.raises(pyvo.dal.DALQueryError, match="Unknown column"):
        pyvo.dal.TAPService(tap_url).run_sync(f"SELECT nosuchcolumn FROM {OBJECT}")


def test_parameter_names_are_case_insensitive(tap_url: str) -> None:
    response = requests.get(
        f"{tap_url}/sync",
        params={
            "lang": "adql",
            "Query": f"SELECT TOP 3 objectId FROM {OBJECT}",
            "responseformat": "csv",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0] == "objectId"
    assert len(lines) == 4


@pytest.mark.parametrize("fmt", ["votable", "votable/td", "votable/b2", "csv", "tsv"])
def test_every_format_round_trips(tap_url: str, fmt: str) -> None:
    response = requests.post(
        f"{tap_url}/sync",
        data={
            "LANG": "ADQL",
            "QUERY": "SELECT TOP 5 objectId, coord_ra, detect_isPrimary, g_psfFlux "
            f"FROM {OBJECT} ORDER BY objectId",
            "RESPONSEFORMAT": fmt,
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    if fmt.startswith("votable"):
        import io

        table = parse_single_table(io.BytesIO(response.content)).to_table()
        assert len(table) == 5
        assert table["objectId"].dtype == np.int64
    else:
        sep = "," if fmt == "csv" else "\t"
        lines = response.text.strip().splitlines()
        assert lines[0].split(sep) == ["objectId", "coord_ra", "detect_isPrimary", "g_psfFlux"]
        assert len(lines) == 6
        assert int(lines[1].split(sep)[0]) > 2**53


def test_missing_lang_and_bad_maxrec_are_usage_errors(tap_url: str) -> None:
    no_lang = requests.post(f"{tap_url}/sync", data={"QUERY": "SELECT 1 FROM x"}, timeout=30)
    assert no_lang.status_code == 400
    assert "LANG" in no_lang.text
    bad = requests.post(
        f"{tap_url}/sync",
        data={"LANG": "ADQL", "QUERY": f"SELECT objectId FROM {OBJECT}", "MAXREC": "-3"},
        timeout=30,
    )
    assert bad.status_code == 400
    assert "MAXREC" in bad.text
    fmt = requests.post(
        f"{tap_url}/sync",
        data={"LANG": "ADQL", "QUERY": f"SELECT objectId FROM {OBJECT}", "RESPONSEFORMAT": "x/y"},
        timeout=30,
    )
    assert fmt.status_code == 400


def test_large_results_stream_and_small_ones_do_not(tap_url: str) -> None:
    big = requests.post(
        f"{tap_url}/sync",
        data={
            "LANG": "ADQL",
            "QUERY": "SELECT forcedSourceId, psfFlux FROM dp02_dc2_catalogs.ForcedSource",
            "MAXREC": "1000000",
        },
        stream=True,
        timeout=120,
    )
    assert big.status_code == 200
    assert big.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in big.headers
    chunks = big.iter_content(chunk_size=65536)
    first = next(chunks)
    assert first.startswith(b"<?xml")
    rest = sum(len(chunk) for chunk in chunks)
    assert rest > 10_000_000  # 1,000,000 rows follow the first chunk
    small = requests.post(
        f"{tap_url}/sync",
        data={"LANG": "ADQL", "QUERY": f"SELECT TOP 3 objectId FROM {OBJECT}"},
        timeout=30,
    )
    assert int(small.headers["content-length"]) == len(small.content)
