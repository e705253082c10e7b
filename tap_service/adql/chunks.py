"""Qserv's spherical chunking scheme: which chunks a constant region touches.

Pure computation, no I/O.  The scheme is the one Qserv's partitioner and czar share (lsst
``sphgeom`` ``Chunker``; Qserv docs, "partitioning"):

* the sky is cut into ``num_stripes`` stripes of equal height ``180 / num_stripes`` degrees in
  declination, stripe 0 starting at the south pole;
* stripe ``s`` is cut into ``n_s`` chunks of equal width ``360 / n_s`` in right ascension,
  starting at RA 0, where ``n_s`` is the largest number of segments such that two points of
  the stripe's edge nearest the pole, one segment apart, are at least one stripe height apart
  (``segments`` below; 1 for the stripes touching a pole);
* the chunk id is ``stripe * 2 * num_stripes + chunk``;
* sub-stripes and sub-chunks refine chunks the same way (``num_sub_stripes_per_stripe``); the
  overlap is a margin copied into neighbouring chunks for near-neighbour joins.  Neither
  changes which chunks a restricted query touches, so they are kept for the report only.

A chunk is a longitude/latitude rectangle; regions have great-circle edges (ADQL, scisql).
Chunk coverage is computed exactly, not from a bounding box: for a cap, per stripe, from the
largest longitude half-width of the cap over the stripe's declinations; for a convex polygon,
each candidate chunk (from the polygon's bounding cap) is tested rectangle against polygon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from tap_service.adql import sphere

LonLat = tuple[float, float]
Vec = tuple[float, float, float]

# Degrees added to every region before chunks are looked up: an estimate must never miss a
# chunk Qserv would scan because of rounding, and a few extra boundary chunks are harmless.
MARGIN_DEG = 1e-9


def segments(lat_min: float, lat_max: float, width: float) -> int:
    """How many chunks of at least ``width`` degrees fit in the stripe [lat_min, lat_max]."""
    lat = max(abs(lat_min), abs(lat_max))
    if lat > 90.0 - 1.0 / 3600.0 or width >= 180.0:
        return 1
    width = max(width, 1.0 / 3600.0)
    cw = math.cos(math.radians(width))
    sl, cl = math.sin(math.radians(lat)), math.cos(math.radians(lat))
    x = cw - sl * sl
    u = cl * cl
    y = math.sqrt(abs(u * u - x * x))
    return max(1, math.floor(360.0 / abs(math.degrees(math.atan2(y, x)))))


@dataclass(frozen=True)
class ChunkScheme:
    """One partitioning: stripes, chunks per stripe, chunk ids."""

    num_stripes: int
    num_sub_stripes_per_stripe: int = 1
    overlap: float = 0.0
    chunks_per_stripe: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.num_stripes < 1 or self.num_sub_stripes_per_stripe < 1:
            raise ValueError("numStripes and numSubStripesPerStripe must be positive")
        h = self.stripe_height
        per = tuple(segments(s * h - 90.0, (s + 1) * h - 90.0, h) for s in range(self.num_stripes))
        object.__setattr__(self, "chunks_per_stripe", per)

    @property
    def stripe_height(self) -> float:
        return 180.0 / self.num_stripes

    @property
    def total_chunks(self) -> int:
        return sum(self.chunks_per_stripe)

    def chunk_id(self, stripe: int, chunk: int) -> int:
        return stripe * 2 * self.num_stripes + chunk

    def stripe_of(self, lat: float) -> int:
        s = math.floor((lat + 90.0) / self.stripe_height)
        return min(max(s, 0), self.num_stripes - 1)

    def locate(self, lon: float, lat: float) -> int:
        """The chunk id of the point (lon, lat)."""
        s = self.stripe_of(lat)
        n = self.chunks_per_stripe[s]
        c = min(math.floor((lon % 360.0) / (360.0 / n)), n - 1)
        return self.chunk_id(s, c)

    def bounds(self, chunk_id: int) -> tuple[float, float, float, float]:
        """(lon_min, lon_max, lat_min, lat_max) of a chunk, in degrees."""
        s, c = divmod(chunk_id, 2 * self.num_stripes)
        w = 360.0 / self.chunks_per_stripe[s]
        h = self.stripe_height
        return c * w, (c + 1) * w, s * h - 90.0, (s + 1) * h - 90.0

    def all_chunks(self) -> frozenset[int]:
        return frozenset(
            self.chunk_id(s, c) for s, n in enumerate(self.chunks_per_stripe) for c in range(n)
        )

    # ------------------------------------------------------------------ regions

    def circle_chunks(self, lon: float, lat: float, radius: float) -> frozenset[int]:
        """Chunks a cap (centre, radius in degrees) touches."""
        r = radius + MARGIN_DEG
        if r >= 180.0:
            return self.all_chunks()
        lo, hi = max(lat - r, -90.0), min(lat + r, 90.0)
        out: set[int] = set()
        h = self.stripe_height
        for s in range(self.stripe_of(lo), self.stripe_of(hi) + 1):
            s_lo, s_hi = max(s * h - 90.0, lo), min((s + 1) * h - 90.0, hi)
            half = _cap_half_width(lat, r, s_lo, s_hi)
            self._add_lon_range(out, s, lon - half, lon + half)
        return frozenset(out)

    def polygon_chunks(self, vertices: Sequence[LonLat]) -> frozenset[int]:
        """Chunks a convex polygon (counter-clockwise, great-circle edges) touches."""
        vecs = [sphere.to_vec(*v) for v in vertices]
        centre = _normalise(
            (sum(v[0] for v in vecs), sum(v[1] for v in vecs), sum(v[2] for v in vecs))
        )
        c_lon, c_lat = sphere.to_lonlat(centre)
        reach = max(sphere.ang_sep(c_lon, c_lat, *v) for v in vertices)
        candidates = self.all_chunks() if reach >= 89.0 else self.circle_chunks(c_lon, c_lat, reach)
        poly = _Polygon(tuple(vertices))
        return frozenset(c for c in candidates if poly.meets_box(*self.bounds(c)))

    def _add_lon_range(self, out: set[int], s: int, lon_lo: float, lon_hi: float) -> None:
        n = self.chunks_per_stripe[s]
        base = s * 2 * self.num_stripes
        if lon_hi - lon_lo >= 360.0:
            out.update(range(base, base + n))
            return
        w = 360.0 / n
        first, last = math.floor(lon_lo / w), math.floor(lon_hi / w)
        for c in range(first, min(last, first + n - 1) + 1):
            out.add(base + c % n)


@lru_cache(maxsize=32)
def scheme(
    num_stripes: int, num_sub_stripes_per_stripe: int = 1, overlap: float = 0.0
) -> ChunkScheme:
    """A shared, cached scheme (building one computes every stripe's chunk count)."""
    return ChunkScheme(num_stripes, num_sub_stripes_per_stripe, overlap)


def _cap_half_width(lat_c: float, r: float, lo: float, hi: float) -> float:
    """Largest longitude half-width (degrees) of the cap at declinations in [lo, hi]."""
    cos_r = math.cos(math.radians(r))
    sin_c, cos_c = math.sin(math.radians(lat_c)), math.cos(math.radians(lat_c))
    if cos_c < 1e-12:
        return 180.0
    candidates = [lo, hi]
    if r < 90.0:
        k = sin_c / cos_r
        if -1.0 < k < 1.0:
            star = math.degrees(math.asin(k))
            if lo <= star <= hi:
                candidates.append(star)
    best = 0.0
    for phi in candidates:
        cos_p = math.cos(math.radians(phi))
        if cos_p < 1e-12:
            return 180.0  # a pole inside the latitude range of the cap: the cap holds it
        v = (cos_r - math.sin(math.radians(phi)) * sin_c) / (cos_p * cos_c)
        if v <= -1.0:
            return 180.0
        best = max(best, math.degrees(math.acos(min(v, 1.0))))
    return best + MARGIN_DEG


def _normalise(v: Vec) -> Vec:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    return (v[0] / n, v[1] / n, v[2] / n)


def _cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _on_arc(x: Vec, a: Vec, b: Vec, n: Vec) -> bool:
    eps = 1e-12
    return _dot(_cross(a, x), n) >= -eps and _dot(_cross(x, b), n) >= -eps


def _in_lon(lon: float, lon_min: float, lon_max: float) -> bool:
    if lon_max - lon_min >= 360.0:
        return True
    return (lon - lon_min) % 360.0 <= (lon_max - lon_min) + 1e-12


@dataclass(frozen=True)
class _Polygon:
    vertices: tuple[LonLat, ...]

    def contains(self, lon: float, lat: float) -> bool:
        return sphere.point_in_convex(lon, lat, self.vertices)

    def edges(self) -> list[tuple[Vec, Vec]]:
        v = [sphere.to_vec(*p) for p in self.vertices]
        return [(v[i], v[(i + 1) % len(v)]) for i in range(len(v))]

    def meets_box(self, lon_min: float, lon_max: float, lat_min: float, lat_max: float) -> bool:
        m = MARGIN_DEG
        lat_min, lat_max = lat_min - m, lat_max + m
        lon_min, lon_max = lon_min - m, lon_max + m
        for lon, lat in self.vertices:
            if lat_min <= lat <= lat_max and _in_lon(lon, lon_min, lon_max):
                return True
        corners = [(lon_min, lat_min), (lon_max, lat_min), (lon_min, lat_max), (lon_max, lat_max)]
        if any(self.contains(lo, la) for lo, la in corners):
            return True
        edges = self.edges()
        for a, b in edges:
            for lat in (lat_min, lat_max):
                if _arc_crosses_parallel(a, b, lat, lon_min, lon_max):
                    return True
            for lon in (lon_min, lon_max):
                if _arc_crosses_meridian(a, b, lon, lat_min, lat_max):
                    return True
        return False


def _arc_crosses_parallel(a: Vec, b: Vec, lat: float, lon_min: float, lon_max: float) -> bool:
    """Does the great-circle arc a→b meet latitude ``lat`` within [lon_min, lon_max]?"""
    if abs(lat) >= 90.0:
        return False
    cos_t = max(-1.0, min(1.0, _dot(a, b)))
    theta = math.acos(cos_t)
    perp = (b[0] - cos_t * a[0], b[1] - cos_t * a[1], b[2] - cos_t * a[2])
    if _dot(perp, perp) < 1e-30:
        return False
    c = _normalise(perp)
    big_r = math.hypot(a[2], c[2])
    s = math.sin(math.radians(lat))
    if big_r < 1e-15 or abs(s) > big_r:
        return False
    t0 = math.atan2(c[2], a[2])
    d = math.acos(max(-1.0, min(1.0, s / big_r)))
    for t in (t0 + d, t0 - d):
        t %= 2 * math.pi
        if t <= theta + 1e-12:
            p = (
                a[0] * math.cos(t) + c[0] * math.sin(t),
                a[1] * math.cos(t) + c[1] * math.sin(t),
                a[2] * math.cos(t) + c[2] * math.sin(t),
            )
            if _in_lon(sphere.to_lonlat(p)[0], lon_min, lon_max):
                return True
    return False


def _arc_crosses_meridian(a: Vec, b: Vec, lon: float, lat_min: float, lat_max: float) -> bool:
    """Does the great-circle arc a→b meet the meridian arc at ``lon`` from lat_min to lat_max?"""
    lat_min, lat_max = max(lat_min, -90.0), min(lat_max, 90.0)
    c, d = sphere.to_vec(lon, lat_min), sphere.to_vec(lon, lat_max)
    n1, n2 = _cross(a, b), _cross(c, d)
    line = _cross(n1, n2)
    if _dot(line, line) < 1e-30:
        return False
    x = _normalise(line)
    both = (x, (-x[0], -x[1], -x[2]))
    return any(_on_arc(p, a, b, n1) and _on_arc(p, c, d, n2) for p in both)
