"""Hypothesis strategies for random *valid* ADQL trees, in the canonical shapes the parser builds.

"Canonical" matters for the round trip ``parse(to_adql(tree)) == tree``: the parser normalises
(``!=`` to ``<>``, CIRCLE(cs, x, y, r) to a centre POINT, parentheses to structure), so the
strategies only build trees that are already normal:

* ``Query`` nodes nested as set-operation operands never carry WITH; WITH is top-level only.
* Scalar and IN subqueries start with SELECT (the grammar reads "((SELECT" as a parenthesised
  value there), so their leftmost operand is a ``SelectQuery``.
* The right operand of UNION/EXCEPT is a SELECT, a parenthesised query or an INTERSECT; both
  operands of INTERSECT bind tighter (a SELECT or a parenthesised query; the left may also be an
  INTERSECT).  Anything else would need parentheses, which the parser turns into a ``Query``.
* POLYGON vertices are never an even number of bare columns (the parser reads those as
  coordinate pairs), and polygon coordinates are numeric expressions.
* Point-valued arguments (CIRCLE/BOX centres, DISTANCE, COORD1/2) are points, CENTROIDs,
  user-defined functions or columns, as the BNF's <coord_value>.

Sizes are kept small: the point is coverage of shapes, not volume.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Literal

from hypothesis import strategies as st

from tap_service.adql import ast as a
from tap_service.adql.parser import BUILTIN_FUNCTIONS, RESERVED_WORDS

# ---------------------------------------------------------------------------- leaves

_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
_JOIN_KINDS: list[a.JoinKind] = ["INNER", "LEFT", "RIGHT", "FULL"]

_text = st.text(alphabet=st.characters(exclude_categories=_SURROGATES), max_size=8)

regular_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
    lambda n: n.upper() not in RESERVED_WORDS and n.upper() not in BUILTIN_FUNCTIONS
)

identifiers = st.one_of(
    regular_names.map(lambda n: a.Identifier(name=n)),
    # Any character but NUL, which the parser refuses in names (MariaDB cannot hold it).
    st.text(
        alphabet=st.characters(exclude_categories=_SURROGATES, exclude_characters="\x00"),
        min_size=1,
        max_size=8,
    ).map(lambda n: a.Identifier(name=n, delimited=True)),
)

_digits = st.integers(min_value=0, max_value=10**20).map(str)
numbers = st.one_of(
    _digits,
    st.builds(lambda i, f: f"{i}.{f}", _digits, _digits),
    st.builds(lambda i: f"{i}.", _digits),
    st.builds(lambda f: f".{f}", _digits),
    st.builds(
        lambda m, s, e: f"{m}{s}{e}",
        st.sampled_from(["1", "2.5", ".5", "10"]),
        st.sampled_from(["e", "E", "e-", "E+"]),
        st.integers(0, 300),
    ),
).map(lambda t: a.NumericLiteral(text=t))

strings = _text.map(lambda v: a.StringLiteral(value=v))
coordsys = st.one_of(
    st.none(),
    st.sampled_from(["ICRS", "", "GALACTIC", "fk5"]).map(lambda v: a.StringLiteral(value=v)),
)


def column_refs() -> st.SearchStrategy[a.ColumnRef]:
    return st.builds(
        lambda q, n: a.ColumnRef(qualifier=tuple(q), name=n),
        st.lists(identifiers, max_size=3),
        identifiers,
    )


def table_names() -> st.SearchStrategy[tuple[a.Identifier, ...]]:
    return st.lists(identifiers, min_size=1, max_size=3).map(tuple)


# ---------------------------------------------------------------------------- values

_ONE_ARG = [
    *("ABS", "CEILING", "DEGREES", "EXP", "FLOOR", "LOG", "LOG10", "RADIANS", "SQRT"),
    *("ACOS", "ASIN", "ATAN", "COS", "COT", "SIN", "TAN"),
    *("LOWER", "UPPER", "AREA", "CENTROID", "COORDSYS"),
]
_TWO_ARGS = ["MOD", "POWER", "ATAN2", "CONTAINS", "INTERSECTS"]
_TYPES = [
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "REAL",
    "DOUBLE PRECISION",
    "TIMESTAMP",
    "POINT",
    "CIRCLE",
    "POLYGON",
]
_SIZED_TYPES = ["CHAR", "VARCHAR", "NATIONAL CHAR", "NATIONAL VARCHAR"]

type_names = st.one_of(
    st.sampled_from(_TYPES).map(lambda n: a.TypeName(name=n)),
    st.builds(
        lambda n, length: a.TypeName(name=n, length=length),
        st.sampled_from(_SIZED_TYPES),
        st.one_of(st.none(), st.integers(1, 2**63 - 1)),
    ),
)


def _leaf_values() -> st.SearchStrategy[a.Expr]:
    return st.one_of(column_refs(), numbers, strings, st.just(a.NullLiteral()))


@cache
def numeric_values(depth: int) -> st.SearchStrategy[a.Expr]:
    """Arithmetic over numbers and columns (polygon coordinates)."""
    leaves = st.one_of(numbers, column_refs())
    if depth <= 0:
        return leaves
    sub = numeric_values(depth - 1)
    return st.one_of(
        leaves,
        st.builds(
            lambda op, left, right: a.BinaryOp(op=op, left=left, right=right),
            st.sampled_from(["+", "-", "*", "/"]),
            sub,
            sub,
        ),
        st.builds(lambda op, e: a.UnaryOp(op=op, operand=e), st.sampled_from(["+", "-"]), sub),
    )


def _not_coordinate_pairs(vertices: list[a.Expr]) -> list[a.Expr]:
    """An even number of bare columns reads as coordinate pairs: drop one to keep vertices."""
    if len(vertices) % 2 == 0 and all(isinstance(v, a.ColumnRef) for v in vertices):
        return vertices[:-1]
    return vertices


@cache
def udf_calls(depth: int) -> st.SearchStrategy[a.FunctionCall]:
    return st.builds(
        lambda n, args: a.FunctionCall(name=n, args=tuple(args)),
        regular_names,
        st.lists(values(depth - 1), max_size=3),
    )


@cache
def points(depth: int) -> st.SearchStrategy[a.Point]:
    sub = values(depth - 1)
    return st.builds(lambda cs, x, y: a.Point(coordsys=cs, x=x, y=y), coordsys, sub, sub)


@cache
def coord_values(depth: int) -> st.SearchStrategy[a.Expr]:
    """The BNF's <coord_value>: POINT, CENTROID, a user-defined function, a column."""
    return st.one_of(
        column_refs(),
        points(depth),
        values(depth - 1).map(lambda g: a.FunctionCall(name="CENTROID", args=(g,))),
        udf_calls(depth),
    )


@cache
def geometry(depth: int) -> st.SearchStrategy[a.Expr]:
    sub = values(depth - 1)
    centre = st.one_of(
        # Written with coordinates: the coordinate system lives on the centre point.
        points(depth).map(lambda p: (None, p)),
        st.tuples(coordsys, coord_values(depth)),
    )
    plain_point = st.builds(
        lambda x, y: a.Point(x=x, y=y), numeric_values(depth - 1), numeric_values(depth - 1)
    )
    vertex_lists = st.one_of(
        st.lists(plain_point, min_size=3, max_size=5),
        st.lists(coord_values(depth), min_size=3, max_size=5).map(_not_coordinate_pairs),
    )
    return st.one_of(
        points(depth),
        st.builds(lambda c, r: a.Circle(coordsys=c[0], center=c[1], radius=r), centre, sub),
        st.builds(
            lambda c, w, h: a.Box(coordsys=c[0], center=c[1], width=w, height=h),
            centre,
            sub,
            sub,
        ),
        st.builds(
            lambda cs, vs: a.Polygon(coordsys=cs, vertices=tuple(vs)), coordsys, vertex_lists
        ),
        strings.map(lambda s: a.Region(text=s)),
        st.builds(
            lambda p, q: a.FunctionCall(name="DISTANCE", args=(p, q)),
            coord_values(depth),
            coord_values(depth),
        ),
        st.builds(
            lambda n, p: a.FunctionCall(name=n, args=(p,)),
            st.sampled_from(["COORD1", "COORD2"]),
            coord_values(depth),
        ),
    )


@cache
def functions(depth: int) -> st.SearchStrategy[a.Expr]:
    sub = values(depth - 1)
    return st.one_of(
        st.builds(lambda n, x: a.FunctionCall(name=n, args=(x,)), st.sampled_from(_ONE_ARG), sub),
        st.builds(
            lambda n, x, y: a.FunctionCall(name=n, args=(x, y)),
            st.sampled_from(_TWO_ARGS),
            sub,
            sub,
        ),
        st.builds(
            lambda n, args: a.FunctionCall(name=n, args=tuple(args)),
            st.sampled_from(["RAND", "ROUND", "TRUNCATE"]),
            st.lists(sub, min_size=0, max_size=1),
        ).map(
            lambda f: (
                f
                if f.name == "RAND" or f.args
                else a.FunctionCall(name=f.name, args=(a.NumericLiteral(text="1"),))
            )
        ),
        st.just(a.FunctionCall(name="PI")),
        st.builds(
            lambda args: a.FunctionCall(name="COALESCE", args=tuple(args)),
            st.lists(sub, min_size=1, max_size=3),
        ),
        st.builds(lambda x, u: a.FunctionCall(name="IN_UNIT", args=(x, u)), sub, strings),
        udf_calls(depth),
        st.builds(
            lambda f, arg, q: a.Aggregate(func=f, arg=arg, quantifier=q),
            st.sampled_from(["AVG", "MAX", "MIN", "SUM", "COUNT"]),
            sub,
            st.sampled_from([None, "DISTINCT", "ALL"]),
        ),
        st.just(a.Aggregate(func="COUNT", arg=None)),
        st.builds(lambda x, t: a.Cast(operand=x, target=t), sub, type_names),
    )


@cache
def values(depth: int) -> st.SearchStrategy[a.Expr]:
    """Any value expression the parser can build, nested at most ``depth`` levels."""
    if depth <= 0:
        return _leaf_values()
    sub = values(depth - 1)
    return st.one_of(
        _leaf_values(),
        st.builds(
            lambda op, left, right: a.BinaryOp(op=op, left=left, right=right),
            st.sampled_from(["+", "-", "*", "/", "||"]),
            sub,
            sub,
        ),
        st.builds(lambda op, e: a.UnaryOp(op=op, operand=e), st.sampled_from(["+", "-"]), sub),
        functions(depth),
        geometry(depth),
        st.deferred(lambda: subqueries_s(depth - 1)).map(lambda q: a.ScalarSubquery(query=q)),
    )


# ---------------------------------------------------------------------------- conditions


@cache
def conditions(depth: int) -> st.SearchStrategy[a.Condition]:
    v = values(max(depth - 1, 0))
    negated = st.booleans()
    predicates = st.one_of(
        st.builds(
            lambda op, left, right: a.Comparison(op=op, left=left, right=right),
            st.sampled_from(["=", "<>", "<", ">", "<=", ">="]),
            v,
            v,
        ),
        st.builds(
            lambda o, lo, hi, n: a.Between(operand=o, low=lo, high=hi, negated=n),
            v,
            v,
            v,
            negated,
        ),
        st.builds(
            lambda o, p, n, ci: a.Like(operand=o, pattern=p, negated=n, case_insensitive=ci),
            v,
            v,
            negated,
            st.booleans(),
        ),
        st.builds(
            lambda o, items, n: a.InList(operand=o, items=tuple(items), negated=n),
            v,
            st.lists(v, min_size=1, max_size=3),
            negated,
        ),
        st.builds(lambda o, n: a.IsNull(operand=o, negated=n), v, negated),
    )
    if depth <= 0:
        return predicates
    sub = conditions(depth - 1)
    return st.one_of(
        predicates,
        st.builds(lambda left, right: a.And(left=left, right=right), sub, sub),
        st.builds(lambda left, right: a.Or(left=left, right=right), sub, sub),
        sub.map(lambda c: a.Not(operand=c)),
        st.builds(
            lambda o, q, n: a.InSubquery(operand=o, query=q, negated=n),
            v,
            st.deferred(lambda: subqueries_s(depth - 1)),
            negated,
        ),
        st.deferred(lambda: queries(depth - 1)).map(lambda q: a.Exists(query=q)),
    )


# ---------------------------------------------------------------------------- FROM


@cache
def from_items(depth: int) -> st.SearchStrategy[a.FromItem]:
    tables = st.builds(
        lambda n, al: a.TableRef(name=n, alias=al),
        table_names(),
        st.one_of(st.none(), identifiers),
    )
    if depth <= 0:
        return tables
    derived = st.builds(
        lambda q, al: a.DerivedTable(query=q, alias=al),
        st.deferred(lambda: queries(depth - 1)),
        identifiers,
    )
    sub = st.one_of(tables, derived, st.deferred(lambda: from_items(depth - 1)))

    @st.composite
    def joins(draw: st.DrawFn) -> a.Join:
        natural = draw(st.booleans())
        kind = draw(st.sampled_from(_JOIN_KINDS))
        condition = None
        using = None
        if not natural:
            spec = draw(st.sampled_from(["none", "on", "using"]))
            if spec == "on":
                condition = draw(conditions(depth - 1))
            elif spec == "using":
                using = tuple(draw(st.lists(identifiers, min_size=1, max_size=3)))
        return a.Join(
            left=draw(sub),
            right=draw(sub),
            kind=kind,
            natural=natural,
            condition=condition,
            using=using,
        )

    return st.one_of(tables, derived, joins())


# ---------------------------------------------------------------------------- queries


@cache
def select_queries(depth: int) -> st.SearchStrategy[a.SelectQuery]:
    # Query nesting comes from ``depth``; expressions inside stay shallow to keep trees small.
    expr_depth = min(depth, 1)
    items = st.lists(
        st.one_of(
            st.builds(lambda q: a.Star(qualifier=tuple(q)), st.lists(identifiers, max_size=3)),
            st.builds(
                lambda e, al: a.SelectItem(expr=e, alias=al),
                values(expr_depth),
                st.one_of(st.none(), identifiers),
            ),
        ),
        min_size=1,
        max_size=3,
    )
    maybe_cond = st.one_of(st.none(), conditions(expr_depth))
    return st.builds(
        lambda q, top, its, fr, w, g, h: a.SelectQuery(
            quantifier=q,
            top=top,
            items=tuple(its),
            from_=tuple(fr),
            where=w,
            group_by=tuple(g),
            having=h,
        ),
        st.sampled_from([None, "DISTINCT", "ALL"]),
        st.one_of(st.none(), st.integers(0, 2**63 - 1)),
        items,
        st.lists(from_items(depth), min_size=1, max_size=2),
        maybe_cond,
        st.lists(values(expr_depth), max_size=2),
        maybe_cond,
    )


@cache
def _order_by(depth: int) -> st.SearchStrategy[tuple[a.OrderItem, ...]]:
    return st.lists(
        st.builds(
            lambda e, d: a.OrderItem(expr=e, descending=d), values(min(depth, 1)), st.booleans()
        ),
        max_size=2,
    ).map(tuple)


def _offsets() -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), st.integers(0, 2**63 - 1))


@cache
def _bodies(depth: int, level: str) -> st.SearchStrategy[a.QueryBody]:
    """Bodies that may stand where ``level`` says without parentheses:
    "any" (left of UNION/EXCEPT, a whole query), "term" (right of UNION/EXCEPT, left of
    INTERSECT) or "primary" (right of INTERSECT)."""
    primary: st.SearchStrategy[a.QueryBody] = st.one_of(
        select_queries(depth),
        st.deferred(lambda: queries(depth - 1)) if depth > 0 else select_queries(0),
    )
    if depth <= 0 or level == "primary":
        return primary
    intersect = st.builds(
        lambda al, left, right: a.SetOperation(op="INTERSECT", all=al, left=left, right=right),
        st.booleans(),
        _bodies(depth - 1, "term"),
        _bodies(depth - 1, "primary"),
    )
    if level == "term":
        return st.one_of(primary, intersect)
    union = st.builds(
        lambda op, al, left, right: a.SetOperation(op=op, all=al, left=left, right=right),
        st.sampled_from(["UNION", "EXCEPT"]),
        st.booleans(),
        _bodies(depth - 1, "any"),
        _bodies(depth - 1, "term"),
    )
    return st.one_of(primary, intersect, union)


@cache
def queries(depth: int) -> st.SearchStrategy[a.Query]:
    """A select expression without WITH (derived tables, EXISTS, set-operation operands)."""
    return st.builds(
        lambda b, o, off: a.Query(body=b, order_by=o, offset=off),
        _bodies(depth, "any"),
        _order_by(depth),
        _offsets(),
    )


def _first_select(body: a.QueryBody) -> a.SelectQuery:
    while not isinstance(body, a.SelectQuery):
        body = body.left if isinstance(body, a.SetOperation) else body.body
    return body


def _select_first(body: a.QueryBody) -> a.QueryBody:
    """The body with its leftmost operand made a plain SELECT (mapping, not filtering: filters
    make hypothesis print the whole strategy graph)."""
    if isinstance(body, a.SetOperation):
        return dataclasses.replace(body, left=_select_first(body.left))
    return _first_select(body)


@cache
def subqueries_s(depth: int) -> st.SearchStrategy[a.Query]:
    """Queries for scalar and IN subqueries: they start with SELECT."""
    return queries(depth).map(lambda q: dataclasses.replace(q, body=_select_first(q.body)))


@cache
def top_queries(depth: int = 2) -> st.SearchStrategy[a.Query]:
    """Whole queries, WITH included."""
    ctes = st.lists(
        st.builds(lambda n, q: a.CommonTableExpr(name=n, query=q), identifiers, queries(depth - 1)),
        max_size=2,
    )
    return st.builds(
        lambda w, q: a.Query(with_=tuple(w), body=q.body, order_by=q.order_by, offset=q.offset),
        ctes,
        queries(depth),
    )


# ---------------------------------------------------------------------------- entry points
# Wrapped in ``composite`` so that hypothesis shows (and computes) a short repr rather than
# the repr of the whole nested strategy graph, which runs to megabytes.


@st.composite
def random_queries(draw: st.DrawFn, depth: int = 2) -> a.Query:
    """A whole random query (WITH, set operations, joins, subqueries, every expression)."""
    return draw(top_queries(depth))


@st.composite
def random_values(draw: st.DrawFn, depth: int = 3) -> a.Expr:
    """A random value expression."""
    return draw(values(depth))


@st.composite
def random_conditions(draw: st.DrawFn, depth: int = 3) -> a.Condition:
    """A random search condition."""
    return draw(conditions(depth))
