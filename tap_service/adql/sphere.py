"""Spherical geometry on constant regions, computed once in Python before any SQL is written.

The dialects need a few facts about constant shapes that SQL should not recompute per row: the
corners of a BOX, whether a POLYGON is convex, a convex decomposition when it is not, and a
bounding cap so that the embedded backend can skip row groups.  Everything is in degrees on the
unit sphere, with great-circle edges (ADQL's and scisql's convention).

The workhorse is the gnomonic projection: it maps great circles to straight lines, so a
spherical polygon smaller than a hemisphere becomes a planar polygon with the *same*
combinatorics.  Convexity, orientation, self-intersection and triangulation are then exact
planar questions, and the resulting parts are still bounded by great circles on the sky.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Vec = tuple[float, float, float]
LonLat = tuple[float, float]

# Margin added to the bounding prefilters so that floating-point rounding in the prefilter can
# never exclude a point that the exact test (evaluated with other roundings) would accept.
PREFILTER_MARGIN_DEG = 1e-8
MAX_QSERV_VERTICES = 20


class GeometryError(ValueError):
    """A constant shape that has no well-defined interior (or one we refuse to guess)."""


def to_vec(lon: float, lat: float) -> Vec:
    a, d = math.radians(lon), math.radians(lat)
    return (math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d))


def to_lonlat(v: Vec) -> LonLat:
    x, y, z = v
    lon = math.degrees(math.atan2(y, x)) % 360.0
    lat = math.degrees(math.atan2(z, math.hypot(x, y)))
    return (lon, lat)


def _cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _norm(a: Vec) -> Vec:
    n = math.sqrt(_dot(a, a))
    if n == 0.0:
        raise GeometryError("degenerate direction")
    return (a[0] / n, a[1] / n, a[2] / n)


def ang_sep(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Haversine separation in degrees: accurate at small and large angles alike."""
    d1, d2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((d2 - d1) / 2) ** 2
        + math.cos(d1) * math.cos(d2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def _tangent_frame(center: Vec) -> tuple[Vec, Vec]:
    """East and north unit vectors at ``center`` (any consistent pair at the poles)."""
    lon, _ = to_lonlat(center)
    a = math.radians(lon)
    east = (-math.sin(a), math.cos(a), 0.0)
    north = _cross(center, east)
    return east, north


def box_vertices(lon: float, lat: float, width: float, height: float) -> list[LonLat]:
    """Corners of an ADQL BOX, counter-clockwise (east then north as seen from outside).

    The box is bounded by four great circles: the east and west edges cross the east-west
    great circle through the centre at ``width/2`` from it, at right angles; likewise north and
    south at ``height/2``.  In the gnomonic projection at the centre those edges are the lines
    x = ±tan(width/2) and y = ±tan(height/2), so the corners follow directly.
    """
    if not (0.0 < width < 180.0 and 0.0 < height < 180.0):
        raise GeometryError("BOX width and height must be above 0 and below 180 degrees")
    c = to_vec(lon, lat)
    east, north = _tangent_frame(c)
    tx, ty = math.tan(math.radians(width) / 2), math.tan(math.radians(height) / 2)
    corners = [(tx, -ty), (tx, ty), (-tx, ty), (-tx, -ty)]
    out: list[LonLat] = []
    for x, y in corners:
        v = _norm(
            (
                c[0] + x * east[0] + y * north[0],
                c[1] + x * east[1] + y * north[1],
                c[2] + x * east[2] + y * north[2],
            )
        )
        lon_, lat_ = to_lonlat(v)
        # Rounding to 1e-12 degree (4 nano-arcseconds) only hides float noise in the SQL.
        out.append((round(lon_, 12) % 360.0, round(lat_, 12)))
    return out


@dataclass(frozen=True)
class Cap:
    """A spherical cap (centre and radius in degrees), used only for bounding prefilters."""

    lon: float
    lat: float
    radius: float

    def dec_range(self) -> tuple[float, float]:
        m = PREFILTER_MARGIN_DEG
        return (max(-90.0, self.lat - self.radius - m), min(90.0, self.lat + self.radius + m))

    def ra_ranges(self) -> list[tuple[float, float]] | None:
        """RA intervals within [0, 360] covering the cap; None when every RA is possible.

        Uses the exact half-width asin(sin r / cos dec0) of a cap that does not contain a pole.
        Assumes catalog RA values lie in [0, 360).
        """
        m = PREFILTER_MARGIN_DEG
        if self.radius >= 90.0 or abs(self.lat) + self.radius >= 90.0 - m:
            return None
        ratio = math.sin(math.radians(self.radius)) / math.cos(math.radians(self.lat))
        if ratio >= 1.0:
            return None
        half = math.degrees(math.asin(ratio)) + m
        if half >= 180.0:
            return None
        center = self.lon % 360.0
        lo, hi = center - half, center + half
        if lo < 0.0:
            return [(lo + 360.0, 360.0), (0.0, hi)]
        if hi > 360.0:
            return [(lo, 360.0), (0.0, hi - 360.0)]
        return [(lo, hi)]


@dataclass(frozen=True)
class PolygonShape:
    """A constant polygon ready for SQL: convex parts (each counter-clockwise) and a bound.

    ``parts`` has one element when the polygon is convex; the union of the parts is the
    polygon.  ``vertices`` are the original vertices, counter-clockwise.
    """

    vertices: tuple[LonLat, ...]
    parts: tuple[tuple[LonLat, ...], ...]
    bound: Cap

    @property
    def convex(self) -> bool:
        return len(self.parts) == 1


def _orient(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _segments_cross(
    p1: tuple[float, float],
    p2: tuple[float, float],
    q1: tuple[float, float],
    q2: tuple[float, float],
) -> bool:
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    return ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4)


def _is_convex(pts: Sequence[tuple[float, float]], eps: float) -> bool:
    n = len(pts)
    return all(_orient(pts[i], pts[(i + 1) % n], pts[(i + 2) % n]) >= -eps for i in range(n))


def _inside_triangle(
    p: tuple[float, float],
    a: tuple[float, float],
    b: tuple[float, float],
    c: tuple[float, float],
) -> bool:
    return _orient(a, b, p) >= 0 and _orient(b, c, p) >= 0 and _orient(c, a, p) >= 0


def _triangulate(pts: Sequence[tuple[float, float]]) -> list[list[int]]:
    """Ear clipping of a simple counter-clockwise planar polygon (n is at most a few dozen)."""
    idx = list(range(len(pts)))
    tris: list[list[int]] = []
    guard = 0
    while len(idx) > 3:
        guard += 1
        if guard > 10_000:
            raise GeometryError("polygon could not be triangulated")
        n = len(idx)
        for k in range(n):
            i0, i1, i2 = idx[(k - 1) % n], idx[k], idx[(k + 1) % n]
            a, b, c = pts[i0], pts[i1], pts[i2]
            if _orient(a, b, c) <= 0:
                continue
            if any(_inside_triangle(pts[j], a, b, c) for j in idx if j not in (i0, i1, i2)):
                continue
            tris.append([i0, i1, i2])
            idx.pop(k)
            break
        else:
            raise GeometryError("polygon could not be triangulated")
    tris.append(idx)
    return tris


def _merge_convex(
    pieces: list[list[int]], pts: Sequence[tuple[float, float]], max_vertices: int
) -> list[list[int]]:
    """Hertel-Mehlhorn: glue neighbouring pieces across shared diagonals while still convex."""
    merged = True
    while merged:
        merged = False
        for i in range(len(pieces)):
            for j in range(i + 1, len(pieces)):
                a, b = pieces[i], pieces[j]
                for ka in range(len(a)):
                    u, v = a[ka], a[(ka + 1) % len(a)]
                    if v not in b:
                        continue
                    kb = b.index(v)
                    if b[(kb + 1) % len(b)] != u:
                        continue
                    # a: ... u v ...; b: ... v u ...  -> a[..u] + b[u+1 .. v-1] + a[v..]
                    rest_b = [b[(kb + 1 + t) % len(b)] for t in range(1, len(b) - 1)]
                    candidate = a[: ka + 1] + rest_b + a[ka + 1 :]
                    if len(candidate) <= max_vertices and _is_convex(
                        [pts[t] for t in candidate], 1e-15
                    ):
                        pieces[i] = candidate
                        del pieces[j]
                        merged = True
                        break
                if merged:
                    break
            if merged:
                break
    return pieces


def polygon_shape(
    vertices: Sequence[LonLat], *, max_part_vertices: int = MAX_QSERV_VERTICES
) -> PolygonShape:
    """Analyse a constant polygon; its interior is the side smaller than a hemisphere.

    Raises GeometryError for fewer than 3 distinct vertices, polygons not contained in an open
    hemisphere, and self-intersecting polygons.
    """
    verts = [(float(lo), float(la)) for lo, la in vertices]
    # Drop a repeated closing vertex and consecutive duplicates.
    dedup: list[LonLat] = []
    for v in verts:
        if not dedup or ang_sep(*dedup[-1], *v) > 0.0:
            dedup.append(v)
    if len(dedup) > 1 and ang_sep(*dedup[0], *dedup[-1]) == 0.0:
        dedup.pop()
    if len(dedup) < 3:
        raise GeometryError("a POLYGON needs at least 3 distinct vertices")
    vecs = [to_vec(lo, la) for lo, la in dedup]
    total = (sum(v[0] for v in vecs), sum(v[1] for v in vecs), sum(v[2] for v in vecs))
    try:
        center = _norm(total)
    except GeometryError:
        raise GeometryError("POLYGON vertices surround the sphere; no interior") from None
    if any(_dot(center, v) <= 1e-9 for v in vecs):
        raise GeometryError("POLYGON larger than a hemisphere is not supported")
    east, north = _tangent_frame(center)
    plane = [(_dot(v, east) / _dot(v, center), _dot(v, north) / _dot(v, center)) for v in vecs]
    area2 = sum(
        plane[i][0] * plane[(i + 1) % len(plane)][1] - plane[(i + 1) % len(plane)][0] * plane[i][1]
        for i in range(len(plane))
    )
    if area2 == 0.0:
        raise GeometryError("POLYGON has no area")
    if area2 < 0:
        dedup.reverse()
        plane.reverse()
    n = len(plane)
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue
            if _segments_cross(plane[i], plane[(i + 1) % n], plane[j], plane[(j + 1) % n]):
                raise GeometryError("POLYGON edges cross each other")
    if _is_convex(plane, 1e-15) and n <= max_part_vertices:
        pieces = [list(range(n))]
    else:
        pieces = _merge_convex(_triangulate(plane), plane, max_part_vertices)
    radius = max(ang_sep(*to_lonlat(center), *v) for v in dedup)
    clon, clat = to_lonlat(center)
    return PolygonShape(
        vertices=tuple(dedup),
        parts=tuple(tuple(dedup[k] for k in piece) for piece in pieces),
        bound=Cap(clon, clat, radius),
    )


def circle_area(radius: float) -> float:
    """Area of a cap in square degrees."""
    r = math.radians(min(max(radius, 0.0), 180.0))
    return 2 * math.pi * (1 - math.cos(r)) * (180 / math.pi) ** 2


def polygon_area(shape: PolygonShape) -> float:
    """Area in square degrees, as the sum of the parts' spherical excesses."""
    total = 0.0
    for part in shape.parts:
        vecs = [to_vec(lo, la) for lo, la in part]
        for k in range(1, len(vecs) - 1):
            a, b, c = vecs[0], vecs[k], vecs[k + 1]
            num = abs(_dot(a, _cross(b, c)))
            den = 1 + _dot(a, b) + _dot(b, c) + _dot(c, a)
            total += 2 * math.atan2(num, den)
    return total * (180 / math.pi) ** 2


def polygon_centroid(shape: PolygonShape) -> LonLat:
    """Area-weighted centroid direction of the triangles of the convex parts."""
    acc = [0.0, 0.0, 0.0]
    for part in shape.parts:
        vecs = [to_vec(lo, la) for lo, la in part]
        for k in range(1, len(vecs) - 1):
            a, b, c = vecs[0], vecs[k], vecs[k + 1]
            num = abs(_dot(a, _cross(b, c)))
            den = 1 + _dot(a, b) + _dot(b, c) + _dot(c, a)
            w = 2 * math.atan2(num, den)
            m = _norm((a[0] + b[0] + c[0], a[1] + b[1] + c[1], a[2] + b[2] + c[2]))
            for t in range(3):
                acc[t] += w * m[t]
    return to_lonlat(_norm((acc[0], acc[1], acc[2])))


def edge_normal(a: LonLat, b: LonLat) -> Vec:
    """Normal of the great circle from ``a`` to ``b``: positive dot product means "left of"."""
    return _cross(to_vec(*a), to_vec(*b))


def point_in_convex(lon: float, lat: float, part: Sequence[LonLat]) -> bool:
    """Reference implementation used by tests and by constant folding of CONTAINS."""
    p = to_vec(lon, lat)
    n = len(part)
    return all(_dot(edge_normal(part[i], part[(i + 1) % n]), p) >= 0 for i in range(n))
