"""The embedded dialect: full ADQL 2.1 on DuckDB, geometry through pure SQL macros.

No DuckDB extension can be installed where the service runs, so spherical geometry is written
as SQL macros (``setup_statements``), created on every new connection by the embedded storage.
Geometry values are ``DOUBLE[]`` lists in DALI order (point = [ra, dec], circle = [ra, dec, r],
polygon = [ra1, dec1, ...]).

Semantics are chosen to match the Qserv dialect running on MariaDB row for row:
* angular tests use the haversine (``adql_hav``), like ``scisql_mariadb.sql``;
* ``ROUND`` on doubles rounds half to even (``round_even``), as MariaDB does;
* ``x / 0`` is NULL (MySQL's answer; DuckDB alone would return inf);
* ``ORDER BY`` puts NULLs first ascending and last descending, as MySQL does.

Speed: a cone search ``CONTAINS(POINT(ra, dec), CIRCLE(<constants>)) = 1`` gets sargable
``dec BETWEEN`` and RA-range conjuncts before the exact test, so DuckDB's zone maps skip the row
groups of a dec-sorted table instead of evaluating trigonometry on every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from tap_service.adql import ast, sphere
from tap_service.adql import types as t
from tap_service.adql.dialects.base import (
    Renderer,
    const_circle,
    const_polygon,
    fail,
    fmt_number,
    geometry_kind,
)
from tap_service.adql.errors import AdqlUnsupportedError
from tap_service.adql.rewrite import const_value

_EDGE_NORMAL = """
CREATE OR REPLACE MACRO adql_edge(ra, dec, ra1, dec1, ra2, dec2) AS
    (cos(radians(dec1)) * sin(radians(ra1)) * sin(radians(dec2))
       - sin(radians(dec1)) * cos(radians(dec2)) * sin(radians(ra2)))
      * cos(radians(dec)) * cos(radians(ra))
  + (sin(radians(dec1)) * cos(radians(dec2)) * cos(radians(ra2))
       - cos(radians(dec1)) * cos(radians(ra1)) * sin(radians(dec2)))
      * cos(radians(dec)) * sin(radians(ra))
  + (cos(radians(dec1)) * cos(radians(dec2)) * sin(radians(ra2 - ra1)))
      * sin(radians(dec)) >= 0
"""

SETUP_STATEMENTS: tuple[str, ...] = (
    # Haversine term: sin²(Δdec/2) + cos dec1 cos dec2 sin²(Δra/2); monotonic in the angle.
    """
CREATE OR REPLACE MACRO adql_hav(ra1, dec1, ra2, dec2) AS
    pow(sin(radians(dec2 - dec1) / 2), 2)
  + cos(radians(dec1)) * cos(radians(dec2)) * pow(sin(radians(ra2 - ra1) / 2), 2)
""",
    """
CREATE OR REPLACE MACRO adql_distance(ra1, dec1, ra2, dec2) AS
    degrees(2 * asin(least(1.0, sqrt(adql_hav(ra1, dec1, ra2, dec2)))))
""",
    # Boundary inclusive; comparing haversine terms avoids asin/sqrt per row.
    """
CREATE OR REPLACE MACRO adql_pt_in_circle(ra, dec, ra0, dec0, r) AS
    r >= 0 AND adql_hav(ra, dec, ra0, dec0) <= pow(sin(radians(least(r, 180)) / 2), 2)
""",
    # Point left of (or on) the great circle from vertex 1 to vertex 2: (v1 × v2) · p >= 0.
    # The normal's components only involve constants when the polygon is constant, so DuckDB
    # folds them once per query.
    _EDGE_NORMAL,
    # Convex polygon given as a DALI list, in either orientation (decided by the first three
    # vertices, so that the antipode of the interior is not mistaken for it).
    """
CREATE OR REPLACE MACRO adql_pt_in_cpoly(ra, dec, v) AS
    CASE WHEN adql_edge(v[5], v[6], v[1], v[2], v[3], v[4])
    THEN list_aggregate(list_transform(range(len(v) // 2), lambda i: adql_edge(ra, dec,
             v[2 * i + 1], v[2 * i + 2], v[(2 * i + 2) % len(v) + 1], v[(2 * i + 3) % len(v) + 1])),
           'bool_and')
    ELSE list_aggregate(list_transform(range(len(v) // 2), lambda i: adql_edge(ra, dec,
             v[(2 * i + 2) % len(v) + 1], v[(2 * i + 3) % len(v) + 1], v[2 * i + 1], v[2 * i + 2])),
           'bool_and')
    END
""",
    # Unit vector of a position, as a fixed-size array for DuckDB's vector functions.
    """
CREATE OR REPLACE MACRO adql_vec(ra, dec) AS
    [cos(radians(dec)) * cos(radians(ra)), cos(radians(dec)) * sin(radians(ra)),
     sin(radians(dec))]::DOUBLE[3]
""",
    # Whether the great-circle arc a->b passes within the angle whose sine is sin_r of p:
    # the foot of p on the great circle lies between a and b, and |n.p| <= sin r |n|.
    """
CREATE OR REPLACE MACRO adql_arc_near(p, a, b, sin_r) AS
    array_inner_product(array_cross_product(a, p), array_cross_product(a, b)) >= 0
    AND array_inner_product(array_cross_product(p, b), array_cross_product(a, b)) >= 0
    AND pow(array_inner_product(array_cross_product(a, b), p), 2)
        <= pow(sin_r, 2) * array_inner_product(array_cross_product(a, b),
                                               array_cross_product(a, b))
""",
    # A circle (radius below 90 degrees) and a convex polygon (DALI list) share a point when
    # the centre is inside, a vertex is inside the circle, or an edge passes within r.
    """
CREATE OR REPLACE MACRO adql_circle_meets_cpoly(ra0, dec0, r, v) AS
    adql_pt_in_cpoly(ra0, dec0, v)
    OR list_aggregate(list_transform(range(len(v) // 2), lambda i:
           adql_pt_in_circle(v[2 * i + 1], v[2 * i + 2], ra0, dec0, r)
           OR adql_arc_near(adql_vec(ra0, dec0), adql_vec(v[2 * i + 1], v[2 * i + 2]),
                            adql_vec(v[(2 * i + 2) % len(v) + 1], v[(2 * i + 3) % len(v) + 1]),
                            sin(radians(least(r, 90))))), 'bool_or')
""",
    # Every vertex of the polygon inside the circle (a cap below a hemisphere is convex).
    """
CREATE OR REPLACE MACRO adql_cpoly_in_circle(v, ra0, dec0, r) AS
    r < 90 AND list_aggregate(list_transform(range(len(v) // 2), lambda i:
        adql_pt_in_circle(v[2 * i + 1], v[2 * i + 2], ra0, dec0, r)), 'bool_and')
""",
    # An STC-S region string (xtype adql:REGION, e.g. ObsCore's s_region) as its shape word and
    # its numbers: 'POLYGON ICRS 1 2 3 4 5 6' -> {shape: 'POLYGON', v: [1, 2, 3, 4, 5, 6]}.
    # Frame, reference position and flavour words (ICRS, GEOCENTER, SPHERICAL2 ...) are no
    # numbers and drop out; the shape is NULL for a NULL string.
    """
CREATE OR REPLACE MACRO adql_stcs(s) AS {
    'shape': upper(regexp_extract(s, '^\\s*([A-Za-z]*)', 1)),
    'v': list_transform(
        list_filter(regexp_split_to_array(trim(s), '\\s+'),
                    lambda adql_tok: TRY_CAST(adql_tok AS DOUBLE) IS NOT NULL),
        lambda adql_tok: CAST(adql_tok AS DOUBLE))
}
""",
    """
CREATE OR REPLACE MACRO adql_truncate(x, n) AS trunc(x * pow(10, n)) / pow(10, n)
""",
    """
CREATE OR REPLACE MACRO adql_cap_area(r) AS
    2 * pi() * (1 - cos(radians(least(greatest(r, 0), 180)))) * pow(180 / pi(), 2)
""",
)


def setup_statements() -> list[str]:
    """SQL the embedded storage runs on each new DuckDB connection (idempotent)."""
    return [s.strip() for s in SETUP_STATEMENTS]


_CAST_TYPES = {
    "SMALLINT": "SMALLINT",
    "INTEGER": "INTEGER",
    "BIGINT": "BIGINT",
    "REAL": "REAL",
    "DOUBLE PRECISION": "DOUBLE",
    "CHAR": "VARCHAR",
    "VARCHAR": "VARCHAR",
    "NATIONAL CHAR": "VARCHAR",
    "NATIONAL VARCHAR": "VARCHAR",
    "TIMESTAMP": "TIMESTAMP",
}

_SIMPLE_MATH = {
    "ABS": "abs",
    "CEILING": "ceiling",
    "DEGREES": "degrees",
    "EXP": "exp",
    "FLOOR": "floor",
    "LOG": "ln",
    "LOG10": "log10",
    "PI": "pi",
    "POWER": "power",
    "RADIANS": "radians",
    "SQRT": "sqrt",
    "ACOS": "acos",
    "ASIN": "asin",
    "ATAN": "atan",
    "ATAN2": "atan2",
    "COS": "cos",
    "COT": "cot",
    "SIN": "sin",
    "TAN": "tan",
    "LOWER": "lower",
    "UPPER": "upper",
    "COALESCE": "coalesce",
}


@dataclass(frozen=True, kw_only=True)
class _Rendered(ast.Expr):
    """A geometry operand already in SQL: the numbers of a parsed STC-S region, typed as the
    DALI polygon or circle they hold, so the shape tests below apply to it unchanged."""

    sql: str


def _is_number(sql: str) -> bool:
    try:
        float(sql)
    except ValueError:
        return False
    return True


class EmbeddedRenderer(Renderer):
    dialect = "embedded"

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def expr(self, e: ast.Expr) -> str:
        if isinstance(e, _Rendered):
            return e.sql
        # ADQL has no truth values: a boolean column (a flag) is a number wherever it is used
        # in an expression.  DuckDB compares BOOLEAN with 1 but refuses it in arithmetic,
        # functions and geometry (BETWEEN with a DECIMAL), so it becomes 0/1 there.
        if isinstance(e, ast.ColumnRef) and e.type_ is not None and e.type_.datatype == "boolean":
            return f"CAST({self.column(e)} AS INTEGER)"
        return super().expr(e)

    # Selected, grouped or sorted as it is, a column stays itself (GROUP BY and ORDER BY must
    # name what the select list names).
    def select_value(self, expr: ast.Expr) -> str:
        if isinstance(expr, ast.ColumnRef):
            return self.column(expr)
        return super().select_value(expr)

    def group_item(self, expr: ast.Expr) -> str:
        if isinstance(expr, ast.ColumnRef):
            return self.column(expr)
        return super().group_item(expr)

    def order_item(self, item: ast.OrderItem) -> str:
        e = item.expr
        if isinstance(e, ast.ColumnRef) and e.binding is not None:
            text = self.column(e) + (" DESC" if item.descending else " ASC")
        else:
            text = super().order_item(item)
        return text + (" NULLS LAST" if item.descending else " NULLS FIRST")

    def divide(self, e: ast.BinaryOp, left: str, right: str) -> str:
        v = const_value(e.right)
        if v is not None and v != 0:
            return f"{left} / {right}"
        return f"{left} / NULLIF({right}, 0)"

    def cast(self, c: ast.Cast) -> str:
        target = _CAST_TYPES.get(c.target.name.upper())
        if target is None:
            fail(f"CAST to {c.target.name} is not supported", c)
        return f"CAST({self.expr(c.operand)} AS {target})"

    def math_function(self, f: ast.FunctionCall) -> str:
        args = [self.expr(a) for a in f.args]
        name = f.name
        if name == "MOD":
            v = const_value(f.args[1])
            divisor = args[1] if v is not None and v != 0 else f"NULLIF({args[1]}, 0)"
            return f"({args[0]} % {divisor})"  # NULL for a zero divisor, as in MySQL
        if name == "RAND":
            if args:
                fail(
                    "RAND(seed) is not supported on the embedded backend; use RAND()",
                    f,
                )
            return "random()"
        if name in ("ROUND", "TRUNCATE"):
            digits = args[1] if len(args) > 1 else "0"
            t = f.args[0].type_
            places = const_value(f.args[1]) if len(f.args) > 1 else 0
            if t is not None and t.is_integer and places is not None and places >= 0:
                return args[0]  # integers are already rounded; keeps the integer type
            fn = "round_even" if name == "ROUND" else "adql_truncate"
            return f"{fn}({args[0]}, {digits})"
        return f"{_SIMPLE_MATH[name]}({', '.join(args)})"

    # ------------------------------------------------------------------ geometry

    def point_components(self, e: ast.Expr) -> tuple[str, str]:
        if isinstance(e, ast.Point):
            return self.expr(e.x), self.expr(e.y)
        if isinstance(e, ast.FunctionCall) and e.name == "CENTROID" and e.args:
            return self.centroid_components(e)
        if geometry_kind(e) == "point":
            text = self.expr(e)
            return f"({text})[1]", f"({text})[2]"
        fail("a point is expected here", e)

    def centroid_components(self, f: ast.FunctionCall) -> tuple[str, str]:
        g = f.args[0]
        if isinstance(g, ast.Circle):
            return self.point_components(g.center)
        shape = const_polygon(g)
        if shape is not None:
            lon, lat = sphere.polygon_centroid(shape)
            return fmt_number(lon), fmt_number(lat)
        if geometry_kind(g) == "circle":
            text = self.expr(g)
            return f"({text})[1]", f"({text})[2]"
        fail("CENTROID is supported for circles and constant polygons only", f)

    def circle_components(self, e: ast.Expr) -> tuple[str, str, str]:
        if isinstance(e, ast.Circle):
            x, y = self.point_components(e.center)
            return x, y, self.expr(e.radius)
        text = self.expr(e)
        return f"({text})[1]", f"({text})[2]", f"({text})[3]"

    def polygon_list(self, e: ast.Expr) -> str:
        shape = const_polygon(e)
        if shape is not None:
            return self.dali_list([c for v in shape.vertices for c in v])
        if isinstance(e, ast.Polygon):
            parts: list[str] = []
            for v in e.vertices:
                parts.extend(self.point_components(v))
            return f"[{', '.join(parts)}]::DOUBLE[]"
        if isinstance(e, ast.Box):
            fail("BOX needs constant arguments on this service; write a POLYGON instead", e)
        return self.expr(e)

    @staticmethod
    def null_safe_list(parts: Sequence[str]) -> str:
        """A DALI array, NULL (not a list of NULLs) when a coordinate is NULL."""
        text = f"[{', '.join(parts)}]::DOUBLE[]"
        variable = [p for p in parts if not _is_number(p)]
        if not variable:
            return text
        test = " OR ".join(f"{p} IS NULL" for p in variable)
        return f"CASE WHEN {test} THEN NULL ELSE {text} END"

    @staticmethod
    def dali_list(values: Sequence[float]) -> str:
        return "[" + ", ".join(fmt_number(v) for v in values) + "]::DOUBLE[]"

    def geometry_value(self, e: ast.Expr) -> str:
        if isinstance(e, ast.Point):
            return self.null_safe_list(self.point_components(e))
        if isinstance(e, ast.Circle):
            return self.null_safe_list(self.circle_components(e))
        if isinstance(e, ast.Box | ast.Polygon):
            return self.polygon_list(e)
        fail("REGION is not supported; write POINT, CIRCLE, BOX or POLYGON", e)

    def geometry_function(self, f: ast.FunctionCall) -> str:
        name = f.name
        if name in ("CONTAINS", "INTERSECTS"):
            return f"CAST({self.region_test(f, positive=True, comparison=None)} AS INTEGER)"
        if name == "DISTANCE":
            x1, y1 = self.point_components(f.args[0])
            x2, y2 = self.point_components(f.args[1])
            return f"adql_distance({x1}, {y1}, {x2}, {y2})"
        if name in ("COORD1", "COORD2"):
            x, y = self.point_components(f.args[0])
            return x if name == "COORD1" else y
        if name == "COORDSYS":
            g = f.args[0]
            cs = getattr(g, "coordsys", None)
            return self.string(cs.value if isinstance(cs, ast.StringLiteral) else "ICRS")
        if name == "CENTROID":
            x, y = self.centroid_components(f)
            return f"[{x}, {y}]::DOUBLE[]"
        if name == "AREA":
            g = f.args[0]
            circle = const_circle(g)
            if circle is not None:
                return fmt_number(sphere.circle_area(circle[2]))
            shape = const_polygon(g)
            if shape is not None:
                return fmt_number(sphere.polygon_area(shape))
            if geometry_kind(g) == "circle":
                return f"adql_cap_area({self.circle_components(g)[2]})"
            fail("AREA is supported for circles and constant polygons only", f)
        fail(f"{name} is not supported", f)

    def region_test(
        self, call: ast.FunctionCall, *, positive: bool, comparison: ast.Comparison | None
    ) -> str:
        test = self._region_test(call)
        return test if positive else f"NOT ({test})"

    def _region_test(self, call: ast.FunctionCall) -> str:
        for index, arg in enumerate(call.args):
            if geometry_kind(arg) == "region":
                return self.stcs_region_test(call, index)
        a, b = call.args
        ka, kb = geometry_kind(a), geometry_kind(b)
        if call.name == "INTERSECTS" and kb == "point" and ka != "point":
            a, b, ka, kb = b, a, kb, ka
        if ka == "point" and kb == "circle":
            return self.point_in_circle(a, b)
        if ka == "point" and kb == "polygon":
            return self.point_in_polygon(a, b)
        if ka == "circle" and kb == "polygon" and call.name == "INTERSECTS":
            return self.circle_meets_polygon(a, b)
        if ka == "polygon" and kb == "circle" and call.name == "INTERSECTS":
            return self.circle_meets_polygon(b, a)
        if ka == "polygon" and kb == "circle":  # CONTAINS(polygon, circle)
            x, y, r = self.circle_components(b)
            tests = [f"adql_cpoly_in_circle({v}, {x}, {y}, {r})" for v in self.convex_lists(a)]
            return "(" + " AND ".join(tests) + ")"
        if ka == "circle" and kb == "circle":
            x1, y1, r1 = self.circle_components(a)
            x2, y2, r2 = self.circle_components(b)
            dist = f"adql_distance({x1}, {y1}, {x2}, {y2})"
            if call.name == "CONTAINS":
                return f"({dist} + {r1} <= {r2})"
            return f"({dist} <= {r1} + {r2})"
        fail(
            f"{call.name} of a {ka or 'value'} and a {kb or 'value'} is not supported; "
            "supported are a POINT in any region, two CIRCLEs, a CIRCLE intersecting a "
            "POLYGON or BOX, and a POLYGON or BOX contained in a CIRCLE",
            call,
        )

    def stcs_region_test(self, call: ast.FunctionCall, index: int) -> str:
        """The test with an STC-S region string (a column typed ``adql:REGION``) as operand.

        The string is parsed once per row (``adql_stcs``, bound by a one-element
        ``list_transform``: a macro argument used many times would be parsed as many times),
        then the test for a POLYGON or for a CIRCLE runs on its numbers.  A NULL region gives
        NULL; any other shape (BOX, UNION, ...) or a malformed one stops the query with an error
        naming the value, rather than silently matching nothing.
        """
        var = f"adql_r{index}"
        tests: dict[str, str] = {}
        for shape, typ in (("POLYGON", t.POLYGON), ("CIRCLE", t.CIRCLE)):
            args = list(call.args)
            args[index] = _Rendered(sql=f"{var}.v", type_=typ, pos=call.args[index].pos)
            try:
                tests[shape] = self._region_test(replace(call, args=tuple(args)))
            except AdqlUnsupportedError as e:
                raise AdqlUnsupportedError(
                    f"{e.message} (the region column holds STC-S POLYGON and CIRCLE strings; "
                    "each shape must be supported)",
                    line=e.line,
                    column=e.column,
                ) from e
        region = self.expr(call.args[index])
        message = self.string(f"{call.name}: not an STC-S POLYGON or CIRCLE: ")
        return (
            f"list_transform([adql_stcs({region})], lambda {var}: CASE"
            f" WHEN {var}.shape IS NULL THEN NULL"
            f" WHEN {var}.shape = 'POLYGON' AND len({var}.v) >= 6 AND len({var}.v) % 2 = 0"
            f" THEN {tests['POLYGON']}"
            f" WHEN {var}.shape = 'CIRCLE' AND len({var}.v) = 3 THEN {tests['CIRCLE']}"
            f" ELSE error({message} || left({region}, 80)) END)[1]"
        )

    def convex_lists(self, polygon: ast.Expr) -> list[str]:
        """DALI lists of the convex parts of a polygon (one list unless it is constant)."""
        shape = const_polygon(polygon)
        if shape is None:
            return [self.polygon_list(polygon)]
        return [self.dali_list([c for v in part for c in v]) for part in shape.parts]

    def circle_meets_polygon(self, circle: ast.Expr, polygon: ast.Expr) -> str:
        x, y, r = self.circle_components(circle)
        tests = [f"adql_circle_meets_cpoly({x}, {y}, {r}, {v})" for v in self.convex_lists(polygon)]
        return tests[0] if len(tests) == 1 else "(" + " OR ".join(tests) + ")"

    def prefilter(self, point: ast.Expr, cap: sphere.Cap) -> list[str]:
        """Sargable bounds on plain RA/Dec columns (nothing for computed coordinates)."""
        if not (
            isinstance(point, ast.Point)
            and isinstance(point.x, ast.ColumnRef)
            and isinstance(point.y, ast.ColumnRef)
        ):
            return []
        ra, dec = self.expr(point.x), self.expr(point.y)
        lo, hi = cap.dec_range()
        out = [f"{dec} BETWEEN {fmt_number(lo)} AND {fmt_number(hi)}"]
        ranges = cap.ra_ranges()
        if ranges is not None:
            terms = [f"{ra} BETWEEN {fmt_number(a)} AND {fmt_number(b)}" for a, b in ranges]
            out.append(terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")")
        return out

    def point_in_circle(self, point: ast.Expr, circle: ast.Expr) -> str:
        x, y = self.point_components(point)
        c = const_circle(circle)
        if c is not None:
            if c[2] < 0:
                return "FALSE"
            exact = (
                f"adql_pt_in_circle({x}, {y}, {fmt_number(c[0])}, {fmt_number(c[1])}, "
                f"{fmt_number(c[2])})"
            )
            pre = self.prefilter(point, sphere.Cap(c[0], c[1], min(c[2], 180.0)))
            return "(" + " AND ".join([*pre, exact]) + ")"
        cx, cy, r = self.circle_components(circle)
        exact = f"adql_pt_in_circle({x}, {y}, {cx}, {cy}, {r})"
        radius = const_value(circle.radius) if isinstance(circle, ast.Circle) else None
        if radius is None or not 0 <= radius < 90:
            return exact
        # A declination band is implied by the angular test; with a constant radius it lets
        # DuckDB run a cross-match as a range join instead of testing every pair.
        band = fmt_number(radius + sphere.PREFILTER_MARGIN_DEG)
        return f"({y} BETWEEN {cy} - {band} AND {cy} + {band} AND {exact})"

    def comparison(self, c: ast.Comparison) -> str:
        text = super().comparison(c)
        band = self.distance_band(c)
        return f"({band} AND {text})" if band else text

    def distance_band(self, c: ast.Comparison) -> str | None:
        """``DISTANCE(p1, p2) < r`` (constant r) implies ``|dec1 - dec2| <= r``: said in SQL,
        it lets DuckDB run a cross-match (an upload joined with a catalog) as a range join
        instead of computing the distance of every pair."""
        if c.op in ("<", "<="):
            call, bound = c.left, c.right
        elif c.op in (">", ">="):
            call, bound = c.right, c.left
        else:
            return None
        if not (isinstance(call, ast.FunctionCall) and call.name == "DISTANCE"):
            return None
        if len(call.args) != 2:
            return None
        radius = const_value(bound)
        if radius is None or not 0 <= radius < 90:
            return None
        _, y1 = self.point_components(call.args[0])
        _, y2 = self.point_components(call.args[1])
        if _is_number(y1) or _is_number(y2):
            return None  # a cone search: its CONTAINS form is the one the prefilter serves
        band = fmt_number(radius + sphere.PREFILTER_MARGIN_DEG)
        return f"{y1} BETWEEN {y2} - {band} AND {y2} + {band}"

    def point_in_polygon(self, point: ast.Expr, polygon: ast.Expr) -> str:
        x, y = self.point_components(point)
        shape = const_polygon(polygon)
        if shape is None:
            return f"adql_pt_in_cpoly({x}, {y}, {self.polygon_list(polygon)})"
        parts = []
        for part in shape.parts:
            edges = [
                f"adql_edge({x}, {y}, {fmt_number(a[0])}, {fmt_number(a[1])}, "
                f"{fmt_number(b[0])}, {fmt_number(b[1])})"
                for a, b in zip(part, (*part[1:], part[0]), strict=True)
            ]
            parts.append("(" + " AND ".join(edges) + ")")
        exact = parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
        pre = self.prefilter(point, shape.bound)
        return "(" + " AND ".join([*pre, exact]) + ")"
