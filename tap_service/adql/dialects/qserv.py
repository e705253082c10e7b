"""The Qserv dialect: MySQL syntax, scisql UDFs for geometry, and Qserv's restrictions.

What Qserv cannot run is refused here, before anything is sent, with the position and what to
write instead.  Sources (Qserv user guide, lsst/qserv ``doc/user/index.rst``, sections
"Restrictions" and "Extensions"): sub-queries are not supported; expressions and functions in
ORDER BY are rejected (order by a select-list alias instead); columns used in ORDER BY must be
listed in SELECT; only one spatial constraint, at the very beginning of WHERE, with literal
arguments and no OR right after it; outer joins are not supported with near-neighbour
queries.  The project design notes add what Qserv's SQL92-based parser does not accept: set
operations, WITH, OFFSET, CAST, COUNT(DISTINCT ...).

Spatial restriction (lsst/qserv ``qana/QservRestrictorPlugin.cc``,
``extractSingleScisqlAreaFunc``): a function whose name starts with ``scisql_s2Pt`` on either
side of an ``=`` in the top-level AND of WHERE becomes the chunk restrictor, whatever the other
side is; with two such terms there is no restriction at all, and a non-literal argument also
disables it.  So the first qualifying ``CONTAINS(POINT(col, col), <constant CIRCLE/BOX/convex
POLYGON>) = 1`` conjunct is moved first and rendered ``= 1``; every other region test is
rendered ``<> 0`` (true) or ``<> 1`` (false), which Qserv evaluates per row without touching
the restriction.  In particular ``0 = CONTAINS(...)`` must never be written with ``=``: Qserv
would restrict to the chunks of the region while the rows wanted lie outside it.  A cross-match
(point and circle centre from two tables, constant radius) becomes ``scisql_angSep(...) <= r``,
the near-neighbour form Qserv plans (user guide, "Find near neighbors").
BOX becomes the 4-vertex polygon of ``sphere.box_vertices`` (great-circle edges, ADQL's
definition) rather than ``scisql_s2PtInBox`` (a longitude/latitude rectangle).  Non-convex
polygons become an OR of convex parts (then they cannot restrict chunks).

MySQL details: ``||`` is logical OR there, so concatenation is CONCAT; string literals escape
backslashes; ``/`` between integers would give a 4-decimal DECIMAL, so one operand is promoted
to DOUBLE.  MySQL's default collations compare case-insensitively while ADQL string comparison
is case-sensitive.  The usual cures (``BINARY x``, ``x COLLATE utf8mb4_bin``) are rejected by
Qserv's parser (``ccontrol/ParseListener.cc`` lists BinaryExpressionAtom and
CollateExpressionAtom as UNHANDLED), so one operand of ``=``, ``<>``, ``<``, ``LIKE`` and ``IN``
on strings becomes the binary string ``UNHEX(HEX(x))``: MySQL then compares byte by byte, which
is case-sensitive, and Qserv parses it as ordinary function calls.  (Known difference: ``_`` in a
LIKE pattern then matches one byte, not one non-ASCII character.)  The same file lists
UnaryExpressionAtom as UNHANDLED (a sign is only accepted as part of a numeric literal), so
``-x`` is written ``(0 - x)``, and TableSourceNested, so right-nested joins are refused.
NATURAL JOIN parses in Qserv but is refused here: physical chunk tables carry columns that
TAP_SCHEMA does not show (``chunkId``, ``subChunkId``), and NATURAL would join on them too.
"""

from __future__ import annotations

from collections.abc import Iterable

from tap_service.adql import ast, sphere
from tap_service.adql.catalog import UserFunction
from tap_service.adql.checked import CheckedQuery
from tap_service.adql.dialects.base import (
    Renderer,
    const_circle,
    const_polygon,
    fail,
    fmt_number,
    geometry_kind,
    predicate_parts,
)
from tap_service.adql.rewrite import const_value

_MATH = {
    "ABS": "ABS",
    "CEILING": "CEILING",
    "DEGREES": "DEGREES",
    "EXP": "EXP",
    "FLOOR": "FLOOR",
    "LOG": "LN",
    "LOG10": "LOG10",
    "PI": "PI",
    "POWER": "POWER",
    "RADIANS": "RADIANS",
    "SQRT": "SQRT",
    "ACOS": "ACOS",
    "ASIN": "ASIN",
    "ATAN": "ATAN",
    "ATAN2": "ATAN2",
    "COS": "COS",
    "COT": "COT",
    "SIN": "SIN",
    "TAN": "TAN",
    "LOWER": "LOWER",
    "UPPER": "UPPER",
    "COALESCE": "COALESCE",
    "MOD": "MOD",
    "RAND": "RAND",
}

_FLOATING = frozenset({"float", "double"})


def _bytes(sql: str) -> str:
    """``sql`` as a binary string, so that MySQL compares it byte by byte (case-sensitively)."""
    return f"UNHEX(HEX({sql}))"


def _is_string(e: ast.Expr) -> bool:
    return e.type_ is not None and e.type_.is_string


# MySQL/MariaDB names: at most 64 characters, from the Basic Multilingual Plane (utf8mb3);
# a delimited alias outside that is refused here rather than failing in the database.
MAX_NAME_LENGTH = 64


def _check_mysql_name(name: ast.Identifier) -> None:
    text = name.name
    if len(text) > MAX_NAME_LENGTH:
        fail(f"names are limited to {MAX_NAME_LENGTH} characters on Qserv", name)
    if any(ord(ch) > 0xFFFF for ch in text) or text != text.rstrip(" "):
        fail(
            "this name cannot be used on Qserv (no characters beyond U+FFFF, no trailing "
            "spaces); choose a plainer alias",
            name,
        )


class QservRenderer(Renderer):
    dialect = "qserv"

    def __init__(self, checked: CheckedQuery, functions: Iterable[UserFunction] = ()) -> None:
        super().__init__(checked, functions)
        self._restrictor: ast.Comparison | None = None

    # ------------------------------------------------------------------ refusals

    def validate(self, query: ast.Query) -> None:
        super().validate(query)
        for node in ast.walk(query):
            if isinstance(node, ast.Identifier) and node.delimited:
                _check_mysql_name(node)
        self._check_query(query, top=True)

    def _check_query(self, q: ast.Query, *, top: bool) -> None:
        if not top:
            fail(
                "subqueries are not supported by Qserv; run the inner query first and use "
                "its results as constants (or upload them as a table and join)",
                q,
            )
        if q.with_:
            fail(
                "WITH (common table expressions) is not supported by Qserv; "
                "write the query without WITH",
                q.with_[0],
            )
        if q.offset is not None:
            fail(
                "OFFSET is not supported by Qserv; use TOP with a WHERE condition on the "
                "ORDER BY column to page through results",
                q,
            )
        if not isinstance(q.body, ast.SelectQuery):
            node: ast.Node = q.body
            fail(
                "UNION, EXCEPT and INTERSECT are not supported by Qserv; run the queries "
                "separately and combine the results",
                node,
            )
        select = q.body
        for node in ast.walk(select):
            self._check_node(node)
        for item in select.items:
            if isinstance(item, ast.SelectItem):
                kind = geometry_kind(item.expr)
                if (kind is not None and kind != "region") or isinstance(item.expr, ast.Region):
                    fail(
                        "geometry values (POINT, CIRCLE, BOX, POLYGON) cannot be selected on "
                        "Qserv; select the coordinate columns (e.g. ra, dec) or "
                        "COORD1/COORD2 instead",
                        item.expr,
                    )
        self._check_order_by(q, select)
        self._check_group_by(select)

    def _check_node(self, node: ast.Node) -> None:
        if isinstance(node, ast.ScalarSubquery | ast.InSubquery | ast.Exists | ast.DerivedTable):
            fail(
                "subqueries are not supported by Qserv; run the inner query first and use "
                "its results as constants (or upload them as a table and join)",
                node,
            )
        if isinstance(node, ast.Join):
            if isinstance(node.right, ast.Join):
                fail(
                    "nested joins in parentheses are not supported by Qserv; write the joins "
                    "one after the other (a JOIN b ON ... JOIN c ON ...)",
                    node.right,
                )
            if node.kind != "INNER":
                fail(
                    f"{node.kind} OUTER JOIN is not supported by Qserv; use an inner JOIN ... "
                    "ON (rows without a match are then left out)",
                    node,
                )
            if node.natural:
                fail(
                    "NATURAL JOIN is not supported by Qserv; write JOIN ... USING (col) or "
                    "JOIN ... ON a.col = b.col",
                    node,
                )
        if isinstance(node, ast.Cast):
            fail(
                "CAST is not supported by Qserv; select the column as stored and convert "
                "the values on the client side",
                node,
            )
        if isinstance(node, ast.Aggregate) and node.quantifier == "DISTINCT":
            fail(
                f"{node.func}(DISTINCT ...) is not supported by Qserv; select the DISTINCT "
                "values and aggregate them on the client side",
                node,
            )

    def _check_order_by(self, q: ast.Query, select: ast.SelectQuery) -> None:
        selected: set[tuple[str, str]] = set()
        aliases: set[str] = set()
        for item in select.items:
            if isinstance(item, ast.SelectItem):
                if item.alias is not None:
                    aliases.add(item.alias.name.lower())
                e = item.expr
                if isinstance(e, ast.ColumnRef) and e.binding is not None:
                    selected.add((e.binding.range_name, e.binding.column))
        for o in q.order_by:
            e = o.expr
            if isinstance(e, ast.NumericLiteral) and e.is_integer:
                continue
            if not isinstance(e, ast.ColumnRef):
                fail(
                    "Qserv accepts only columns in ORDER BY; give the expression an alias in "
                    "the select list (... AS x) and ORDER BY x",
                    e,
                )
            if e.binding is None or e.binding.range_name == "":
                continue  # a select-list alias
            if (e.binding.range_name, e.binding.column) not in selected and not (
                not e.qualifier and e.name.name.lower() in aliases
            ):
                fail(
                    f"Qserv requires ORDER BY columns to appear in the select list; "
                    f"add {e.name.name} to the SELECT",
                    e,
                )

    def _check_group_by(self, select: ast.SelectQuery) -> None:
        # Qserv user guide: "Column(s) used in ORDER BY or GROUP BY must appear in SELECT".
        selected = {
            (i.expr.binding.range_name, i.expr.binding.column)
            for i in select.items
            if isinstance(i, ast.SelectItem)
            and isinstance(i.expr, ast.ColumnRef)
            and i.expr.binding is not None
        }
        for g in select.group_by:
            if isinstance(g, ast.ColumnRef):
                b = g.binding
                if b is None or b.range_name == "" or (b.range_name, b.column) in selected:
                    continue
                fail(
                    f"Qserv requires GROUP BY columns to appear in the select list; "
                    f"add {g.name.name} to the SELECT",
                    g,
                )
            else:
                fail(
                    "Qserv accepts only columns in GROUP BY; give the expression an alias in "
                    "the select list and GROUP BY the alias",
                    g,
                )

    # ------------------------------------------------------------------ lexical

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def string(self, value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"

    def order_item(self, item: ast.OrderItem) -> str:
        e = item.expr
        if isinstance(e, ast.ColumnRef) and e.binding is not None:
            # Qserv resolves ORDER BY against the select list: use the output alias.
            for i, sel in enumerate(self._top_items()):
                if (
                    isinstance(sel.expr, ast.ColumnRef)
                    and sel.expr.binding is not None
                    and (sel.expr.binding.range_name, sel.expr.binding.column)
                    == (e.binding.range_name, e.binding.column)
                    and i < len(self.checked.columns)
                ):
                    text = self.quote(self.checked.columns[i].name)
                    return text + (" DESC" if item.descending else " ASC")
        return super().order_item(item)

    def _top_items(self) -> list[ast.SelectItem]:
        body = self.checked.query.body
        if isinstance(body, ast.SelectQuery):
            return [i for i in body.items if isinstance(i, ast.SelectItem)]
        return []

    # ------------------------------------------------------------------ WHERE and restrictor

    def where(self, cond: ast.Condition) -> str:
        conjuncts = _flatten_and(cond)
        restrictor = next((c for c in conjuncts if self._is_restrictor(c)), None)
        if restrictor is not None:
            assert isinstance(restrictor, ast.Comparison)
            self._restrictor = restrictor
            conjuncts = [restrictor, *(c for c in conjuncts if c is not restrictor)]
        rendered = []
        for c in conjuncts:
            text = self.cond(c)
            rendered.append(f"({text})" if isinstance(c, ast.Or) else text)
        return " AND ".join(rendered)

    def _is_restrictor(self, c: ast.Condition) -> bool:
        if not isinstance(c, ast.Comparison):
            return False
        call, positive = predicate_parts(c)
        if call is None or not positive:
            return False
        point, region = self._point_region(call)
        if point is None or region is None:
            return False
        if not (
            isinstance(point, ast.Point)
            and isinstance(point.x, ast.ColumnRef)
            and isinstance(point.y, ast.ColumnRef)
        ):
            return False
        if const_circle(region) is not None:
            return True
        shape = const_polygon(region)
        return shape is not None and shape.convex

    @staticmethod
    def _point_region(call: ast.FunctionCall) -> tuple[ast.Expr | None, ast.Expr | None]:
        a, b = call.args
        ka, kb = geometry_kind(a), geometry_kind(b)
        if call.name == "INTERSECTS" and kb == "point" and ka in ("circle", "polygon"):
            a, b, ka, kb = b, a, kb, ka
        if ka == "point" and kb in ("circle", "polygon"):
            return a, b
        return None, None

    def region_test(
        self, call: ast.FunctionCall, *, positive: bool, comparison: ast.Comparison | None
    ) -> str:
        near = self._near_neighbour(call)
        if near is not None:
            return f"{near[0]} <= {near[1]}" if positive else f"{near[0]} > {near[1]}"
        calls = self._scisql_calls(call)
        if comparison is not None and comparison is self._restrictor:
            return f"{calls[0]} = 1"
        if len(calls) == 1:
            return f"{calls[0]} <> 0" if positive else f"{calls[0]} <> 1"
        if positive:
            return "(" + " OR ".join(f"{c} = 1" for c in calls) + ")"
        return "(" + " AND ".join(f"{c} <> 1" for c in calls) + ")"

    def _near_neighbour(self, call: ast.FunctionCall) -> tuple[str, str] | None:
        """A cross-match written the way Qserv plans it: ``scisql_angSep(...) <= r``.

        Qserv recognises near-neighbour joins by ``scisql_angSep`` between the partitioning
        columns of two tables compared to a constant (user guide, "Find near neighbors");
        ``scisql_s2PtInCircle`` with column arguments would not be planned as one.
        """
        point, region = self._point_region(call)
        if not (isinstance(point, ast.Point) and isinstance(region, ast.Circle)):
            return None
        center, radius = region.center, const_value(region.radius)
        if radius is None or not isinstance(center, ast.Point):
            return None
        cols = [point.x, point.y, center.x, center.y]
        if not all(isinstance(c, ast.ColumnRef) and c.binding is not None for c in cols):
            return None
        ranges = {c.binding.range_name for c in cols if isinstance(c, ast.ColumnRef) and c.binding}
        if len(ranges) < 2:
            return None
        x, y = self.point_components(point)
        cx, cy = self.point_components(center)
        return f"scisql_angSep({x}, {y}, {cx}, {cy})", fmt_number(radius)

    def _scisql_calls(self, call: ast.FunctionCall) -> list[str]:
        for arg in call.args:
            if geometry_kind(arg) == "region":
                fail(
                    f"{call.name} on a region stored as an STC-S string (xtype adql:REGION, "
                    "such as ObsCore's s_region) is not supported by Qserv: scisql tests a point "
                    "against a CIRCLE, BOX or POLYGON written in the query only; test the "
                    "centre instead (in ObsCore: CONTAINS(POINT(s_ra, s_dec), CIRCLE(...)) = 1)",
                    arg,
                )
        point, region = self._point_region(call)
        if point is None or region is None:
            kinds = " and ".join(geometry_kind(a) or "value" for a in call.args)
            fail(
                f"{call.name} of {kinds} is not supported by Qserv (scisql tests points "
                "only); write CONTAINS(POINT(ra, dec), CIRCLE/BOX/POLYGON(...)) = 1",
                call,
            )
        x, y = self.point_components(point)
        circle = const_circle(region)
        if circle is not None:
            args = ", ".join(fmt_number(v) for v in circle)
            return [f"scisql_s2PtInCircle({x}, {y}, {args})"]
        if isinstance(region, ast.Circle):
            cx, cy = self.point_components(region.center)
            return [f"scisql_s2PtInCircle({x}, {y}, {cx}, {cy}, {self.expr(region.radius)})"]
        shape = const_polygon(region)
        if shape is not None:
            return [
                f"scisql_s2PtInCPoly({x}, {y}, "
                + ", ".join(f"{fmt_number(lo)}, {fmt_number(la)}" for lo, la in part)
                + ")"
                for part in shape.parts
            ]
        if isinstance(region, ast.Polygon):
            if len(region.vertices) > sphere.MAX_QSERV_VERTICES:
                fail("scisql polygons have at most 20 vertices", region)
            coords = [c for v in region.vertices for c in self.point_components(v)]
            return [f"scisql_s2PtInCPoly({x}, {y}, {', '.join(coords)})"]
        fail(
            "on Qserv the region must be a CIRCLE, a constant BOX or a POLYGON written in "
            "the query",
            region,
        )

    def point_components(self, e: ast.Expr) -> tuple[str, str]:
        if isinstance(e, ast.Point):
            return self.expr(e.x), self.expr(e.y)
        fail("on Qserv a point must be written POINT(ra, dec)", e)

    # ------------------------------------------------------------------ strings

    def comparison(self, c: ast.Comparison) -> str:
        geo = self.geometry_predicate(c)
        if geo is not None:
            return geo
        left, right = self.expr(c.left), self.expr(c.right)
        if _is_string(c.left) or _is_string(c.right):
            left = _bytes(left)
        return f"{left} {c.op} {right}"

    def like(self, c: ast.Like) -> str:
        neg = "NOT " if c.negated else ""
        pattern = self.expr(c.pattern)
        if isinstance(c.pattern, ast.StringLiteral):
            # MySQL's LIKE treats backslash as its default escape character; ADQL has no
            # escape character, so a backslash in an ADQL pattern is itself (doubled here).
            pattern = self.string(c.pattern.value.replace("\\", "\\\\"))
        if c.case_insensitive:
            return f"LOWER({self.expr(c.operand)}) {neg}LIKE LOWER({pattern})"
        return f"{_bytes(self.expr(c.operand))} {neg}LIKE {pattern}"

    def cond(self, c: ast.Condition) -> str:
        if isinstance(c, ast.InList) and (
            _is_string(c.operand) or any(_is_string(i) for i in c.items)
        ):
            neg = "NOT " if c.negated else ""
            items = ", ".join(self.expr(i) for i in c.items)
            return f"{_bytes(self.expr(c.operand))} {neg}IN ({items})"
        return super().cond(c)

    def concat(self, e: ast.BinaryOp) -> str:
        parts: list[str] = []

        def collect(x: ast.Expr) -> None:
            if isinstance(x, ast.BinaryOp) and x.op == "||":
                collect(x.left)
                collect(x.right)
            else:
                parts.append(self.expr(x))

        collect(e)
        return "CONCAT(" + ", ".join(parts) + ")"

    # ------------------------------------------------------------------ numbers

    def expr(self, e: ast.Expr) -> str:
        if isinstance(e, ast.UnaryOp) and not isinstance(e.operand, ast.NumericLiteral):
            inner = self.expr(e.operand)
            if isinstance(e.operand, ast.BinaryOp):
                inner = f"({inner})"
            return inner if e.op == "+" else f"(0 - {inner})"
        return super().expr(e)

    def divide(self, e: ast.BinaryOp, left: str, right: str) -> str:
        floating = any(
            (x.type_ is not None and x.type_.datatype in _FLOATING)
            or (isinstance(x, ast.NumericLiteral) and "e" in x.text.lower())
            for x in (e.left, e.right)
        )
        if floating:
            return f"{left} / {right}"
        return f"{left} * 1e0 / {right}"

    def math_function(self, f: ast.FunctionCall) -> str:
        args = [self.expr(a) for a in f.args]
        if f.name in ("ROUND", "TRUNCATE"):
            digits = args[1] if len(args) > 1 else "0"
            return f"{f.name}({args[0]}, {digits})"
        return f"{_MATH[f.name]}({', '.join(args)})"

    def cast(self, c: ast.Cast) -> str:
        fail("CAST is not supported by Qserv", c)

    # ------------------------------------------------------------------ geometry functions

    def geometry_value(self, e: ast.Expr) -> str:
        fail(
            "geometry values cannot be used here on Qserv; use them only inside CONTAINS, "
            "INTERSECTS, DISTANCE, COORD1/COORD2 or AREA",
            e,
        )

    def geometry_function(self, f: ast.FunctionCall) -> str:
        name = f.name
        if name in ("CONTAINS", "INTERSECTS"):
            calls = self._scisql_calls(f)
            return calls[0] if len(calls) == 1 else "GREATEST(" + ", ".join(calls) + ")"
        if name == "DISTANCE":
            x1, y1 = self.point_components(f.args[0])
            x2, y2 = self.point_components(f.args[1])
            return f"scisql_angSep({x1}, {y1}, {x2}, {y2})"
        if name in ("COORD1", "COORD2"):
            x, y = self.point_components(f.args[0])
            return x if name == "COORD1" else y
        if name == "COORDSYS":
            cs = getattr(f.args[0], "coordsys", None)
            return self.string(cs.value if isinstance(cs, ast.StringLiteral) else "ICRS")
        if name == "AREA":
            g = f.args[0]
            circle = const_circle(g)
            if circle is not None:
                return fmt_number(sphere.circle_area(circle[2]))
            shape = const_polygon(g)
            if shape is not None:
                return fmt_number(sphere.polygon_area(shape))
            fail("AREA on Qserv needs a constant CIRCLE, BOX or POLYGON", f)
        fail(
            f"{name} is not supported by Qserv; compute it from the coordinates on the client side",
            f,
        )


def _flatten_and(c: ast.Condition) -> list[ast.Condition]:
    if isinstance(c, ast.And):
        return [*_flatten_and(c.left), *_flatten_and(c.right)]
    return [c]
