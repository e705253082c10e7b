"""The constant-geometry helpers: BOX corners, polygon analysis, decomposition, bounds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_service.adql import sphere


def _great_circle_midpoint(a: sphere.LonLat, b: sphere.LonLat) -> sphere.LonLat:
    va, vb = sphere.to_vec(*a), sphere.to_vec(*b)
    m = (va[0] + vb[0], va[1] + vb[1], va[2] + vb[2])
    n = math.sqrt(sum(c * c for c in m))
    return sphere.to_lonlat((m[0] / n, m[1] / n, m[2] / n))


@pytest.mark.parametrize(
    ("lon", "lat", "w", "h"),
    [(10, 20, 2, 1), (0, 0, 30, 10), (359.5, -45, 1, 3), (123, 89, 4, 2), (0, -90, 2, 2)],
)
def test_box_edges_sit_at_half_width_and_height(lon: float, lat: float, w: float, h: float) -> None:
    """Edge midpoints lie w/2 (resp. h/2) from the centre: ADQL's BOX, with great-circle sides."""
    corners = sphere.box_vertices(lon, lat, w, h)
    assert len(corners) == 4
    mids = [_great_circle_midpoint(corners[i], corners[(i + 1) % 4]) for i in range(4)]
    dists = [sphere.ang_sep(lon, lat, *m) for m in mids]
    assert dists[0] == pytest.approx(w / 2, abs=1e-9)  # east edge
    assert dists[1] == pytest.approx(h / 2, abs=1e-9)  # north edge
    assert dists[2] == pytest.approx(w / 2, abs=1e-9)
    assert dists[3] == pytest.approx(h / 2, abs=1e-9)
    shape = sphere.polygon_shape(corners)
    assert shape.convex
    assert sphere.point_in_convex(lon, lat, shape.parts[0])


def test_box_rejects_degenerate_sizes() -> None:
    with pytest.raises(sphere.GeometryError):
        sphere.box_vertices(0, 0, 180, 1)


def test_orientation_is_normalised() -> None:
    ccw = sphere.polygon_shape([(10, 10), (14, 10), (14, 12), (10, 12)])
    cw = sphere.polygon_shape([(10, 10), (10, 12), (14, 12), (14, 10)])
    assert set(ccw.vertices) == set(cw.vertices)
    assert sphere.point_in_convex(12, 11, ccw.parts[0])
    assert sphere.point_in_convex(12, 11, cw.parts[0])
    assert not sphere.point_in_convex(192, -11, cw.parts[0])  # the antipode is outside


@pytest.mark.parametrize(
    ("vertices", "message"),
    [
        ([(0, 0), (1, 1)], "at least 3"),
        ([(0, 0), (120, 0), (240, 0)], "hemisphere"),
        ([(10, 10), (14, 12), (14, 10), (10, 12)], "cross"),
        ([(0, 0), (1, 0), (2, 0)], "no area"),
    ],
)
def test_refusals(vertices: list[tuple[float, float]], message: str) -> None:
    with pytest.raises(sphere.GeometryError, match=message):
        sphere.polygon_shape(vertices)


def test_repeated_closing_vertex_is_ignored() -> None:
    shape = sphere.polygon_shape([(10, 10), (14, 10), (14, 12), (10, 12), (10, 10)])
    assert len(shape.vertices) == 4


def test_many_vertices_split_to_qserv_limit() -> None:
    ring = [(62 + 0.5 * math.cos(k * 0.25), -37 + 0.5 * math.sin(k * 0.25)) for k in range(25)]
    shape = sphere.polygon_shape(ring)
    assert len(shape.parts) > 1
    assert all(len(p) <= sphere.MAX_QSERV_VERTICES for p in shape.parts)


def test_areas() -> None:
    assert sphere.circle_area(180) == pytest.approx(4 * math.pi * (180 / math.pi) ** 2)
    octant = sphere.polygon_shape([(0, 0), (90, 0), (0, 90)])
    assert sphere.polygon_area(octant) == pytest.approx(4 * math.pi / 8 * (180 / math.pi) ** 2)
    small = sphere.polygon_shape(sphere.box_vertices(30, 0, 1, 1))
    assert sphere.polygon_area(small) == pytest.approx(1.0, rel=1e-4)


def test_centroid_of_symmetric_polygon() -> None:
    shape = sphere.polygon_shape(sphere.box_vertices(123, -45, 2, 2))
    lon, lat = sphere.polygon_centroid(shape)
    assert sphere.ang_sep(lon, lat, 123, -45) < 1e-9


def _plane(lon: np.ndarray, lat: np.ndarray, c: tuple[float, float]) -> tuple[np.ndarray, ...]:
    a0, d0 = map(math.radians, c)
    a, d = np.radians(lon), np.radians(lat)
    cosc = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(a - a0)
    x = np.cos(d) * np.sin(a - a0) / cosc
    y = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return x, y, cosc


def _ray_cast(x: np.ndarray, y: np.ndarray, poly: list[tuple[float, float]]) -> np.ndarray:
    inside = np.zeros(len(x), dtype=bool)
    for i in range(len(poly)):
        (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % len(poly)]
        if y1 != y2:
            cond = (y1 > y) != (y2 > y)
            inside ^= cond & (x < x1 + (y - y1) * (x2 - x1) / (y2 - y1))
    return inside


@st.composite
def star_polygons(draw: st.DrawFn) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    """Random star-shaped (hence simple, often non-convex) polygons anywhere on the sky."""
    lon = draw(st.floats(0, 360, exclude_max=True))
    lat = draw(st.floats(-89.9, 89.9))
    n = draw(st.integers(3, 26))
    radii = draw(st.lists(st.floats(0.2, 5.0), min_size=n, max_size=n))
    angles = sorted(
        draw(
            st.lists(
                st.floats(0, 2 * math.pi, exclude_max=True), min_size=n, max_size=n, unique=True
            )
        )
    )
    if any(b - a < 1e-3 for a, b in itertools.pairwise(angles)):
        angles = [2 * math.pi * k / n for k in range(n)]
    a0, d0 = math.radians(lon), math.radians(lat)
    verts = []
    for r, t in zip(radii, angles, strict=True):
        x, y = math.tan(math.radians(r)) * math.cos(t), math.tan(math.radians(r)) * math.sin(t)
        # inverse gnomonic projection around (lon, lat)
        rho = math.hypot(x, y)
        c = math.atan(rho)
        dec = math.asin(math.cos(c) * math.sin(d0) + y * math.sin(c) * math.cos(d0) / rho)
        ra = a0 + math.atan2(
            x * math.sin(c), rho * math.cos(d0) * math.cos(c) - y * math.sin(d0) * math.sin(c)
        )
        verts.append((math.degrees(ra) % 360, math.degrees(dec)))
    return (lon, lat), verts


@settings(max_examples=60, deadline=None)
@given(star_polygons())
def test_decomposition_covers_exactly_the_polygon(
    case: tuple[tuple[float, float], list[tuple[float, float]]],
) -> None:
    center, verts = case
    try:
        shape = sphere.polygon_shape(verts)
    except sphere.GeometryError:
        return  # nearly collinear draws; refusals are tested above
    assert all(3 <= len(p) <= sphere.MAX_QSERV_VERTICES for p in shape.parts)
    rng = np.random.default_rng(7)
    lon = (
        center[0] + rng.uniform(-8, 8, 4000) / max(math.cos(math.radians(center[1])), 0.05)
    ) % 360
    lat = np.clip(center[1] + rng.uniform(-8, 8, 4000), -90, 90)
    x, y, cosc = _plane(lon, lat, center)
    px, py, _ = _plane(np.array([v[0] for v in verts]), np.array([v[1] for v in verts]), center)
    expected = (cosc > 0) & _ray_cast(x, y, list(zip(px.tolist(), py.tolist(), strict=True)))
    got = np.array(
        [
            any(sphere.point_in_convex(a, b, part) for part in shape.parts)
            for a, b in zip(lon, lat, strict=True)
        ]
    )
    mismatch = expected != got
    if mismatch.any():
        # Only points within rounding distance of an edge may disagree.
        for a, b in zip(lon[mismatch], lat[mismatch], strict=True):
            near = min(
                abs(
                    float(np.dot(sphere.to_vec(a, b), sphere.edge_normal(p, q)))
                    / math.sqrt(sum(c * c for c in sphere.edge_normal(p, q)))
                )
                for p, q in zip(
                    shape.vertices, (*shape.vertices[1:], shape.vertices[0]), strict=True
                )
            )
            assert near < 1e-9
    # The bounding cap used by the SQL prefilters contains every vertex and every inside point.
    cap = shape.bound
    inside_lon, inside_lat = lon[got], lat[got]
    for a, b in [*shape.vertices, *zip(inside_lon.tolist(), inside_lat.tolist(), strict=True)]:
        assert sphere.ang_sep(cap.lon, cap.lat, a, b) <= cap.radius + 1e-9


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 360, exclude_max=True),
    st.floats(-90, 90),
    st.floats(0.001, 60),
    st.floats(0, 1),
    st.floats(0, 2 * math.pi),
)
def test_cap_prefilter_never_excludes_a_point_inside(
    lon: float, lat: float, r: float, frac: float, bearing: float
) -> None:
    """Points up to r from the centre (destination formula) pass the dec and RA bounds."""
    d, d0, a0 = math.radians(r * frac), math.radians(lat), math.radians(lon)
    plat_r = math.asin(
        min(
            1.0,
            max(-1.0, math.sin(d0) * math.cos(d) + math.cos(d0) * math.sin(d) * math.cos(bearing)),
        )
    )
    plon_r = a0 + math.atan2(
        math.sin(bearing) * math.sin(d) * math.cos(d0),
        math.cos(d) - math.sin(d0) * math.sin(plat_r),
    )
    plon, plat = math.degrees(plon_r) % 360, math.degrees(plat_r)
    cap = sphere.Cap(lon, lat, r)
    lo, hi = cap.dec_range()
    assert lo <= plat <= hi
    ranges = cap.ra_ranges()
    if ranges is not None:
        assert any(a <= plon <= b for a, b in ranges)
