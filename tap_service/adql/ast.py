"""The typed ADQL tree.

Every node is a frozen dataclass so trees can be compared (round-trip tests), hashed and shared
between threads.  Source positions and checker annotations (``type_``, ``binding``) are excluded
from equality: two trees are equal when they say the same thing, wherever it was written.

The parser builds these nodes; the checker returns a copy with ``type_`` and ``binding`` filled;
rewrites and dialects only read them.  Geometry constructors have their own nodes, normalised so
that ``CIRCLE('ICRS', ra, dec, r)`` and ``CIRCLE(POINT('ICRS', ra, dec), r)`` become the same
tree; the other functions (math, trig, string, AREA, CONTAINS, DISTANCE, UDFs ...) are
``FunctionCall`` with an upper-cased name.  DISTANCE with four numeric arguments is normalised to
DISTANCE of two ``Point`` nodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, TypeVar

from tap_service.adql.catalog import ColumnInfo, TableInfo
from tap_service.adql.types import ValueType


@dataclass(frozen=True, slots=True)
class Position:
    """Where a node starts in the query text (1-based line and column)."""

    line: int
    column: int


@dataclass(frozen=True, kw_only=True)
class Node:
    """Base of every tree node."""

    pos: Position | None = field(default=None, compare=False, repr=False)


# --------------------------------------------------------------------------- identifiers


@dataclass(frozen=True, kw_only=True)
class Identifier(Node):
    """A name as written: regular identifiers match case-insensitively, delimited ones exactly."""

    name: str
    delimited: bool = False

    def matches(self, other: str) -> bool:
        """Whether this identifier designates the (catalog) name ``other``."""
        if self.delimited:
            return self.name == other
        return self.name.lower() == other.lower()


# --------------------------------------------------------------------------- value expressions


@dataclass(frozen=True, kw_only=True)
class Expr(Node):
    """A value expression.  ``type_`` is filled by the checker."""

    type_: ValueType | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class NumericLiteral(Expr):
    """An unsigned numeric literal; ``text`` keeps the digits exactly as written."""

    text: str

    @property
    def is_integer(self) -> bool:
        return not any(c in self.text for c in ".eE")

    @property
    def value(self) -> int | float:
        return int(self.text) if self.is_integer else float(self.text)


@dataclass(frozen=True, kw_only=True)
class StringLiteral(Expr):
    """A character string literal, with ``''`` already unescaped."""

    value: str


@dataclass(frozen=True, kw_only=True)
class NullLiteral(Expr):
    """The NULL value expression."""


@dataclass(frozen=True, kw_only=True)
class ColumnBinding:
    """What the checker resolved a column reference to.

    ``range_name`` is the FROM-clause range variable the column belongs to (the alias, or the
    name the checker gave an unaliased table); ``column`` is the column's name inside that
    range: the physical column name for catalog tables, the output name for derived tables and
    common table expressions.  Dialects render ``range_name.column``.
    """

    range_name: str
    column: str
    info: ColumnInfo


@dataclass(frozen=True, kw_only=True)
class ColumnRef(Expr):
    """``[qualifier.]name``; the qualifier has 0 to 3 parts (catalog.schema.table or alias)."""

    qualifier: tuple[Identifier, ...] = ()
    name: Identifier
    binding: ColumnBinding | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class UnaryOp(Expr):
    """Sign applied to a numeric expression."""

    op: Literal["+", "-"]
    operand: Expr


@dataclass(frozen=True, kw_only=True)
class BinaryOp(Expr):
    """Arithmetic (``+ - * /``) or string concatenation (``||``)."""

    op: Literal["+", "-", "*", "/", "||"]
    left: Expr
    right: Expr


@dataclass(frozen=True, kw_only=True)
class FunctionCall(Expr):
    """Built-in or user-defined function; ``name`` is upper-cased for built-ins, as written
    (without a default prefix) for user-defined functions."""

    name: str
    args: tuple[Expr, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Aggregate(Expr):
    """AVG, MAX, MIN, SUM, COUNT; ``arg`` None means ``COUNT(*)``."""

    func: Literal["AVG", "MAX", "MIN", "SUM", "COUNT"]
    arg: Expr | None
    quantifier: Literal["DISTINCT", "ALL"] | None = None


@dataclass(frozen=True, kw_only=True)
class TypeName(Node):
    """CAST target: ``name`` is one of SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, CHAR,
    VARCHAR, NATIONAL CHAR, NATIONAL VARCHAR, TIMESTAMP, POINT, CIRCLE, POLYGON."""

    name: str
    length: int | None = None


@dataclass(frozen=True, kw_only=True)
class Cast(Expr):
    operand: Expr
    target: TypeName


@dataclass(frozen=True, kw_only=True)
class ScalarSubquery(Expr):
    query: Query


# --------------------------------------------------------------------------- geometry values


@dataclass(frozen=True, kw_only=True)
class Point(Expr):
    coordsys: StringLiteral | None = None
    x: Expr
    y: Expr


@dataclass(frozen=True, kw_only=True)
class Circle(Expr):
    """``center`` is a point-valued expression (a ``Point``, a column, CENTROID(...), a UDF)."""

    coordsys: StringLiteral | None = None
    center: Expr
    radius: Expr


@dataclass(frozen=True, kw_only=True)
class Box(Expr):
    coordsys: StringLiteral | None = None
    center: Expr
    width: Expr
    height: Expr


@dataclass(frozen=True, kw_only=True)
class Polygon(Expr):
    """Vertices are point-valued expressions (``Point`` nodes when written as coordinates)."""

    coordsys: StringLiteral | None = None
    vertices: tuple[Expr, ...]


@dataclass(frozen=True, kw_only=True)
class Region(Expr):
    text: StringLiteral


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True, kw_only=True)
class Condition(Node):
    """A search condition (boolean); not a value expression in ADQL."""


CompOp: TypeAlias = Literal["=", "<>", "<", ">", "<=", ">="]


@dataclass(frozen=True, kw_only=True)
class Comparison(Condition):
    """``!=`` is normalised to ``<>``."""

    op: CompOp
    left: Expr
    right: Expr


@dataclass(frozen=True, kw_only=True)
class Between(Condition):
    operand: Expr
    low: Expr
    high: Expr
    negated: bool = False


@dataclass(frozen=True, kw_only=True)
class Like(Condition):
    """LIKE, or ILIKE when ``case_insensitive``."""

    operand: Expr
    pattern: Expr
    negated: bool = False
    case_insensitive: bool = False


@dataclass(frozen=True, kw_only=True)
class InList(Condition):
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool = False


@dataclass(frozen=True, kw_only=True)
class InSubquery(Condition):
    operand: Expr
    query: Query
    negated: bool = False


@dataclass(frozen=True, kw_only=True)
class IsNull(Condition):
    operand: Expr
    negated: bool = False


@dataclass(frozen=True, kw_only=True)
class Exists(Condition):
    query: Query


@dataclass(frozen=True, kw_only=True)
class And(Condition):
    left: Condition
    right: Condition


@dataclass(frozen=True, kw_only=True)
class Or(Condition):
    left: Condition
    right: Condition


@dataclass(frozen=True, kw_only=True)
class Not(Condition):
    operand: Condition


# --------------------------------------------------------------------------- FROM clause


@dataclass(frozen=True, kw_only=True)
class TableBinding:
    """What the checker resolved a table reference to.

    ``table`` is None for common table expressions; ``range_name`` is the unique name the
    dialect gives this occurrence in SQL (the alias when there is one).
    """

    table: TableInfo | None
    range_name: str


@dataclass(frozen=True, kw_only=True)
class TableRef(Node):
    """``[catalog.][schema.]table [AS alias]``; also ``TAP_UPLOAD.name`` and CTE names."""

    name: tuple[Identifier, ...]
    alias: Identifier | None = None
    binding: TableBinding | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class DerivedTable(Node):
    """``(subquery) [AS] alias``: the alias is mandatory in ADQL."""

    query: Query
    alias: Identifier


JoinKind: TypeAlias = Literal["INNER", "LEFT", "RIGHT", "FULL"]


@dataclass(frozen=True, kw_only=True)
class Join(Node):
    """A qualified join.  A bare ``JOIN`` is INNER; ``using`` is None when there is no USING."""

    left: FromItem
    right: FromItem
    kind: JoinKind = "INNER"
    natural: bool = False
    condition: Condition | None = None
    using: tuple[Identifier, ...] | None = None


FromItem: TypeAlias = TableRef | DerivedTable | Join


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True, kw_only=True)
class Star(Node):
    """``*`` or ``qualifier.*`` in a select list (the checker expands stars away)."""

    qualifier: tuple[Identifier, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SelectItem(Node):
    expr: Expr
    alias: Identifier | None = None


@dataclass(frozen=True, kw_only=True)
class SelectQuery(Node):
    """One SELECT ... FROM ... [WHERE] [GROUP BY] [HAVING] block."""

    quantifier: Literal["DISTINCT", "ALL"] | None = None
    top: int | None = None
    items: tuple[SelectItem | Star, ...]
    from_: tuple[FromItem, ...]
    where: Condition | None = None
    group_by: tuple[Expr, ...] = ()
    having: Condition | None = None


@dataclass(frozen=True, kw_only=True)
class SetOperation(Node):
    op: Literal["UNION", "EXCEPT", "INTERSECT"]
    all: bool = False
    left: QueryBody
    right: QueryBody


@dataclass(frozen=True, kw_only=True)
class OrderItem(Node):
    """``expr`` is a column reference, an alias, a value expression, or an integer literal
    giving a select-list position."""

    expr: Expr
    descending: bool = False


@dataclass(frozen=True, kw_only=True)
class CommonTableExpr(Node):
    name: Identifier
    query: Query


@dataclass(frozen=True, kw_only=True)
class Query(Node):
    """A complete query expression: [WITH ...] body [ORDER BY ...] [OFFSET n].

    A parenthesised select expression inside a set operation is a nested ``Query``.
    """

    with_: tuple[CommonTableExpr, ...] = ()
    body: QueryBody
    order_by: tuple[OrderItem, ...] = ()
    offset: int | None = None


QueryBody: TypeAlias = SelectQuery | SetOperation | Query


# --------------------------------------------------------------------------- generic traversal

N = TypeVar("N", bound=Node)


_TREE_FIELDS: dict[type, tuple[str, ...]] = {}


def _tree_fields(cls: type) -> tuple[str, ...]:
    """Names of the fields that may hold child nodes (cached: the tree walk is hot)."""
    names = _TREE_FIELDS.get(cls)
    if names is None:
        names = tuple(
            f.name for f in dataclasses.fields(cls) if f.name not in ("pos", "type_", "binding")
        )
        _TREE_FIELDS[cls] = names
    return names


def children(node: Node) -> Iterator[Node]:
    """The direct child nodes, in field order (bindings and types are not children)."""
    for name in _tree_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Node):
                    yield item


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, pre-order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(children(current))))


def transform(node: N, fn: Callable[[Node], Node]) -> N:
    """Rebuild the tree bottom-up, applying ``fn`` to every node after its children.

    Fields that did not change are shared, so an identity ``fn`` returns the same object.
    """
    changes: dict[str, object] = {}
    for name in _tree_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, Node):
            new = transform(value, fn)
            if new is not value:
                changes[name] = new
        elif isinstance(value, tuple) and value and any(isinstance(v, Node) for v in value):
            items = tuple(transform(v, fn) if isinstance(v, Node) else v for v in value)
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changes[name] = items
    rebuilt = dataclasses.replace(node, **changes) if changes else node  # type: ignore[arg-type]
    result = fn(rebuilt)
    return result  # type: ignore[return-value]
