"""Chunk coverage against an independent computation: dense sampling of the sphere.

The reference here shares no code with ``tap_service.adql.chunks``: chunk counts per stripe
come from the closed form ``acos((cos h - sin^2 phi) / cos^2 phi)`` (the longitude step at which
two points on the stripe's pole-most edge are one stripe height apart), and points are located
with numpy.  For each region, sample points densely inside it and on its boundary; every chunk
holding a sample must be reported (no chunk missed), and every reported chunk must hold a
sample within a hair (1e-6 deg) of the region (no chunk invented).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tap_service.adql import sphere
from tap_service.adql.chunks import ChunkScheme, scheme


def ref_chunks_per_stripe(num_stripes: int) -> list[int]:
    h = math.radians(180.0 / num_stripes)
    out = []
    for s in range(num_stripes):
        lat_lo, lat_hi = -90.0 + s * 180.0 / num_stripes, -90.0 + (s + 1) * 180.0 / num_stripes
        phi = math.radians(max(abs(lat_lo), abs(lat_hi)))
        if math.degrees(phi) > 90.0 - 1.0 / 3600.0:
            out.append(1)
            continue
        c = (math.cos(h) - math.sin(phi) ** 2) / math.cos(phi) ** 2
        step = math.degrees(math.acos(max(-1.0, min(1.0, c))))
        out.append(max(1, int(360.0 // step)))
    return out


def ref_locate(num_stripes: int, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    per = np.array(ref_chunks_per_stripe(num_stripes))
    s = np.clip(np.floor((lat + 90.0) * num_stripes / 180.0).astype(int), 0, num_stripes - 1)
    n = per[s]
    c = np.minimum(np.floor(np.mod(lon, 360.0) * n / 360.0).astype(int), n - 1)
    out: np.ndarray = s * 2 * num_stripes + c
    return out


def vec(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    a, d = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)


def lonlat(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return (
        np.mod(np.degrees(np.arctan2(v[..., 1], v[..., 0])), 360.0),
        np.degrees(np.arcsin(np.clip(v[..., 2], -1, 1))),
    )


def cap_samples(lon: float, lat: float, r: float, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Points of the cap: rings of radius 0..r around the centre (inclusive of the edge)."""
    c = vec(np.array(lon), np.array(lat))
    e1 = np.cross([0.0, 0.0, 1.0], c)
    if np.linalg.norm(e1) < 1e-9:
        e1 = np.array([1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(c, e1)
    rho = np.radians(np.concatenate([np.linspace(0, r, n), [r, r]]))[:, None]
    az = np.linspace(0, 2 * np.pi, 4 * n, endpoint=False)[None, :]
    pts = np.cos(rho)[..., None] * c + np.sin(rho)[..., None] * (
        np.cos(az)[..., None] * e1 + np.sin(az)[..., None] * e2
    )
    return lonlat(pts.reshape(-1, 3))


def polygon_samples(
    verts: list[tuple[float, float]], n: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    """Points of a convex polygon: fans from the centroid to dense points on every edge."""
    v = vec(np.array([p[0] for p in verts]), np.array([p[1] for p in verts]))
    centre = v.sum(axis=0)
    centre /= np.linalg.norm(centre)
    t = np.linspace(0, 1, 4 * n)[:, None]
    edge_pts = np.concatenate([(1 - t) * v[i] + t * v[(i + 1) % len(v)] for i in range(len(v))])
    edge_pts /= np.linalg.norm(edge_pts, axis=1, keepdims=True)
    f = np.linspace(0, 1, n)[:, None, None]
    pts = (1 - f) * centre + f * edge_pts[None, :, :]
    return lonlat(pts.reshape(-1, 3))


def check(num_stripes: int, got: frozenset[int], inside: tuple[np.ndarray, np.ndarray]) -> None:
    lon, lat = inside
    must = set(ref_locate(num_stripes, lon, lat).tolist())
    assert must <= got, f"missed chunks {sorted(must - got)[:10]}"
    eps = 1e-6
    near = set(must)
    for dlon, dlat in ((eps, 0), (-eps, 0), (0, eps), (0, -eps)):
        near |= set(ref_locate(num_stripes, lon + dlon, np.clip(lat + dlat, -90, 90)).tolist())
    extra = got - near
    assert not extra, f"chunks not touched by the region: {sorted(extra)[:10]}"


@pytest.mark.parametrize("num_stripes", [18, 85, 340])
def test_chunks_per_stripe_match_closed_form(num_stripes: int) -> None:
    s = ChunkScheme(num_stripes)
    assert list(s.chunks_per_stripe) == ref_chunks_per_stripe(num_stripes)
    assert s.chunks_per_stripe[0] == s.chunks_per_stripe[-1] == 1
    assert s.total_chunks == sum(ref_chunks_per_stripe(num_stripes))


def test_locate_matches_reference() -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(0, 360, 2000)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, 2000)))
    s = scheme(340, 3)
    ref = ref_locate(340, lon, lat)
    assert [s.locate(a, b) for a, b in zip(lon, lat, strict=True)] == ref.tolist()


def test_chunk_ids_and_bounds() -> None:
    s = scheme(340, 3)
    cid = s.locate(10.0, 0.1)
    lo, hi, la, lb = s.bounds(cid)
    assert lo <= 10.0 < hi
    assert la <= 0.1 < lb
    assert cid // (2 * 340) == s.stripe_of(0.1)
    assert len(s.all_chunks()) == s.total_chunks


CIRCLES = [
    (340, 62.0, -37.0, 0.05),
    (340, 62.0, -37.0, 1.0),
    (340, 0.0, 0.0, 0.5),  # centred on RA = 0
    (340, 359.9, 10.0, 0.3),  # crossing RA = 0
    (340, 0.2, -45.0, 2.0),
    (340, 120.0, 89.9, 0.5),  # holds the north pole
    (340, 300.0, -89.5, 1.0),  # holds the south pole
    (340, 45.0, 88.0, 1.9),  # near the pole, not holding it
    (85, 200.0, 30.0, 10.0),
    (18, 10.0, 80.0, 20.0),
    (18, 180.0, -60.0, 45.0),
]


@pytest.mark.parametrize(("ns", "lon", "lat", "r"), CIRCLES)
def test_circle_chunks_match_sampling(ns: int, lon: float, lat: float, r: float) -> None:
    got = scheme(ns).circle_chunks(lon, lat, r)
    check(ns, got, cap_samples(lon, lat, r))


POLYGONS = [
    (340, [(61.0, -38.0), (63.0, -38.0), (63.0, -36.0), (61.0, -36.0)]),
    (340, [(359.0, -1.0), (1.0, -1.0), (1.0, 1.0), (359.0, 1.0)]),  # crossing RA = 0
    (340, [(0.0, 88.5), (120.0, 88.5), (240.0, 88.5)]),  # around the north pole
    (340, [(10.0, -89.0), (130.0, -89.2), (250.0, -89.1)]),  # around the south pole
    (85, [(100.0, 10.0), (110.0, 12.0), (108.0, 20.0), (99.0, 17.0)]),
    (18, [(350.0, -30.0), (30.0, -30.0), (10.0, 20.0)]),
]


@pytest.mark.parametrize(("ns", "verts"), POLYGONS)
def test_polygon_chunks_match_sampling(ns: int, verts: list[tuple[float, float]]) -> None:
    shape = sphere.polygon_shape(verts)
    assert shape.convex
    part = list(shape.parts[0])
    got = scheme(ns).polygon_chunks(part)
    check(ns, got, polygon_samples(part))


@pytest.mark.parametrize(
    ("ns", "lon", "lat", "w", "h"),
    [(340, 0.0, 0.0, 2.0, 1.0), (340, 180.0, 85.0, 4.0, 4.0), (85, 359.0, -70.0, 10.0, 5.0)],
)
def test_box_chunks_match_sampling(ns: int, lon: float, lat: float, w: float, h: float) -> None:
    shape = sphere.polygon_shape(sphere.box_vertices(lon, lat, w, h))
    part = list(shape.parts[0])
    got = scheme(ns).polygon_chunks(part)
    check(ns, got, polygon_samples(part))


def test_whole_sky_cap_is_every_chunk() -> None:
    s = scheme(85)
    assert s.circle_chunks(0.0, 0.0, 180.0) == s.all_chunks()
