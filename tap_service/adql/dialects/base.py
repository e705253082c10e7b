"""The renderer shared by every backend: checked ADQL tree in, one SQL statement out.

Dialects subclass ``Renderer`` and override the hooks that differ (identifier quoting, string
literals, functions, geometry, what must be refused).  Rendering is a pure function of the
checked tree; refusals raise ``AdqlUnsupportedError`` before any SQL is produced, so nothing
half-translated ever reaches a database.

Naming rules, relied on by the service and by derived tables:
* tables render as ``physical_schema.physical_name AS range_name`` from ``TableRef.binding``;
* columns render as ``range_name.column`` from ``ColumnRef.binding``;
* every select item carries an alias: the checker's output name at the top level (so result
  columns are named exactly as the VOTable FIELDs), and the name the checker will use for
  references from outside for derived tables and common table expressions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar, NoReturn

from tap_service.adql import ast, sphere
from tap_service.adql.catalog import UserFunction
from tap_service.adql.checked import CheckedQuery
from tap_service.adql.errors import AdqlUnsupportedError
from tap_service.adql.rewrite import const_value

_PREC = {"||": 0, "+": 1, "-": 1, "*": 2, "/": 2}

ACCEPTED_COORDSYS = frozenset({"", "ICRS", "ICRS GEOCENTER", "J2000", "FK5", "UNKNOWNFRAME"})
"""Coordinate systems treated as ICRS.  ADQL 2.1 deprecates the argument; FK5/J2000 differ
from ICRS by tens of milliarcseconds, below what a TAP cone search distinguishes."""

GEOMETRY_FUNCTIONS = frozenset(
    {"AREA", "CENTROID", "CONTAINS", "INTERSECTS", "COORD1", "COORD2", "COORDSYS", "DISTANCE"}
)


def fail(message: str, node: ast.Node | None) -> NoReturn:
    """Raise the dialect refusal, positioned at ``node`` when its position is known."""
    pos = node.pos if node is not None else None
    raise AdqlUnsupportedError(
        message, line=pos.line if pos else None, column=pos.column if pos else None
    )


def fmt_number(value: float) -> str:
    """A numeric literal for a computed geometry constant; ``repr`` round-trips exactly.

    Integral values print as integers so that the common case stays readable (``62``).
    """
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Renderer:
    """Render one checked query.  Instances are single-use and cheap."""

    dialect: ClassVar[str] = "base"

    def __init__(self, checked: CheckedQuery, functions: Iterable[UserFunction] = ()) -> None:
        self.checked = checked
        self.functions: Mapping[str, UserFunction] = {f.name.lower(): f for f in functions}

    # ------------------------------------------------------------------ entry point

    def render(self) -> str:
        query = self.checked.query
        self.validate(query)
        names = [c.name for c in self.checked.columns]
        return self.query(query, names)

    def validate(self, query: ast.Query) -> None:
        """Refuse what this backend cannot run (before rendering anything)."""
        for node in ast.walk(query):
            if isinstance(node, ast.Region):
                fail(
                    "REGION is not supported: write the shape with POINT, CIRCLE, BOX or POLYGON",
                    node,
                )
            for coordsys in self._coordsys_of(node):
                if coordsys.value.strip().upper() not in ACCEPTED_COORDSYS:
                    fail(
                        f"coordinate system {coordsys.value!r} is not supported: this service does "
                        "not transform coordinates; give ICRS coordinates with 'ICRS' or ''",
                        coordsys if coordsys.pos else node,
                    )

    @staticmethod
    def _coordsys_of(node: ast.Node) -> list[ast.StringLiteral]:
        if isinstance(node, ast.Point | ast.Circle | ast.Box | ast.Polygon):
            return [node.coordsys] if node.coordsys is not None else []
        return []

    # ------------------------------------------------------------------ lexical

    def quote(self, name: str) -> str:
        raise NotImplementedError

    def string(self, value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def qualified(self, *parts: str) -> str:
        return ".".join(self.quote(p) for p in parts)

    # ------------------------------------------------------------------ queries

    def query(self, q: ast.Query, names: Sequence[str | None] | None = None) -> str:
        parts: list[str] = []
        if q.with_:
            parts.append(self.with_clause(q.with_))
        body = q.body
        order = self.order_by(q.order_by) if q.order_by else ""
        if isinstance(body, ast.SelectQuery):
            parts.append(self.select(body, names, order=order, offset=q.offset))
            return " ".join(parts)
        if isinstance(body, ast.SetOperation):
            parts.append(self.set_operation(body, names))
        else:
            parts.append("(" + self.query(body, names) + ")")
        if order:
            parts.append(order)
        parts.append(self.limit_offset(None, q.offset))
        return " ".join(p for p in parts if p)

    def with_clause(self, ctes: Sequence[ast.CommonTableExpr]) -> str:
        rendered = []
        for c in ctes:
            inner = self.query(c.query, self.inner_names(c.query))
            rendered.append(f"{self.quote(self.cte_name(c.name))} AS ({inner})")
        return "WITH " + ", ".join(rendered)

    @staticmethod
    def cte_name(ident: ast.Identifier) -> str:
        return ident.name if ident.delimited else ident.name.lower()

    def set_operation(self, s: ast.SetOperation, names: Sequence[str | None] | None) -> str:
        left = self.set_operand(s.left, names)
        right = self.set_operand(s.right, None)
        op = s.op + (" ALL" if s.all else "")
        return f"{left} {op} {right}"

    def set_operand(self, body: ast.QueryBody, names: Sequence[str | None] | None) -> str:
        if isinstance(body, ast.SelectQuery):
            text = self.select(body, names, order="", offset=None)
            return f"({text})" if body.top is not None else text
        if isinstance(body, ast.SetOperation):
            return "(" + self.set_operation(body, names) + ")"
        return "(" + self.query(body, names) + ")"

    def inner_names(self, q: ast.Query) -> list[str | None]:
        """Output names of a nested query, matching how the checker binds outside references."""
        body = q.body
        while not isinstance(body, ast.SelectQuery):
            body = body.left if isinstance(body, ast.SetOperation) else body.body
        out: list[str | None] = []
        for item in body.items:
            if isinstance(item, ast.Star):
                out.append(None)
            elif item.alias is not None:
                out.append(item.alias.name)
            elif isinstance(item.expr, ast.ColumnRef):
                ref = item.expr
                out.append(ref.binding.info.name if ref.binding else ref.name.name)
            else:
                out.append(None)
        return out

    def select(
        self,
        s: ast.SelectQuery,
        names: Sequence[str | None] | None,
        *,
        order: str,
        offset: int | None,
    ) -> str:
        parts = ["SELECT"]
        if any(isinstance(i, ast.Star) for i in s.items):
            names = None  # an unexpanded star (no catalog): positions no longer line up
        if s.quantifier == "DISTINCT":
            parts.append("DISTINCT")
        items: list[str] = []
        for i, item in enumerate(s.items):
            if isinstance(item, ast.Star):
                items.append(self.star(item))
                continue
            name = names[i] if names is not None and i < len(names) else None
            if name is None and item.alias is not None:
                name = item.alias.name
            text = self.select_value(item.expr)
            items.append(f"{text} AS {self.quote(name)}" if name is not None else text)
        parts.append(", ".join(items))
        if s.from_:
            parts.append("FROM " + ", ".join(self.from_item(f) for f in s.from_))
        if s.where is not None:
            parts.append("WHERE " + self.where(s.where))
        if s.group_by:
            parts.append("GROUP BY " + ", ".join(self.group_item(g) for g in s.group_by))
        if s.having is not None:
            parts.append("HAVING " + self.cond(s.having))
        if order:
            parts.append(order)
        lim = self.limit_offset(s.top, offset)
        if lim:
            parts.append(lim)
        return " ".join(parts)

    def star(self, item: ast.Star) -> str:
        if item.qualifier:
            return self.quote(item.qualifier[-1].name) + ".*"
        return "*"

    def select_value(self, expr: ast.Expr) -> str:
        """A select-list value (dialects turn geometry and truth values into data here)."""
        return self.expr(expr)

    def where(self, cond: ast.Condition) -> str:
        return self.cond(cond)

    def group_item(self, expr: ast.Expr) -> str:
        return self.expr(expr)

    def limit_offset(self, top: int | None, offset: int | None) -> str:
        parts = []
        if top is not None:
            parts.append(f"LIMIT {top}")
        if offset is not None:
            parts.append(f"OFFSET {offset}")
        return " ".join(parts)

    def order_by(self, items: Sequence[ast.OrderItem]) -> str:
        return "ORDER BY " + ", ".join(self.order_item(o) for o in items)

    def order_item(self, item: ast.OrderItem) -> str:
        e = item.expr
        if isinstance(e, ast.NumericLiteral) and e.is_integer:
            text = e.text
        elif isinstance(e, ast.ColumnRef) and e.binding is None and not e.qualifier:
            text = self.quote(e.name.name)  # a select-list alias
        else:
            text = self.expr(e)
        return text + (" DESC" if item.descending else " ASC")

    # ------------------------------------------------------------------ FROM clause

    def from_item(self, item: ast.FromItem) -> str:
        if isinstance(item, ast.TableRef):
            return self.table_ref(item)
        if isinstance(item, ast.DerivedTable):
            inner = self.query(item.query, self.inner_names(item.query))
            return f"({inner}) AS {self.quote(item.alias.name)}"
        return self.join(item)

    def table_ref(self, ref: ast.TableRef) -> str:
        b = ref.binding
        if b is None:
            text = self.qualified(*(i.name for i in ref.name))
            return text + (f" AS {self.quote(ref.alias.name)}" if ref.alias else "")
        if b.table is None:
            text = self.quote(self.cte_name(ref.name[-1]))
        elif b.table.sql_schema:
            text = self.qualified(b.table.sql_schema, b.table.sql_name)
        else:
            text = self.quote(b.table.sql_name)
        return f"{text} AS {self.quote(b.range_name)}"

    def join(self, j: ast.Join) -> str:
        left = self.from_item(j.left)
        right = self.from_item(j.right)
        if isinstance(j.right, ast.Join):
            right = f"({right})"
        kind = {
            "INNER": "JOIN",
            "LEFT": "LEFT OUTER JOIN",
            "RIGHT": "RIGHT OUTER JOIN",
            "FULL": "FULL OUTER JOIN",
        }[j.kind]
        if j.natural:
            kind = "NATURAL " + kind
        text = f"{left} {kind} {right}"
        if j.condition is not None:
            text += " ON " + self.cond(j.condition)
        elif j.using is not None:
            text += " USING (" + ", ".join(self.using_name(j, i) for i in j.using) + ")"
        elif not j.natural and j.kind == "INNER":
            text = f"{left} CROSS JOIN {right}"
        return text

    def using_name(self, j: ast.Join, ident: ast.Identifier) -> str:
        """The physical column name of a USING column (the same on both sides, or refused)."""
        names: set[str] = set()
        for side in (j.left, j.right):
            for ref in ast.walk(side):
                if isinstance(ref, ast.TableRef) and ref.binding and ref.binding.table:
                    col = ref.binding.table.column(ident.name, exact=ident.delimited)
                    if col is not None:
                        names.add(col.sql_name)
        if len(names) > 1:
            fail(
                f"USING ({ident.name}) joins columns stored under different names; "
                "write JOIN ... ON a.col = b.col instead",
                ident,
            )
        return self.quote(names.pop() if names else ident.name)

    # ------------------------------------------------------------------ conditions

    def cond(self, c: ast.Condition) -> str:
        if isinstance(c, ast.And):
            return f"{self._cond_operand(c.left, c)} AND {self._cond_operand(c.right, c)}"
        if isinstance(c, ast.Or):
            return f"{self._cond_operand(c.left, c)} OR {self._cond_operand(c.right, c)}"
        if isinstance(c, ast.Not):
            return f"NOT ({self.cond(c.operand)})"
        if isinstance(c, ast.Comparison):
            return self.comparison(c)
        if isinstance(c, ast.Between):
            neg = "NOT " if c.negated else ""
            return f"{self.expr(c.operand)} {neg}BETWEEN {self.expr(c.low)} AND {self.expr(c.high)}"
        if isinstance(c, ast.Like):
            return self.like(c)
        if isinstance(c, ast.InList):
            neg = "NOT " if c.negated else ""
            items = ", ".join(self.expr(i) for i in c.items)
            return f"{self.expr(c.operand)} {neg}IN ({items})"
        if isinstance(c, ast.InSubquery):
            neg = "NOT " if c.negated else ""
            inner = self.query(c.query, self.inner_names(c.query))
            return f"{self.expr(c.operand)} {neg}IN ({inner})"
        if isinstance(c, ast.IsNull):
            return f"{self.expr(c.operand)} IS {'NOT ' if c.negated else ''}NULL"
        if isinstance(c, ast.Exists):
            return f"EXISTS ({self.query(c.query, self.inner_names(c.query))})"
        fail(f"cannot translate condition {type(c).__name__}", c)

    def _cond_operand(self, child: ast.Condition, parent: ast.Condition) -> str:
        text = self.cond(child)
        if isinstance(child, ast.And | ast.Or) and type(child) is not type(parent):
            return f"({text})"
        return text

    def comparison(self, c: ast.Comparison) -> str:
        geo = self.geometry_predicate(c)
        if geo is not None:
            return geo
        return f"{self.expr(c.left)} {c.op} {self.expr(c.right)}"

    def geometry_predicate(self, c: ast.Comparison) -> str | None:
        """``CONTAINS(...) = 1`` and friends as a backend truth value, or None."""
        pred, positive = predicate_parts(c)
        if pred is None:
            return None
        return self.region_test(pred, positive=positive, comparison=c)

    def region_test(
        self, call: ast.FunctionCall, *, positive: bool, comparison: ast.Comparison | None
    ) -> str:
        raise NotImplementedError

    def like(self, c: ast.Like) -> str:
        neg = "NOT " if c.negated else ""
        op = "ILIKE" if c.case_insensitive else "LIKE"
        return f"{self.expr(c.operand)} {neg}{op} {self.expr(c.pattern)}"

    # ------------------------------------------------------------------ value expressions

    def expr(self, e: ast.Expr) -> str:
        if isinstance(e, ast.NumericLiteral):
            if e.is_integer and len(e.text.lstrip("0")) >= 19 and int(e.text) >= 2**63:
                # Beyond BIGINT: the checker types it DOUBLE, so the backend must read a double
                # (DuckDB would make it a HUGEINT no result writer knows).
                return e.text + "e0"
            return e.text
        if isinstance(e, ast.StringLiteral):
            return self.string(e.value)
        if isinstance(e, ast.NullLiteral):
            return "NULL"
        if isinstance(e, ast.ColumnRef):
            return self.column(e)
        if isinstance(e, ast.UnaryOp):
            inner = self.expr(e.operand)
            if isinstance(e.operand, ast.BinaryOp) or inner.startswith(("-", "+")):
                inner = f"({inner})"
            return inner if e.op == "+" else "-" + inner
        if isinstance(e, ast.BinaryOp):
            return self.binary(e)
        if isinstance(e, ast.Aggregate):
            return self.aggregate(e)
        if isinstance(e, ast.Cast):
            return self.cast(e)
        if isinstance(e, ast.ScalarSubquery):
            return "(" + self.query(e.query, self.inner_names(e.query)) + ")"
        if isinstance(e, ast.FunctionCall):
            return self.function(e)
        if isinstance(e, ast.Point | ast.Circle | ast.Box | ast.Polygon | ast.Region):
            return self.geometry_value(e)
        fail(f"cannot translate expression {type(e).__name__}", e)

    def column(self, ref: ast.ColumnRef) -> str:
        b = ref.binding
        if b is None:
            return self.qualified(*(i.name for i in ref.qualifier), ref.name.name)
        if b.range_name == "":
            return self.quote(b.column)  # an output column (select-list alias) of this query
        return self.qualified(b.range_name, b.column)

    def binary(self, e: ast.BinaryOp) -> str:
        if e.op == "||":
            return self.concat(e)
        left = self.operand(e.left, e, right=False)
        right = self.operand(e.right, e, right=True)
        if e.op == "/":
            return self.divide(e, left, right)
        return f"{left} {e.op} {right}"

    def operand(self, child: ast.Expr, parent: ast.BinaryOp, *, right: bool) -> str:
        text = self.expr(child)
        if isinstance(child, ast.BinaryOp):
            cp, pp = _PREC[child.op], _PREC[parent.op]
            if child.op == "||" and parent.op == "||" and not right:
                return text
            if cp < pp or (right and cp == pp) or child.op == "||":
                return f"({text})"
        return text

    def divide(self, e: ast.BinaryOp, left: str, right: str) -> str:
        return f"{left} / {right}"

    def concat(self, e: ast.BinaryOp) -> str:
        left = self.operand(e.left, e, right=False)
        right = self.operand(e.right, e, right=True)
        return f"{left} || {right}"

    def aggregate(self, a: ast.Aggregate) -> str:
        if a.arg is None:
            return "COUNT(*)"
        q = f"{a.quantifier} " if a.quantifier == "DISTINCT" else ""
        return f"{a.func}({q}{self.expr(a.arg)})"

    def cast(self, c: ast.Cast) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ functions

    def function(self, f: ast.FunctionCall) -> str:
        if f.name in GEOMETRY_FUNCTIONS:
            return self.geometry_function(f)
        udf = self.functions.get(f.name.lower())
        if udf is not None or f.name not in MATH_FUNCTIONS:
            return self.user_function(f, udf)
        return self.math_function(f)

    def user_function(self, f: ast.FunctionCall, udf: UserFunction | None) -> str:
        target = udf.sql.get(self.dialect) if udf is not None else None
        if target is None:
            fail(
                f"function {f.name} is not available on this service's {self.dialect} backend",
                f,
            )
        args = ", ".join(self.expr(a) for a in f.args)
        return f"{target}({args})"

    def math_function(self, f: ast.FunctionCall) -> str:
        args = ", ".join(self.expr(a) for a in f.args)
        return f"{f.name}({args})"

    # ------------------------------------------------------------------ geometry

    def geometry_function(self, f: ast.FunctionCall) -> str:
        raise NotImplementedError

    def geometry_value(self, e: ast.Expr) -> str:
        raise NotImplementedError


MATH_FUNCTIONS = frozenset(
    {
        "ABS",
        "CEILING",
        "DEGREES",
        "EXP",
        "FLOOR",
        "LOG",
        "LOG10",
        "MOD",
        "PI",
        "POWER",
        "RADIANS",
        "RAND",
        "ROUND",
        "SQRT",
        "TRUNCATE",
        "ACOS",
        "ASIN",
        "ATAN",
        "ATAN2",
        "COS",
        "COT",
        "SIN",
        "TAN",
        "LOWER",
        "UPPER",
        "COALESCE",
    }
)


# ---------------------------------------------------------------------- geometry helpers


def predicate_parts(c: ast.Comparison) -> tuple[ast.FunctionCall | None, bool]:
    """Recognise ``CONTAINS/INTERSECTS(...) = 1`` (either side, 0 or 1, = or <>).

    Returns the call and whether the comparison asks for "true"; (None, False) otherwise.
    """
    for call_side, const_side in ((c.left, c.right), (c.right, c.left)):
        if (
            isinstance(call_side, ast.FunctionCall)
            and call_side.name in ("CONTAINS", "INTERSECTS")
            and c.op in ("=", "<>")
        ):
            v = const_value(const_side)
            if v in (0, 1):
                positive = (v == 1) == (c.op == "=")
                return call_side, positive
    return None, False


def point_args(e: ast.Expr) -> tuple[ast.Expr, ast.Expr] | None:
    if isinstance(e, ast.Point):
        return e.x, e.y
    return None


def const_point(e: ast.Expr) -> tuple[float, float] | None:
    if isinstance(e, ast.Point):
        x, y = const_value(e.x), const_value(e.y)
        if x is not None and y is not None:
            return float(x), float(y)
    return None


def const_circle(e: ast.Expr) -> tuple[float, float, float] | None:
    if isinstance(e, ast.Circle):
        c = const_point(e.center)
        r = const_value(e.radius)
        if c is not None and r is not None:
            return c[0], c[1], float(r)
    return None


def const_polygon(e: ast.Expr) -> sphere.PolygonShape | None:
    """The analysed shape of a constant BOX or POLYGON (None when not constant)."""
    try:
        if isinstance(e, ast.Box):
            c = const_point(e.center)
            w, h = const_value(e.width), const_value(e.height)
            if c is None or w is None or h is None:
                return None
            return sphere.polygon_shape(sphere.box_vertices(c[0], c[1], float(w), float(h)))
        if isinstance(e, ast.Polygon):
            pts = [const_point(v) for v in e.vertices]
            if any(p is None for p in pts):
                return None
            return sphere.polygon_shape([p for p in pts if p is not None])
    except sphere.GeometryError as exc:
        fail(str(exc), e)
    return None


def geometry_kind(e: ast.Expr) -> str | None:
    """point / circle / polygon (BOX counts as polygon) / region, from the node or its type."""
    if isinstance(e, ast.Point):
        return "point"
    if isinstance(e, ast.Circle):
        return "circle"
    if isinstance(e, ast.Box | ast.Polygon):
        return "polygon"
    if isinstance(e, ast.Region):
        return "region"
    t = e.type_
    if t is not None and t.geometry is not None:
        return "polygon" if t.geometry == "box" else t.geometry
    return None
