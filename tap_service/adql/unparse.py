"""Tree to ADQL text.

Used for error messages, logs, job parameters rewritten by the service, and the round-trip
tests: for every tree the parser can produce, ``parse(to_adql(tree)) == tree``.  Parentheses are
written only where the grammar needs them, so the text stays close to what a person would write;
keywords are upper-case, built-in functions keep their normalised names.

Trees the parser cannot produce are rendered as close as possible (a reserved word held in an
undelimited identifier is delimited, for instance), but may not round-trip exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tap_service.adql import ast
from tap_service.adql.parser import BUILTIN_FUNCTIONS, RESERVED_WORDS

__all__ = ["identifier", "to_adql"]

_REGULAR = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")

# Value precedence: what each expression kind is, and what its operands must at least be.
_CONCAT, _SUM, _PRODUCT, _UNARY, _PRIMARY = range(1, 6)
# Condition precedence.
_OR, _AND, _NOT, _PREDICATE = range(1, 5)
# Set operation precedence.
_UNION, _INTERSECT = range(1, 3)


def to_adql(node: ast.Node) -> str:
    """ADQL text for any node (a whole query, a condition, an expression, a FROM item ...)."""
    return _Writer().node(node)


def _reserved(name: str) -> bool:
    upper = name.upper()
    return upper in RESERVED_WORDS or upper in BUILTIN_FUNCTIONS


def identifier(ident: ast.Identifier) -> str:
    """An identifier as it must be written to read back the same."""
    if not ident.delimited and _REGULAR.match(ident.name) and not _reserved(ident.name):
        return ident.name
    return '"' + ident.name.replace('"', '""') + '"'


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _join(parts: Iterable[str]) -> str:
    return ", ".join(parts)


def _plain(e: ast.Expr) -> bool:
    """Whether a point can be written as bare coordinates inside CIRCLE, BOX or POLYGON: the
    parser reads a leading string or NULL there as a coordinate system."""
    return isinstance(e, ast.Point) and not isinstance(e.x, ast.StringLiteral | ast.NullLiteral)


class _Writer:
    def node(self, node: ast.Node) -> str:
        if isinstance(node, ast.Query):
            return self.query(node)
        if isinstance(node, ast.SelectQuery | ast.SetOperation):
            return self.body(node, _UNION)
        if isinstance(node, ast.Expr):
            return self.expr(node)
        if isinstance(node, ast.Condition):
            return self.cond(node)
        if isinstance(node, ast.TableRef | ast.DerivedTable | ast.Join):
            return self.from_item(node, top=True)
        if isinstance(node, ast.Identifier):
            return identifier(node)
        if isinstance(node, ast.Star):
            return self.star(node)
        if isinstance(node, ast.SelectItem):
            return self.select_item(node)
        if isinstance(node, ast.OrderItem):
            return self.order_item(node)
        if isinstance(node, ast.TypeName):
            return self.type_name(node)
        if isinstance(node, ast.CommonTableExpr):
            return f"{identifier(node.name)} AS ({self.query(node.query)})"
        raise TypeError(f"cannot render {type(node).__name__} as ADQL")

    # ---------------------------------------------------------------- queries

    def query(self, q: ast.Query) -> str:
        parts = []
        if q.with_:
            parts.append("WITH " + _join(self.node(cte) for cte in q.with_))
        parts.append(self.body(q.body, _UNION))
        if q.order_by:
            parts.append("ORDER BY " + _join(self.order_item(o) for o in q.order_by))
        if q.offset is not None:
            parts.append(f"OFFSET {q.offset}")
        return " ".join(parts)

    def body(self, body: ast.QueryBody, minimum: int) -> str:
        if isinstance(body, ast.SelectQuery):
            return self.select(body)
        if isinstance(body, ast.Query):
            return f"({self.query(body)})"
        level = _INTERSECT if body.op == "INTERSECT" else _UNION
        op = body.op + (" ALL" if body.all else "")
        text = f"{self.body(body.left, level)} {op} {self.body(body.right, level + 1)}"
        return text if level >= minimum else f"({text})"

    def select(self, s: ast.SelectQuery) -> str:
        parts = ["SELECT"]
        if s.quantifier:
            parts.append(s.quantifier)
        if s.top is not None:
            parts.append(f"TOP {s.top}")
        parts.append(_join(self.select_entry(i) for i in s.items))
        parts.append("FROM " + _join(self.from_item(f, top=True) for f in s.from_))
        if s.where is not None:
            parts.append("WHERE " + self.cond(s.where))
        if s.group_by:
            parts.append("GROUP BY " + _join(self.expr(e) for e in s.group_by))
        if s.having is not None:
            parts.append("HAVING " + self.cond(s.having))
        return " ".join(parts)

    def select_entry(self, item: ast.SelectItem | ast.Star) -> str:
        if isinstance(item, ast.Star):
            return self.star(item)
        return self.select_item(item)

    def star(self, star: ast.Star) -> str:
        return "".join(identifier(q) + "." for q in star.qualifier) + "*"

    def select_item(self, item: ast.SelectItem) -> str:
        text = self.expr(item.expr)
        if item.alias is not None:
            text += " AS " + identifier(item.alias)
        return text

    def order_item(self, item: ast.OrderItem) -> str:
        return self.expr(item.expr) + (" DESC" if item.descending else "")

    # ---------------------------------------------------------------- FROM

    def from_item(self, item: ast.FromItem, *, top: bool) -> str:
        if isinstance(item, ast.TableRef):
            text = ".".join(identifier(n) for n in item.name)
            if item.alias is not None:
                text += " AS " + identifier(item.alias)
            return text
        if isinstance(item, ast.DerivedTable):
            return f"({self.query(item.query)}) AS {identifier(item.alias)}"
        parts = [self.from_item(item.left, top=True)]
        if item.natural:
            parts.append("NATURAL")
        if item.kind != "INNER":
            parts.append(f"{item.kind} OUTER")
        parts.append("JOIN")
        parts.append(self.from_item(item.right, top=False))
        if item.condition is not None:
            parts.append("ON " + self.cond(item.condition))
        if item.using is not None:
            parts.append("USING (" + _join(identifier(i) for i in item.using) + ")")
        text = " ".join(parts)
        return text if top else f"({text})"

    # ---------------------------------------------------------------- conditions

    def cond(self, c: ast.Condition, minimum: int = _OR) -> str:
        level, text = self._cond(c)
        return text if level >= minimum else f"({text})"

    def _cond(self, c: ast.Condition) -> tuple[int, str]:
        if isinstance(c, ast.Or):
            return _OR, f"{self.cond(c.left, _OR)} OR {self.cond(c.right, _AND)}"
        if isinstance(c, ast.And):
            return _AND, f"{self.cond(c.left, _AND)} AND {self.cond(c.right, _NOT)}"
        if isinstance(c, ast.Not):
            return _NOT, "NOT " + self.cond(c.operand, _NOT)
        return _PREDICATE, self.predicate(c)

    def predicate(self, c: ast.Condition) -> str:
        e = self.expr
        if isinstance(c, ast.Comparison):
            return f"{e(c.left)} {c.op} {e(c.right)}"
        if isinstance(c, ast.Between):
            neg = "NOT " if c.negated else ""
            return f"{e(c.operand)} {neg}BETWEEN {e(c.low)} AND {e(c.high)}"
        if isinstance(c, ast.Like):
            neg = "NOT " if c.negated else ""
            op = "ILIKE" if c.case_insensitive else "LIKE"
            return f"{e(c.operand)} {neg}{op} {e(c.pattern)}"
        if isinstance(c, ast.InList):
            neg = "NOT " if c.negated else ""
            return f"{e(c.operand)} {neg}IN ({_join(e(i) for i in c.items)})"
        if isinstance(c, ast.InSubquery):
            neg = "NOT " if c.negated else ""
            return f"{e(c.operand)} {neg}IN ({self.query(c.query)})"
        if isinstance(c, ast.IsNull):
            return f"{e(c.operand)} IS {'NOT ' if c.negated else ''}NULL"
        if isinstance(c, ast.Exists):
            return f"EXISTS ({self.query(c.query)})"
        raise TypeError(f"cannot render {type(c).__name__} as ADQL")

    # ---------------------------------------------------------------- values

    def expr(self, x: ast.Expr, minimum: int = _CONCAT) -> str:
        level, text = self._expr(x)
        return text if level >= minimum else f"({text})"

    def _expr(self, x: ast.Expr) -> tuple[int, str]:
        if isinstance(x, ast.BinaryOp):
            level = {"||": _CONCAT, "+": _SUM, "-": _SUM}.get(x.op, _PRODUCT)
            return level, f"{self.expr(x.left, level)} {x.op} {self.expr(x.right, level + 1)}"
        if isinstance(x, ast.UnaryOp):
            operand = self.expr(x.operand, _UNARY)
            # "--" would start a comment.
            sep = " " if operand[:1] in "+-" else ""
            return _UNARY, f"{x.op}{sep}{operand}"
        return _PRIMARY, self.primary(x)

    def primary(self, x: ast.Expr) -> str:
        if isinstance(x, ast.ColumnRef):
            return ".".join(identifier(p) for p in (*x.qualifier, x.name))
        if isinstance(x, ast.NumericLiteral):
            return x.text
        if isinstance(x, ast.StringLiteral):
            return _string(x.value)
        if isinstance(x, ast.NullLiteral):
            return "NULL"
        if isinstance(x, ast.FunctionCall):
            return f"{x.name}({self.args(*x.args)})"
        if isinstance(x, ast.Aggregate):
            if x.arg is None:
                return f"{x.func}(*)"
            quantifier = f"{x.quantifier} " if x.quantifier else ""
            return f"{x.func}({quantifier}{self.expr(x.arg)})"
        if isinstance(x, ast.Cast):
            return f"CAST({self.expr(x.operand)} AS {self.type_name(x.target)})"
        if isinstance(x, ast.ScalarSubquery):
            return f"({self.query(x.query)})"
        if isinstance(x, ast.Point):
            return f"POINT({self.args(x.coordsys, x.x, x.y)})"
        if isinstance(x, ast.Circle):
            return f"CIRCLE({self.args(*self._centred(x.coordsys, x.center), x.radius)})"
        if isinstance(x, ast.Box):
            center = self._centred(x.coordsys, x.center)
            return f"BOX({self.args(*center, x.width, x.height)})"
        if isinstance(x, ast.Polygon):
            return f"POLYGON({self.args(*self._polygon(x))})"
        if isinstance(x, ast.Region):
            return f"REGION({_string(x.text.value)})"
        raise TypeError(f"cannot render {type(x).__name__} as ADQL")

    def args(self, *args: ast.Expr | None) -> str:
        return _join(self.expr(a) for a in args if a is not None)

    @staticmethod
    def _centred(
        coordsys: ast.StringLiteral | None, center: ast.Expr
    ) -> tuple[ast.Expr | None, ...]:
        """Arguments for the centre of a CIRCLE or BOX: coordinates when the centre is a POINT
        and the shape has no coordinate system of its own (that is how the parser reads them)."""
        if coordsys is None and _plain(center):
            assert isinstance(center, ast.Point)
            return (center.coordsys, center.x, center.y)
        return (coordsys, center)

    @staticmethod
    def _polygon(p: ast.Polygon) -> tuple[ast.Expr | None, ...]:
        if (
            all(isinstance(v, ast.Point) and v.coordsys is None and _plain(v) for v in p.vertices)
            and len(p.vertices) >= 3
        ):
            coords: list[ast.Expr | None] = [p.coordsys]
            for v in p.vertices:
                assert isinstance(v, ast.Point)
                coords += [v.x, v.y]
            return tuple(coords)
        return (p.coordsys, *p.vertices)

    def type_name(self, t: ast.TypeName) -> str:
        return t.name + (f"({t.length})" if t.length is not None else "")
