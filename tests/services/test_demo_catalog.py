"""The demo catalog: deterministic, DP0.2-shaped, and checkable against its own numpy arrays."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.services.demo_catalog import (
    BANDS,
    DEC_RANGE,
    DETECTORS_PER_VISIT,
    N_VISITS,
    RA_RANGE,
    build_demo_catalog,
    generate_demo_data,
    generate_objects,
    table_checksums,
)
from tap_service.storage.embedded import EmbeddedDatabase

N_OBJECTS = 3_000
N_FORCED = 8
OBJ = 'dp02_dc2_catalogs."Object"'
FS = 'dp02_dc2_catalogs."ForcedSource"'
CCD = 'dp02_dc2_catalogs."CcdVisit"'


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    db = EmbeddedDatabase(tmp_path_factory.mktemp("demo"), setup_statements=setup_statements())
    build_demo_catalog(db, n_objects=N_OBJECTS, n_forced_per_object=N_FORCED, seed=7)
    yield db
    db.close()


def _one(db: EmbeddedDatabase, sql: str) -> object:
    return db.query(sql).to_pylist()[0]["v"]


def test_sizes(built: EmbeddedDatabase) -> None:
    assert _one(built, f"SELECT count(*) AS v FROM {OBJ}") == N_OBJECTS
    assert _one(built, f"SELECT count(*) AS v FROM {FS}") == N_OBJECTS * N_FORCED
    assert _one(built, f"SELECT count(*) AS v FROM {CCD}") == N_VISITS * DETECTORS_PER_VISIT
    assert _one(built, f"SELECT count(DISTINCT visitId) AS v FROM {CCD}") == N_VISITS
    assert _one(built, f"SELECT count(DISTINCT band) AS v FROM {CCD}") == 6


def test_same_seed_same_catalog_other_seed_other_catalog(
    built: EmbeddedDatabase, tmp_path: Path
) -> None:
    with EmbeddedDatabase(tmp_path / "again") as again:
        build_demo_catalog(again, n_objects=N_OBJECTS, n_forced_per_object=N_FORCED, seed=7)
        assert table_checksums(again) == table_checksums(built)
        build_demo_catalog(again, n_objects=N_OBJECTS, n_forced_per_object=N_FORCED, seed=8)
        other = table_checksums(again)
    assert all(other[name] != value for name, value in table_checksums(built).items())


def test_regenerated_arrays_match_the_database(built: EmbeddedDatabase) -> None:
    data = generate_demo_data(N_OBJECTS, N_FORCED, seed=7)
    stored = built.query(f"SELECT objectId, coord_dec, r_psfFlux FROM {OBJ} ORDER BY rowid")
    ids = stored.column("objectId").to_numpy()
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, data.objects.table.columns["objectId"])
    np.testing.assert_array_equal(
        stored.column("coord_dec").to_numpy(), data.objects.table.columns["coord_dec"]
    )
    flux = data.objects.table.masked("r_psfFlux")
    db_flux = stored.column("r_psfFlux").to_pylist()
    assert [v is None for v in db_flux] == list(np.ma.getmaskarray(flux))
    forced = data.forced_sources
    assert _one(built, f"SELECT sum(psfFlux) AS v FROM {FS}") == pytest.approx(
        float(forced.masked("psfFlux").sum()), rel=1e-12
    )
    assert _one(built, f"SELECT count(psfFlux) AS v FROM {FS}") == int(
        forced.masked("psfFlux").count()
    )


def test_object_ids_are_above_2_53_unique_and_exact(built: EmbeddedDatabase) -> None:
    ids = built.query(f"SELECT objectId FROM {OBJ}").column(0).to_pylist()
    assert min(ids) > 2**53
    assert len(set(ids)) == len(ids)
    expected = generate_objects(N_OBJECTS, seed=7).table.columns["objectId"]
    assert {int(i) for i in expected} == set(ids)
    assert max(ids) < 2**63


def test_objects_cover_the_dc2_region_sorted_by_dec(built: EmbeddedDatabase) -> None:
    row = built.query(
        f"SELECT min(coord_ra) AS r0, max(coord_ra) AS r1, min(coord_dec) AS d0, "
        f"max(coord_dec) AS d1 FROM {OBJ}"
    ).to_pylist()[0]
    assert RA_RANGE[0] <= row["r0"] < RA_RANGE[0] + 1
    assert RA_RANGE[1] - 1 < row["r1"] <= RA_RANGE[1]
    assert DEC_RANGE[0] <= row["d0"] < DEC_RANGE[0] + 1
    assert DEC_RANGE[1] - 1 < row["d1"] <= DEC_RANGE[1]
    dec = built.query(f"SELECT coord_dec FROM {OBJ} ORDER BY rowid").column(0).to_numpy()
    assert np.all(np.diff(dec) >= 0)
    # Uniform on the sphere: more objects per degree near -27 than near -45.
    south = _one(built, f"SELECT count(*) AS v FROM {OBJ} WHERE coord_dec < -42")
    north = _one(built, f"SELECT count(*) AS v FROM {OBJ} WHERE coord_dec > -30")
    assert isinstance(south, int)
    assert isinstance(north, int)
    assert north > south * 1.1


def test_nulls_and_booleans_are_present(built: EmbeddedDatabase) -> None:
    for band in BANDS:
        nulls = _one(built, f"SELECT count(*) - count({band}_psfFlux) AS v FROM {OBJ}")
        flagged = _one(built, f"SELECT count(*) AS v FROM {OBJ} WHERE {band}_psfFlux_flag")
        assert isinstance(nulls, int)
        assert isinstance(flagged, int)
        assert 0 < nulls <= flagged
        # A NULL flux always carries its failure flag.
        assert (
            _one(
                built,
                f"SELECT count(*) AS v FROM {OBJ} WHERE {band}_psfFlux IS NULL "
                f"AND NOT {band}_psfFlux_flag",
            )
            == 0
        )
    primary = built.query(
        f"SELECT detect_isPrimary AS p, count(*) AS n FROM {OBJ} GROUP BY 1"
    ).to_pylist()
    assert {r["p"] for r in primary} == {True, False}
    assert _one(built, f"SELECT count(*) - count(refExtendedness) AS v FROM {OBJ}") > 0
    assert _one(built, f"SELECT count(*) AS v FROM {FS} WHERE psfFlux IS NULL") > 0
    assert _one(built, f"SELECT count(*) AS v FROM {FS} WHERE psfFlux < 0") > 0


def test_keys_hold_and_light_curves_exist(built: EmbeddedDatabase) -> None:
    orphans = _one(
        built,
        f"SELECT count(*) AS v FROM {FS} f LEFT JOIN {OBJ} o USING (objectId) "
        "WHERE o.objectId IS NULL",
    )
    assert orphans == 0
    assert (
        _one(
            built,
            f"SELECT count(*) AS v FROM {FS} f LEFT JOIN {CCD} c USING (ccdVisitId) "
            "WHERE c.ccdVisitId IS NULL",
        )
        == 0
    )
    assert _one(built, f"SELECT count(DISTINCT forcedSourceId) AS v FROM {FS}") == (
        N_OBJECTS * N_FORCED
    )
    # Every object has N_FORCED epochs on distinct visits, with the visit's band and time.
    curves = built.query(
        f"SELECT f.objectId, count(DISTINCT c.visitId) AS visits, "
        f"count(DISTINCT c.expMidptMJD) AS epochs, bool_and(f.band = c.band) AS same_band, "
        f"bool_and(f.coord_ra = o.coord_ra) AS same_pos "
        f"FROM {FS} f JOIN {CCD} c USING (ccdVisitId) JOIN {OBJ} o USING (objectId) GROUP BY 1"
    ).to_pylist()
    assert len(curves) == N_OBJECTS
    assert all(r["visits"] == N_FORCED == r["epochs"] for r in curves)
    assert all(r["same_band"] and r["same_pos"] for r in curves)
    span = _one(built, f"SELECT max(expMidptMJD) - min(expMidptMJD) AS v FROM {CCD}")
    assert isinstance(span, float)
    assert span > 4 * 365


def test_timestamps_agree_with_mjd(built: EmbeddedDatabase) -> None:
    rows = built.query(
        f"SELECT obsStart, obsStartMJD, expMidpt, expMidptMJD FROM {CCD} LIMIT 50"
    ).to_pylist()
    for r in rows:
        for stamp, mjd in ((r["obsStart"], r["obsStartMJD"]), (r["expMidpt"], r["expMidptMJD"])):
            seconds = (
                stamp.timestamp()
                if stamp.tzinfo
                else (stamp - stamp.__class__(1970, 1, 1)).total_seconds()
            )
            assert seconds / 86400 + 40587 == pytest.approx(mjd, abs=1e-6)


def test_numpy_answers_a_cone_like_query(built: EmbeddedDatabase) -> None:
    objects = generate_objects(N_OBJECTS, seed=7).table
    ra = objects.columns["coord_ra"]
    dec = objects.columns["coord_dec"]
    r = objects.masked("r_psfFlux")
    box = (ra > 60) & (ra < 65) & (dec > -40) & (dec < -35)
    bright = box & (r.filled(-np.inf) > 1000)
    sql = (
        f"SELECT count(*) AS v FROM {OBJ} WHERE coord_ra > 60 AND coord_ra < 65 "
        "AND coord_dec > -40 AND coord_dec < -35 AND r_psfFlux > 1000"
    )
    assert _one(built, sql) == int(bright.sum())


def test_published_in_tap_schema(built: EmbeddedDatabase) -> None:
    names = [t.qualified_name for t in built.catalog_tables()]
    assert names[:3] == [
        "dp02_dc2_catalogs.Object",
        "dp02_dc2_catalogs.ForcedSource",
        "dp02_dc2_catalogs.CcdVisit",
    ]
    assert "TAP_SCHEMA.columns" in names


def test_full_size_build_is_fast(tmp_path: Path) -> None:
    """The default demo (100k objects, 2M forced sources) builds well within a minute."""
    with EmbeddedDatabase(tmp_path, setup_statements=setup_statements()) as db:
        started = time.perf_counter()
        counts = build_demo_catalog(db)
        elapsed = time.perf_counter() - started
        assert counts.objects == 100_000
        assert counts.forced_sources == 2_000_000
        assert _one(db, f"SELECT count(*) AS v FROM {FS}") == 2_000_000
    assert elapsed < 60
    print(f"demo build: {elapsed:.1f} s")
