"""Regions stored as STC-S strings (xtype ``adql:REGION``, ObsCore's ``s_region``).

The checker types such a column as a region; the embedded dialect parses the string per row
(``adql_stcs``) and runs the POLYGON or CIRCLE test on its numbers; the Qserv dialect refuses.
Results on DuckDB are compared with an independent computation (tests/fixtures/sky_geometry.py):
polygons are built as quadrilaterals in a gnomonic projection, where great circles are straight
lines, so point-in-polygon is matplotlib's planar test there; circle tests and edge distances
are astropy separations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import astropy.units as u
import duckdb
import numpy as np
import numpy.typing as npt
import pytest
from astropy.coordinates import SkyCoord

from tap_service.adql import AdqlUnsupportedError, check, parse, to_sql
from tap_service.adql.catalog import ColumnInfo, SimpleCatalog, TableInfo
from tap_service.adql.dialects.embedded import setup_statements
from tap_service.adql.types import ValueType
from tests.fixtures.sky_geometry import SkyPolygon, inverse_gnomonic

N_FIELDS = 400
N_POINTS = 150
FIELD_CENTRE = (1.0, -30.0)  # fields straddle RA 0/360

CATALOG = SimpleCatalog(
    table_list=(
        TableInfo(
            schema="demo",
            name="fields",
            columns=(
                ColumnInfo(name="id", datatype="long"),
                ColumnInfo(name="s_region", datatype="char", arraysize="*", xtype="adql:REGION"),
            ),
        ),
        TableInfo(
            schema="demo",
            name="points",
            columns=(
                ColumnInfo(name="pid", datatype="long"),
                ColumnInfo(name="ra", datatype="double", unit="deg"),
                ColumnInfo(name="dec", datatype="double", unit="deg"),
            ),
        ),
    )
)


def _sql(adql: str, dialect: str = "embedded") -> str:
    return to_sql(check(parse(adql), CATALOG), dialect)


class Field:
    """One stored region with its independent geometry."""

    def __init__(
        self,
        ident: int,
        kind: str,
        centre: tuple[float, float],
        size: float,
        rng: np.random.Generator,
    ) -> None:
        self.id, self.kind, self.centre, self.size = ident, kind, centre, size
        if kind == "CIRCLE":
            self.text = f"CIRCLE ICRS {centre[0]!r} {centre[1]!r} {size!r}"
            return
        # A rotated rectangle (convex) in the tangent plane; either orientation on the sky.
        half = np.radians([size, size * rng.uniform(0.3, 1.0)])
        angle = rng.uniform(0, np.pi)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        plane = corners @ rot.T
        if rng.uniform() < 0.5:
            plane = plane[::-1]
        ra, dec = inverse_gnomonic(centre[0], centre[1], plane[:, 0], plane[:, 1])
        self.vertices = np.stack([ra % 360.0, dec], axis=1)
        self.polygon = SkyPolygon(self.vertices[:, 0], self.vertices[:, 1])
        frame = "ICRS " if ident % 3 else "ICRS GEOCENTER SPHERICAL2 "
        self.text = "POLYGON " + frame + " ".join(repr(float(v)) for v in self.vertices.ravel())

    def contains(self, ra: npt.NDArray[Any], dec: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
        if self.kind == "CIRCLE":
            sep = SkyCoord(ra * u.deg, dec * u.deg).separation(
                SkyCoord(self.centre[0] * u.deg, self.centre[1] * u.deg)
            )
            return np.asarray(sep.deg <= self.size)
        return self.polygon.contains(ra, dec)

    def distance_to_boundary(self, ra: float, dec: float) -> float:
        """Smallest angle (deg) from a position to the region's boundary."""
        target = SkyCoord(ra * u.deg, dec * u.deg)
        if self.kind == "CIRCLE":
            centre = SkyCoord(self.centre[0] * u.deg, self.centre[1] * u.deg)
            return float(abs(target.separation(centre).deg - self.size))
        return self.polygon.distance_to_edges(ra, dec)

    def vertex_coords(self) -> Any:
        return SkyCoord(self.vertices[:, 0] * u.deg, self.vertices[:, 1] * u.deg)


def _fields() -> list[Field]:
    rng = np.random.default_rng(20261125)
    out = []
    for i in range(N_FIELDS):
        centre = (
            float((FIELD_CENTRE[0] + rng.uniform(-3, 3)) % 360.0),
            float(FIELD_CENTRE[1] + rng.uniform(-3, 3)),
        )
        kind = "CIRCLE" if i % 5 == 0 else "POLYGON"
        out.append(Field(i, kind, centre, float(rng.uniform(0.1, 0.6)), rng))
    return out


FIELDS = _fields()
_rng = np.random.default_rng(7)
POINTS = (
    (FIELD_CENTRE[0] + _rng.uniform(-3.5, 3.5, N_POINTS)) % 360.0,
    FIELD_CENTRE[1] + _rng.uniform(-3.5, 3.5, N_POINTS),
)


@pytest.fixture(scope="module")
def duck() -> Iterator[Any]:
    con = duckdb.connect()
    for statement in setup_statements():
        con.execute(statement)
    con.execute("CREATE TABLE demo_fields (id BIGINT, s_region VARCHAR)")
    con.executemany("INSERT INTO demo_fields VALUES (?, ?)", [(f.id, f.text) for f in FIELDS])
    con.execute(f"INSERT INTO demo_fields VALUES ({N_FIELDS}, NULL)")
    ra, dec = POINTS
    con.execute("CREATE TABLE demo_points (pid BIGINT, ra DOUBLE, dec DOUBLE)")
    con.executemany(
        "INSERT INTO demo_points VALUES (?, ?, ?)",
        [(i, float(a), float(d)) for i, (a, d) in enumerate(zip(ra, dec, strict=True))],
    )
    con.execute("CREATE SCHEMA demo")
    con.execute("CREATE VIEW demo.fields AS SELECT * FROM demo_fields")
    con.execute("CREATE VIEW demo.points AS SELECT * FROM demo_points")
    yield con
    con.close()


def _ids(duck: Any, adql: str) -> set[int]:
    return {int(r[0]) for r in duck.execute(_sql(adql)).fetchall()}


# --------------------------------------------------------------------------- typing


def test_checker_types_the_column_as_a_region_and_outputs_it_unchanged() -> None:
    checked = check(parse("SELECT s_region FROM demo.fields"), CATALOG)
    (column,) = checked.columns
    assert (column.datatype, column.arraysize, column.xtype) == ("char", "*", "adql:REGION")
    assert ValueType("char", "*", "adql:REGION").geometry == "region"
    assert not ValueType("char", "*", "adql:REGION").is_string
    assert ValueType("char", "*", "adql:POINT").geometry is None  # not ours to reinterpret


# --------------------------------------------------------------------------- DuckDB vs geometry


@pytest.mark.parametrize("seed", range(6))
def test_contains_point_in_stored_region(duck: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ra = float((FIELD_CENTRE[0] + rng.uniform(-3, 3)) % 360.0)
    dec = float(FIELD_CENTRE[1] + rng.uniform(-3, 3))
    # Random positions: none falls within rounding error of a boundary (probability ~1e-12).
    expected = {f.id for f in FIELDS if f.contains(np.array([ra]), np.array([dec]))[0]}
    got = _ids(
        duck, f"SELECT id FROM demo.fields WHERE CONTAINS(POINT('ICRS', {ra}, {dec}), s_region) = 1"
    )
    assert got == expected
    assert expected
    swapped = _ids(
        duck, f"SELECT id FROM demo.fields WHERE INTERSECTS(s_region, POINT({ra}, {dec})) = 1"
    )
    assert swapped == got
    outside = _ids(
        duck, f"SELECT id FROM demo.fields WHERE CONTAINS(POINT({ra}, {dec}), s_region) = 0"
    )
    assert outside == {f.id for f in FIELDS} - got  # the NULL region is in neither


def test_join_points_to_regions(duck: Any) -> None:
    ra, dec = POINTS
    expected = {(f.id, int(i)) for f in FIELDS for i in np.flatnonzero(f.contains(ra, dec))}
    rows = duck.execute(
        _sql(
            "SELECT f.id, p.pid FROM demo.fields AS f JOIN demo.points AS p "
            "ON CONTAINS(POINT(p.ra, p.dec), f.s_region) = 1"
        )
    ).fetchall()
    got = {(int(a), int(b)) for a, b in rows}
    assert got == expected
    assert len(expected) > 50


@pytest.mark.parametrize(
    ("ra", "dec", "radius"), [(1.0, -30.0, 0.7), (359.2, -31.5, 1.3), (2.5, -28.0, 0.05)]
)
def test_intersects_circle_and_stored_region(
    duck: Any, ra: float, dec: float, radius: float
) -> None:
    centre = np.array([ra]), np.array([dec])
    expected, ambiguous = set(), set()
    here = SkyCoord(ra * u.deg, dec * u.deg)
    for f in FIELDS:
        far = here.separation(SkyCoord(f.centre[0] * u.deg, f.centre[1] * u.deg)).deg
        if far > radius + 2 * f.size + 0.5:  # a field lies within ~1.42 size of its centre
            continue
        d = f.distance_to_boundary(ra, dec)
        if abs(d - radius) < 1e-3:
            ambiguous.add(f.id)
        if f.contains(*centre)[0] or d <= radius:
            expected.add(f.id)
    got = _ids(
        duck,
        f"SELECT id FROM demo.fields WHERE INTERSECTS(CIRCLE('ICRS', {ra}, {dec}, {radius}), "
        "s_region) = 1",
    )
    assert got - ambiguous == expected - ambiguous
    assert expected


def test_stored_region_contained_in_circle(duck: Any) -> None:
    ra, dec, radius = 1.0, -30.0, 2.0
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    expected = set()
    for f in FIELDS:
        if f.kind == "CIRCLE":
            sep = SkyCoord(f.centre[0] * u.deg, f.centre[1] * u.deg).separation(centre).deg
            inside = sep + f.size <= radius
        else:
            inside = bool(np.all(f.vertex_coords().separation(centre).deg <= radius))
        if inside:
            expected.add(f.id)
    got = _ids(
        duck,
        f"SELECT id FROM demo.fields WHERE CONTAINS(s_region, CIRCLE({ra}, {dec}, {radius})) = 1",
    )
    assert got == expected
    assert 0 < len(expected) < N_FIELDS


def test_the_region_is_parsed_once_per_row() -> None:
    sql = _sql("SELECT id FROM demo.fields WHERE CONTAINS(POINT(1, 2), s_region) = 1")
    assert sql.count("adql_stcs(") == 1


def test_unsupported_shape_stops_the_query(duck: Any) -> None:
    duck.execute("CREATE TABLE demo_bad AS SELECT 1 AS id, 'BOX ICRS 1 2 3 4' AS s_region")
    try:
        sql = _sql("SELECT id FROM demo.fields WHERE CONTAINS(POINT(1, 2), s_region) = 1").replace(
            '"demo"."fields"', "demo_bad"
        )
        with pytest.raises(duckdb.InvalidInputException, match="not an STC-S POLYGON or CIRCLE"):
            duck.execute(sql).fetchall()
    finally:
        duck.execute("DROP TABLE demo_bad")


def test_polygon_against_stored_region_is_refused_with_the_reason() -> None:
    with pytest.raises(AdqlUnsupportedError, match="STC-S POLYGON and CIRCLE"):
        _sql("SELECT id FROM demo.fields WHERE INTERSECTS(POLYGON(1, 2, 3, 4, 5, 6), s_region) = 1")


@pytest.mark.parametrize(
    "where",
    [
        "CONTAINS(POINT(1, 2), s_region) = 1",
        "INTERSECTS(CIRCLE(1, 2, 3), s_region) = 1",
        "1 = INTERSECTS(s_region, POINT(1, 2))",
    ],
)
def test_qserv_refuses_stored_regions(where: str) -> None:
    with pytest.raises(AdqlUnsupportedError, match=r"STC-S string .* not supported by Qserv"):
        _sql(f"SELECT id FROM demo.fields WHERE {where}", "qserv")


def test_qserv_selects_the_region_string() -> None:
    assert "s_region" in _sql("SELECT id, s_region FROM demo.fields", "qserv")


def test_the_region_is_still_a_string_to_like_and_comparisons(duck: Any) -> None:
    circles = {f.id for f in FIELDS if f.text.startswith("CIRCLE ")}
    assert _ids(duck, "SELECT id FROM demo.fields WHERE s_region LIKE 'CIRCLE %'") == circles
    one = FIELDS[7]
    assert _ids(duck, f"SELECT id FROM demo.fields WHERE s_region = '{one.text}'") == {one.id}
    assert _ids(duck, "SELECT id FROM demo.fields WHERE s_region IS NULL") == {N_FIELDS}
    checked = check(parse("SELECT LOWER(s_region) AS r FROM demo.fields"), CATALOG)
    assert checked.columns[0].xtype is None
    assert "LIKE" in _sql("SELECT id FROM demo.fields WHERE s_region LIKE 'C%'", "qserv")
