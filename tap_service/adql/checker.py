"""Resolve an ADQL tree against a catalog: names, scopes, types and output metadata.

The checker is the one place that knows SQL scoping, so the dialects never have to: it returns
a copy of the tree in which

* every ``TableRef`` carries a ``TableBinding`` whose ``range_name`` is unique where it has to
  be (an alias is kept; an unaliased table gets its name, suffixed ``_2``... when another range
  anywhere in the query already uses it), so ``physical AS range_name`` is always safe;
* every ``ColumnRef`` carries a ``ColumnBinding``: ``range_name.column`` is what to render.
  A ``range_name`` of ``""`` means an *output* column of the enclosing query (ORDER BY or
  GROUP BY naming a select-list alias, ORDER BY of a set operation): render the bare name;
* every ``SelectItem`` has an ``alias``: the unique output name (``Identifier(delimited=True)``
  when the checker chose it), so derived tables and CTEs expose exactly the names their
  ``ColumnBinding.column`` values use, and result columns come back named as ``columns`` says;
* stars are expanded into bound column references;
* every ``Expr`` has its ``type_``.

With ``catalog=None`` the checker runs in "syntax only" mode: every table exists and has every
column, with unknown type.  Such tables are bound to a ``TableInfo`` without columns (and
listed in ``CheckedQuery.tables``); stars over them cannot be expanded and stay in the tree as
``range_name.*``, and the output columns they stand for are missing from ``columns``.  The
mode judges a query as the ADQL 2.1 BNF does, not by SQL-92's rules beyond it:

* a qualifier naming no table of the FROM clause (or a table its alias hides) binds to an
  unknown table of that name, and a star over it stays ``name.*``;
* grouping is not checked, and aggregates may appear anywhere a value may;
* typing is the BNF's: a value_expression_primary (literal, column, aggregate, CAST,
  COALESCE, scalar subquery) or a user-defined function may stand wherever a number, string
  or geometry is wanted, so only a typed function or operator of the wrong kind is an error
  (``POINT(...) || 'a'``, ``ABS(1) LIKE 'a'``); comparison, IN, BETWEEN, COALESCE, CAST,
  aggregate and set-operation operands are not typed at all.  Point positions (coord_value)
  still need a point, column or user-defined function, and integer ones an integer.  The tree
  keeps no parentheses, so ``(POINT(...)) || 'a'``, a primary for the BNF, is still refused.

Other errors that need no catalog are still reported: arity, ambiguous names among known
columns, duplicate range names, set operations of different widths.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace

from tap_service.adql import ast as a
from tap_service.adql import functions as fn
from tap_service.adql import types as t
from tap_service.adql.catalog import Catalog, ColumnInfo, TableInfo, UserFunction
from tap_service.adql.checked import CheckedQuery, OutputColumn
from tap_service.adql.errors import AdqlError, AdqlNameError, AdqlSyntaxError, AdqlTypeError
from tap_service.adql.types import ValueType

OUTPUT_RANGE = ""
"""``ColumnBinding.range_name`` of a reference to an output column (select-list alias)."""


class _NameError(AdqlNameError):
    """Puts the position before the suggestions, so the message reads in the order a user
    fixes things: what is wrong, where, then what was probably meant."""

    def __str__(self) -> str:
        text = self.message
        if self.line is not None:
            text += f" (line {self.line}, column {self.column})"
        if self.suggestions:
            text += "; did you mean " + ", ".join(f"'{s}'" for s in self.suggestions) + "?"
        return text


def _where(node: a.Node | None) -> tuple[int | None, int | None]:
    pos = node.pos if node is not None else None
    return (pos.line, pos.column) if pos is not None else (None, None)


def _type_error(message: str, node: a.Node | None) -> AdqlTypeError:
    line, column = _where(node)
    return AdqlTypeError(message, line=line, column=column)


def _syntax_error(message: str, node: a.Node | None) -> AdqlSyntaxError:
    line, column = _where(node)
    return AdqlSyntaxError(message, line=line, column=column)


def _name_error(
    message: str, node: a.Node | None, name: str, vocabulary: Iterable[str] = ()
) -> AdqlNameError:
    line, column = _where(node)
    return _NameError(
        message, line=line, column=column, name=name, suggestions=_suggest(name, vocabulary)
    )


def _suggest(word: str, vocabulary: Iterable[str]) -> list[str]:
    """Up to three close names, compared case-insensitively (users mistype case most)."""
    by_lower: dict[str, str] = {}
    for name in vocabulary:
        by_lower.setdefault(name.lower(), name)
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=3, cutoff=0.4)
    return [by_lower[c] for c in close]


def _dotted(parts: Sequence[a.Identifier]) -> str:
    return ".".join(p.name for p in parts)


# --------------------------------------------------------------------------- scopes


@dataclass(frozen=True, kw_only=True)
class _Column:
    """A column a range offers: its SQL name inside the range and its metadata."""

    sql_name: str
    info: ColumnInfo
    source: ColumnInfo | None = None
    source_table: TableInfo | None = None


class _Columns:
    """The columns of a range, indexed by lower-case name (Rubin tables have ~1000)."""

    __slots__ = ("all", "by_lower")

    def __init__(self, columns: Iterable[_Column]) -> None:
        self.all = tuple(columns)
        self.by_lower: dict[str, list[_Column]] = {}
        for c in self.all:
            self.by_lower.setdefault(c.info.name.lower(), []).append(c)


_TABLE_COLUMNS: dict[int, tuple[TableInfo, _Columns]] = {}
"""Column indexes of catalog tables, by id() (TableInfo hashes all its columns: too slow as a
key).  Entries hold the table, so an id cannot be reused while cached; bounded by clearing."""


def _table_columns(table: TableInfo) -> _Columns:
    cached = _TABLE_COLUMNS.get(id(table))
    if cached is not None and cached[0] is table:
        return cached[1]
    if len(_TABLE_COLUMNS) >= 1024:
        _TABLE_COLUMNS.clear()
    columns = _Columns(
        _Column(sql_name=c.sql_name, info=c, source=c, source_table=table) for c in table.columns
    )
    _TABLE_COLUMNS[id(table)] = (table, columns)
    return columns


@dataclass(kw_only=True)
class _Range:
    """One FROM-clause range variable."""

    range_name: str
    alias: a.Identifier | None
    names: tuple[str, ...]
    """(schema, table) or (table,): the names an unaliased range answers to."""
    index: _Columns
    open: bool = False
    """Unknown table (syntax-only mode): every column exists, with unknown type."""
    table: TableInfo | None = None

    @property
    def columns(self) -> tuple[_Column, ...]:
        return self.index.all

    @property
    def label(self) -> str:
        return self.alias.name if self.alias is not None else self.names[-1]

    def answers_to(self, qualifier: Sequence[a.Identifier]) -> bool:
        if self.alias is not None:
            return len(qualifier) == 1 and (
                qualifier[0].matches(self.alias.name)
                or (self.alias.delimited and qualifier[0].name == self.alias.name)
            )
        wanted = list(qualifier[-2:])
        if len(wanted) > len(self.names):
            if not self.open:
                return False
            wanted = wanted[-len(self.names) :]  # unknown table: its schema is unknown too
        mine = self.names[len(self.names) - len(wanted) :]
        return all(q.matches(n) for q, n in zip(wanted, mine, strict=True))

    def find(self, name: a.Identifier) -> list[_Column]:
        found = self.index.by_lower.get(name.name.lower(), [])
        if name.delimited:
            return [c for c in found if c.info.name == name.name]
        if len(found) > 1:
            exact = [c for c in found if c.info.name == name.name]
            if len(exact) == 1:
                return exact
        return found

    def open_column(self, name: a.Identifier) -> _Column:
        return _Column(sql_name=name.name, info=ColumnInfo(name=name.name, datatype=None))


@dataclass(kw_only=True)
class _Scope:
    """The ranges of one FROM clause, and what encloses it (correlated references)."""

    ranges: list[_Range]
    parent: _Scope | None = None
    merged: dict[str, tuple[_Range, _Column]] = field(default_factory=dict)
    """USING/NATURAL join columns: lower-case name -> the side that provides the value."""
    hidden: set[tuple[str, str]] = field(default_factory=set)
    """(range_name, lower-case column) pairs a merged column hides from ``*``."""
    aliases: dict[str, tuple[OutputColumn, ValueType]] = field(default_factory=dict)
    """Select-list names GROUP BY and HAVING may use when no input column has the name."""
    ctes: tuple[_Cte, ...] = ()
    """The WITH queries visible here (subqueries in conditions see them too)."""


@dataclass(kw_only=True)
class _Result:
    """The output columns of a query expression; ``open`` when a star stayed unexpanded."""

    columns: list[OutputColumn]
    types: list[ValueType]
    open: bool = False


@dataclass(frozen=True, kw_only=True)
class _Cte:
    name: a.Identifier
    result: _Result


def _output_as_column(out: OutputColumn) -> _Column:
    info = ColumnInfo(
        name=out.name,
        datatype=out.datatype,
        arraysize=out.arraysize,
        xtype=out.xtype,
        unit=out.unit,
        ucd=out.ucd,
        utype=out.utype,
        description=out.description,
    )
    return _Column(sql_name=out.name, info=info, source=out.source, source_table=out.source_table)


# --------------------------------------------------------------------------- kinds


def _kind(v: ValueType) -> str:
    if v.is_unknown:
        return "unknown"
    if v.is_geometry:
        return "geometry"
    if v.is_timestamp:
        return "timestamp"
    if v.is_numeric:
        return "numeric"
    if v.is_string:
        return "string"
    return "other"  # arrays, legacy adql:* datatypes ...: not ours to judge


def _is_stcs(v: ValueType) -> bool:
    """An STC-S region string (``char``, xtype ``adql:REGION``): a region to CONTAINS and
    INTERSECTS, and still a string to LIKE, ``=`` and the string functions."""
    return v.geometry == "region" and v.datatype in t.STRING_DATATYPES


def _type_of(e: a.Expr) -> ValueType:
    return e.type_ if e.type_ is not None else t.UNKNOWN


def _describe_kind(e: a.Expr) -> str:
    v = _type_of(e)
    kind = _kind(v)
    if kind == "geometry":
        return f"a {v.xtype} geometry"
    if kind == "timestamp":
        return "a timestamp"
    if kind == "numeric":
        return "a number"
    if kind == "string":
        return "a string"
    return "a value"


def _fits(e: a.Expr, kind: fn.ArgKind) -> bool:
    v = _type_of(e)
    k = _kind(v)
    if k in ("unknown", "other") or kind == "any":
        return True
    if kind == "numeric":
        return k == "numeric"
    if kind == "integer":
        return v.is_integer
    if kind == "string":
        return k in ("string", "timestamp") or _is_stcs(v)
    if kind == "geometry":
        return k == "geometry"
    # point: a point, or a generic shape that may hold one
    return k == "geometry" and v.geometry in ("point", "shape", "region")


def _stands_anywhere(e: a.Expr, kind: fn.ArgKind) -> bool:
    """Whether the ADQL 2.1 BNF lets ``e`` stand where a ``kind`` is wanted, whatever its type.

    The numeric, character and geometry value expressions of the BNF all admit a
    value_expression_primary, and user_defined_function is a numeric, string, geometry and
    point function alike.  A coord_value (point position) admits only a column reference
    among the primaries, and integer positions (a literal in the BNF) stay judged by type.
    """
    if isinstance(e, a.ColumnRef):
        return True
    if isinstance(e, a.FunctionCall):
        name = e.name.upper()
        if name not in fn.BUILTINS:
            return True  # a user-defined function
        return name == "COALESCE" and kind not in ("point", "integer")
    if kind in ("point", "integer"):
        return False
    return isinstance(
        e,
        a.NumericLiteral
        | a.StringLiteral
        | a.NullLiteral
        | a.Aggregate
        | a.Cast
        | a.ScalarSubquery,
    )


_KIND_WORDS: dict[str, str] = {
    "numeric": "a number",
    "integer": "an integer",
    "string": "a string",
    "geometry": "a geometry",
    "point": "a point",
    "any": "a value",
}


def _comparable(left: a.Expr, right: a.Expr) -> bool:
    literal = isinstance(left, a.StringLiteral) or isinstance(right, a.StringLiteral)
    return _comparable_types(_type_of(left), _type_of(right), string_literal=literal)


def _comparable_types(left: ValueType, right: ValueType, *, string_literal: bool) -> bool:
    """Whether values of these types can meet in a comparison, IN, BETWEEN or COALESCE.

    A string literal compares with anything but a geometry: ``objectId = '123'`` and
    ``obs_start > '2020-01-01'`` are common, and every backend converts the literal.
    """
    kinds = {"string" if _is_stcs(v) else _kind(v) for v in (left, right)}
    if kinds & {"unknown", "other"} or len(kinds) == 1:
        return True
    if string_literal and "geometry" not in kinds:
        return True
    return kinds == {"timestamp", "string"}


# --------------------------------------------------------------------------- the checker


class _Checker:
    """One check: holds what must be unique or collected across the whole query (range names,
    referenced tables, the catalog column behind each bound reference)."""

    def __init__(
        self, catalog: Catalog | None, extra_functions: Iterable[UserFunction] | None
    ) -> None:
        self.catalog = catalog
        self.catalog_tables: list[TableInfo] = list(catalog.tables()) if catalog else []
        udfs = list(catalog.functions()) if catalog else []
        udfs.extend(extra_functions or ())
        self.udfs = {f.name.lower(): f for f in udfs}
        self.strict_functions = catalog is not None or extra_functions is not None
        self.bnf_only = catalog is None
        """Syntax-only mode: no SQL-92 scope, grouping or typing rules beyond the BNF."""
        self.taken: set[str] = set()
        self.tables: list[TableInfo] = []
        self.sources: dict[int, tuple[a.ColumnRef, _Column]] = {}
        """id() of each bound ColumnRef of the result tree -> the column it reads, so output
        metadata can say which catalog column a result column copies."""

    # ----------------------------------------------------------------- entry

    def run(self, query: a.Query) -> tuple[a.Query, _Result]:
        self.taken.update(_aliases(query))
        return self.query(query, None, (), top_level=True)

    def note_table(self, table: TableInfo) -> None:
        if not any(x is table for x in self.tables):
            self.tables.append(table)

    def fresh_range_name(self, base: str) -> str:
        name, n = base, 2
        while name.lower() in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name.lower())
        return name

    # ----------------------------------------------------------------- queries

    def query(
        self,
        q: a.Query,
        outer: _Scope | None,
        ctes: tuple[_Cte, ...],
        *,
        top_level: bool = False,
    ) -> tuple[a.Query, _Result]:
        if q.with_ and not top_level:
            raise _syntax_error(
                "WITH is only allowed at the start of the whole query, not in a subquery",
                q.with_[0],
            )
        if q.offset is not None and q.offset < 0:
            raise _syntax_error("OFFSET must not be negative", q)
        new_with: list[a.CommonTableExpr] = []
        for cte in q.with_:
            if any(c.name.matches(cte.name.name) for c in ctes):
                raise _name_error(
                    f"Duplicate WITH query name '{cte.name.name}'", cte.name, cte.name.name
                )
            checked, result = self.query(cte.query, None, ctes)
            ctes = (*ctes, _Cte(name=cte.name, result=result))
            new_with.append(replace(cte, query=checked))
        body, result, scope = self.body(q.body, outer, ctes)
        order = tuple(self.order_item(o, result, scope) for o in q.order_by)
        return replace(q, with_=tuple(new_with), body=body, order_by=order), result

    def body(
        self, body: a.QueryBody, outer: _Scope | None, ctes: tuple[_Cte, ...]
    ) -> tuple[a.QueryBody, _Result, _Scope | None]:
        if isinstance(body, a.SelectQuery):
            return self.select(body, outer, ctes)
        if isinstance(body, a.Query):
            checked, result = self.query(body, outer, ctes)
            return checked, result, None
        left, lres, _ = self.body(body.left, outer, ctes)
        right, rres, _ = self.body(body.right, outer, ctes)
        if not lres.open and not rres.open and len(lres.columns) != len(rres.columns):
            raise _type_error(
                f"The operands of {body.op} have {len(lres.columns)} and "
                f"{len(rres.columns)} columns; they must have the same number",
                body,
            )
        for i, (lt, rt) in enumerate(zip(lres.types, rres.types, strict=False)):
            if not self.bnf_only and not _comparable_types(lt, rt, string_literal=False):
                raise _type_error(
                    f"Column {i + 1} of {body.op} combines {_kind(lt)} and {_kind(rt)} values",
                    body,
                )
        columns, types = [], []
        for i, (col, typ) in enumerate(zip(lres.columns, lres.types, strict=True)):
            other = rres.columns[i] if i < len(rres.columns) else None
            if other is None or other.source is not col.source:
                col = replace(col, source=None, source_table=None)
            other_type = rres.types[i] if i < len(rres.types) else t.UNKNOWN
            if typ.is_unknown:
                typ = other_type
            elif typ.is_numeric and other_type.is_numeric and typ != other_type:
                typ = fn.promote([typ, other_type])
            if typ != ValueType(col.datatype, col.arraysize, col.xtype):
                col = replace(col, datatype=typ.datatype, arraysize=typ.arraysize, xtype=typ.xtype)
            columns.append(col)
            types.append(typ)
        result = _Result(columns=columns, types=types, open=lres.open or rres.open)
        return replace(body, left=left, right=right), result, None

    def order_item(self, item: a.OrderItem, result: _Result, scope: _Scope | None) -> a.OrderItem:
        e = item.expr
        if isinstance(e, a.NumericLiteral) and e.is_integer:
            index = _small_int(e.text)
            if index < 1 or (not result.open and index > len(result.columns)):
                raise _type_error(
                    f"ORDER BY {index}: the select list has {len(result.columns)} columns", e
                )
            typed = result.types[index - 1] if index <= len(result.types) else t.UNKNOWN
            return replace(item, expr=replace(e, type_=typed))
        if not self.bnf_only and _constant(e):
            # SQL reads an integer there as a column position: -1 fails in DuckDB, and 1+1
            # would become the position 2 once folded.  A constant sorts nothing anyway.
            raise _type_error(
                "ORDER BY a constant sorts nothing: name a column, an alias or a position "
                f"(1 to {len(result.columns)})",
                e,
            )
        if isinstance(e, a.ColumnRef) and not e.qualifier:
            bound = self.output_ref(e, result)
            if bound is not None:
                return replace(item, expr=bound)
        if scope is not None:
            return replace(item, expr=self.expr(e, scope, None))
        if isinstance(e, a.ColumnRef) and not e.qualifier and result.open:
            info = ColumnInfo(name=e.name.name, datatype=None)
            binding = a.ColumnBinding(range_name=OUTPUT_RANGE, column=e.name.name, info=info)
            return replace(item, expr=replace(e, binding=binding, type_=t.UNKNOWN))
        if isinstance(e, a.ColumnRef) and not e.qualifier:
            raise _name_error(
                f"Unknown output column '{e.name.name}' in ORDER BY",
                e,
                e.name.name,
                [c.name for c in result.columns],
            )
        raise _type_error(
            "ORDER BY of a set operation may only name output columns or their positions", e
        )

    def output_ref(self, ref: a.ColumnRef, result: _Result) -> a.ColumnRef | None:
        for out, typ in zip(result.columns, result.types, strict=True):
            if ref.name.matches(out.name):
                info = _output_as_column(out).info
                binding = a.ColumnBinding(range_name=OUTPUT_RANGE, column=out.name, info=info)
                return replace(ref, binding=binding, type_=typ)
        return None

    # ----------------------------------------------------------------- SELECT

    def select(
        self, sel: a.SelectQuery, outer: _Scope | None, ctes: tuple[_Cte, ...]
    ) -> tuple[a.SelectQuery, _Result, _Scope]:
        if sel.top is not None and sel.top < 0:
            raise _syntax_error("TOP must not be negative", sel)
        scope = _Scope(ranges=[], parent=outer, ctes=ctes)
        from_items = []
        for from_item in sel.from_:
            checked_item, ranges = self.from_item(from_item, scope, outer, ctes)
            self.check_duplicates(scope.ranges, ranges, from_item)
            scope.ranges.extend(ranges)
            from_items.append(checked_item)

        items: list[a.SelectItem | a.Star] = []
        for item in sel.items:
            if isinstance(item, a.Star):
                items.extend(self.expand_star(item, scope))
            else:
                items.append(replace(item, expr=self.expr(item.expr, scope, None)))
        items, result = self.name_outputs(items)

        where = self.cond(sel.where, scope, "WHERE") if sel.where is not None else None
        alias_scope = replace(
            scope,
            aliases={
                c.name.lower(): (c, typ)
                for c, typ in zip(result.columns, result.types, strict=True)
            },
        )
        group_by = tuple(self.expr(g, alias_scope, "GROUP BY") for g in sel.group_by)
        having = self.cond(sel.having, alias_scope, None) if sel.having is not None else None
        if not self.bnf_only:
            self.check_grouping(items, group_by, having, scope)
        checked = replace(
            sel,
            items=tuple(items),
            from_=tuple(from_items),
            where=where,
            group_by=group_by,
            having=having,
        )
        return checked, result, alias_scope

    def check_grouping(
        self,
        items: Sequence[a.SelectItem | a.Star],
        group_by: Sequence[a.Expr],
        having: a.Condition | None,
        scope: _Scope,
    ) -> None:
        """In a grouped query every selected column must be grouped or aggregated (SQL-92
        7.9): DuckDB refuses the query anyway, and MariaDB (under Qserv) would silently return
        an arbitrary row's value per group."""
        exprs = [i.expr for i in items if isinstance(i, a.SelectItem)]
        if not group_by and having is None and not any(_has_aggregate(e) for e in exprs):
            return
        local = {r.range_name for r in scope.ranges}
        keys = {
            (g.binding.range_name, g.binding.column)
            for g in group_by
            if isinstance(g, a.ColumnRef) and g.binding is not None
        }
        grouped_outputs = {
            g.binding.column.lower()
            for g in group_by
            if isinstance(g, a.ColumnRef)
            and g.binding is not None
            and g.binding.range_name == OUTPUT_RANGE
        }
        positions = {  # GROUP BY 2, as MySQL and DuckDB read it
            int(g.text) for g in group_by if isinstance(g, a.NumericLiteral) and g.is_integer
        }
        for position, item in enumerate(items, start=1):
            if not isinstance(item, a.SelectItem) or position in positions:
                continue
            if item.alias is not None and item.alias.name.lower() in grouped_outputs:
                continue
            bad = _ungrouped(item.expr, keys, group_by, local)
            if bad is not None:
                raise _type_error(
                    f"Column '{_dotted((*bad.qualifier, bad.name))}' must be listed in GROUP BY "
                    "or used inside an aggregate function",
                    bad,
                )

    def check_duplicates(self, existing: list[_Range], new: list[_Range], at: a.Node) -> None:
        seen = {r.alias.name.lower() for r in existing if r.alias is not None}
        bare = {r.names[-1].lower() for r in existing if r.alias is None}
        for r in new:
            if r.alias is None:
                continue
            key = r.alias.name.lower()
            if key in seen or key in bare:
                raise _name_error(
                    f"The name '{r.alias.name}' is given to two tables in the same FROM clause",
                    r.alias,
                    r.alias.name,
                )
            seen.add(key)

    def name_outputs(
        self, items: list[a.SelectItem | a.Star]
    ) -> tuple[list[a.SelectItem | a.Star], _Result]:
        used: set[str] = set()
        out_items: list[a.SelectItem | a.Star] = []
        result = _Result(columns=[], types=[])
        for position, item in enumerate(items, start=1):
            if isinstance(item, a.Star):
                out_items.append(item)
                result.open = True
                continue
            base = item.alias.name if item.alias is not None else _natural_name(item.expr)
            name = base or f"col_{position}"
            n = 2
            while name.lower() in used:
                name, n = f"{base or f'col_{position}'}_{n}", n + 1
            used.add(name.lower())
            if item.alias is None or item.alias.name != name:
                alias = a.Identifier(name=name, delimited=True)
                item = a.SelectItem(expr=item.expr, alias=alias, pos=item.pos)
            out_items.append(item)
            result.columns.append(self.describe(item.expr, name))
            result.types.append(_type_of(item.expr))
        return out_items, result

    def describe(self, e: a.Expr, name: str) -> OutputColumn:
        node, source = self.sources.get(id(e), (None, None))
        return _describe(e, name, source if node is e else None)

    def expand_star(self, star: a.Star, scope: _Scope) -> list[a.SelectItem | a.Star]:
        if star.qualifier:
            matches = [r for r in scope.ranges if r.answers_to(star.qualifier)]
            if not matches and self.bnf_only:  # as for qualified columns
                qualifier = (a.Identifier(name=star.qualifier[-1].name, delimited=True),)
                return [a.Star(qualifier=qualifier, pos=star.pos)]
            if not matches:
                raise _name_error(
                    f"Unknown table '{_dotted(star.qualifier)}' in '{_dotted(star.qualifier)}.*'",
                    star,
                    _dotted(star.qualifier),
                    [r.label for r in scope.ranges],
                )
            if len(matches) > 1:
                raise _name_error(
                    f"Ambiguous table '{_dotted(star.qualifier)}': it names "
                    + ", ".join(f"'{r.range_name}'" for r in matches),
                    star,
                    _dotted(star.qualifier),
                )
            ranges, skip_hidden = matches, False
        else:
            ranges, skip_hidden = scope.ranges, True
        items: list[a.SelectItem | a.Star] = []
        for r in ranges:
            qualifier = (a.Identifier(name=r.range_name, delimited=True),)
            if r.open:
                items.append(a.Star(qualifier=qualifier, pos=star.pos))
                continue
            for col in r.columns:
                if skip_hidden and (r.range_name, col.info.name.lower()) in scope.hidden:
                    continue
                ref = self.bound_ref(r, col, star.pos, qualifier)
                items.append(a.SelectItem(expr=ref, alias=None, pos=star.pos))
        return items

    def bound_ref(
        self,
        r: _Range,
        col: _Column,
        pos: a.Position | None,
        qualifier: tuple[a.Identifier, ...],
    ) -> a.ColumnRef:
        bound = a.ColumnRef(
            qualifier=qualifier,
            name=a.Identifier(name=col.info.name, delimited=True),
            binding=a.ColumnBinding(range_name=r.range_name, column=col.sql_name, info=col.info),
            type_=col.info.value_type,
            pos=pos,
        )
        self.sources[id(bound)] = (bound, col)
        return bound

    # ----------------------------------------------------------------- FROM

    def from_item(
        self,
        item: a.FromItem,
        scope: _Scope,
        outer: _Scope | None,
        ctes: tuple[_Cte, ...],
    ) -> tuple[a.FromItem, list[_Range]]:
        if isinstance(item, a.TableRef):
            ref, rng = self.table_ref(item, ctes)
            return ref, [rng]
        if isinstance(item, a.DerivedTable):
            checked, result = self.query(item.query, outer, ctes)
            rng = _Range(
                range_name=item.alias.name,
                alias=item.alias,
                names=(item.alias.name,),
                index=_Columns(_output_as_column(c) for c in result.columns),
                open=result.open,
            )
            return replace(item, query=checked), [rng]
        if item.natural and (item.condition is not None or item.using is not None):
            raise _syntax_error("A NATURAL JOIN takes neither ON nor USING", item)
        left, lranges = self.from_item(item.left, scope, outer, ctes)
        right, rranges = self.from_item(item.right, scope, outer, ctes)
        self.check_duplicates(lranges, rranges, item)
        join_scope = _Scope(
            ranges=[*lranges, *rranges],
            parent=outer,
            merged=dict(scope.merged),
            hidden=set(scope.hidden),
            ctes=ctes,
        )
        if item.natural or item.using is not None:
            names = list(item.using or ())
            if item.natural:
                names = self.common_columns(lranges, rranges)
            for ident in names:
                self.merge(ident, lranges, rranges, item, join_scope)
        condition = None
        if item.condition is not None:
            condition = self.cond(item.condition, join_scope, "ON")
        scope.merged.update(join_scope.merged)
        scope.hidden.update(join_scope.hidden)
        return replace(item, left=left, right=right, condition=condition), [*lranges, *rranges]

    def common_columns(self, left: list[_Range], right: list[_Range]) -> list[a.Identifier]:
        right_names = {c.info.name.lower() for r in right for c in r.columns}
        names: list[a.Identifier] = []
        for r in left:
            for c in r.columns:
                lowered = c.info.name.lower()
                if lowered in right_names and all(n.name.lower() != lowered for n in names):
                    names.append(a.Identifier(name=c.info.name))
        return names

    def merge(
        self,
        ident: a.Identifier,
        left: list[_Range],
        right: list[_Range],
        join: a.Join,
        scope: _Scope,
    ) -> None:
        sides = []
        for side in (left, right):
            inner = scope.merged.get(ident.name.lower())
            if inner is not None and any(inner[0] is r for r in side):
                sides.append(inner)
                continue
            found = [(r, c) for r in side for c in r.find(ident)]
            if not found:
                opened = [r for r in side if r.open]
                if not opened:
                    raise _name_error(
                        f"Unknown column '{ident.name}' in USING: one side of the join "
                        "does not have it",
                        ident,
                        ident.name,
                        [c.info.name for r in side for c in r.columns],
                    )
                found = [(opened[0], opened[0].open_column(ident))]
            if len(found) > 1:
                raise _name_error(
                    f"Ambiguous column '{ident.name}' in USING: it is in "
                    + ", ".join(f"'{r.label}'" for r, _ in found),
                    ident,
                    ident.name,
                )
            sides.append(found[0])
        keep, drop = (sides[1], sides[0]) if join.kind == "RIGHT" else (sides[0], sides[1])
        scope.merged[ident.name.lower()] = keep
        scope.hidden.add((drop[0].range_name, drop[1].info.name.lower()))

    def table_ref(self, ref: a.TableRef, ctes: tuple[_Cte, ...]) -> tuple[a.TableRef, _Range]:
        if len(ref.name) > 3:
            raise _name_error(
                f"Table name '{_dotted(ref.name)}' has too many parts", ref, _dotted(ref.name)
            )
        if len(ref.name) == 1:
            for cte in reversed(ctes):
                if ref.name[0].matches(cte.name.name):
                    return self.cte_range(ref, cte)
        if self.catalog is None:
            return self.open_range(ref)
        table = self.find_table(ref)
        self.note_table(table)
        range_name = ref.alias.name if ref.alias else self.fresh_range_name(table.name)
        rng = _Range(
            range_name=range_name,
            alias=ref.alias,
            names=(table.schema, table.name),
            index=_table_columns(table),
            table=table,
        )
        return replace(ref, binding=a.TableBinding(table=table, range_name=range_name)), rng

    def cte_range(self, ref: a.TableRef, cte: _Cte) -> tuple[a.TableRef, _Range]:
        range_name = ref.alias.name if ref.alias else self.fresh_range_name(cte.name.name)
        rng = _Range(
            range_name=range_name,
            alias=ref.alias,
            names=(cte.name.name,),
            index=_Columns(_output_as_column(c) for c in cte.result.columns),
            open=cte.result.open,
        )
        return replace(ref, binding=a.TableBinding(table=None, range_name=range_name)), rng

    def open_range(self, ref: a.TableRef) -> tuple[a.TableRef, _Range]:
        name = ref.name[-1].name
        schema = ref.name[-2].name if len(ref.name) > 1 else ""
        table = TableInfo(schema=schema, name=name, columns=())
        self.note_table(table)
        range_name = ref.alias.name if ref.alias else self.fresh_range_name(name)
        names = (schema, name) if schema else (name,)
        rng = _Range(
            range_name=range_name, alias=ref.alias, names=names, index=_Columns(()), open=True
        )
        return replace(ref, binding=a.TableBinding(table=table, range_name=range_name)), rng

    def find_table(self, ref: a.TableRef) -> TableInfo:
        parts = ref.name
        table_id = parts[-1]
        schema_id = parts[-2] if len(parts) > 1 else None
        found = [
            tb
            for tb in self.catalog_tables
            if table_id.matches(tb.name) and (schema_id is None or schema_id.matches(tb.schema))
        ]
        if len(found) > 1:
            exact = [
                tb
                for tb in found
                if tb.name == table_id.name and (schema_id is None or tb.schema == schema_id.name)
            ]
            if len(exact) == 1:
                found = exact
        if len(found) == 1:
            return found[0]
        written = _dotted(parts)
        if found:
            line, column = _where(ref)
            raise _NameError(
                f"Ambiguous table '{written}': qualify it with its schema",
                line=line,
                column=column,
                name=written,
                suggestions=[tb.qualified_name for tb in found][:3],
            )
        vocabulary = [tb.qualified_name for tb in self.catalog_tables]
        if schema_id is None:
            vocabulary += [tb.name for tb in self.catalog_tables]
        raise _name_error(f"Unknown table '{written}'", ref, written, vocabulary)

    # ----------------------------------------------------------------- columns

    def column(self, ref: a.ColumnRef, scope: _Scope) -> a.ColumnRef:
        if len(ref.qualifier) > 3:
            raise _name_error(
                f"Column name '{_dotted((*ref.qualifier, ref.name))}' has too many parts",
                ref,
                ref.name.name,
            )
        if ref.qualifier:
            rng, col = self.qualified_column(ref, scope)
        else:
            found = self.unqualified_column(ref, scope)
            if isinstance(found, a.ColumnRef):
                return found
            rng, col = found
        binding = a.ColumnBinding(range_name=rng.range_name, column=col.sql_name, info=col.info)
        bound = replace(ref, binding=binding, type_=col.info.value_type)
        self.sources[id(bound)] = (bound, col)
        return bound

    def qualified_column(self, ref: a.ColumnRef, scope: _Scope) -> tuple[_Range, _Column]:
        level: _Scope | None = scope
        while level is not None:
            matches = [r for r in level.ranges if r.answers_to(ref.qualifier)]
            if len(matches) > 1:
                raise _name_error(
                    f"Ambiguous table '{_dotted(ref.qualifier)}': it names "
                    + ", ".join(f"'{r.label}'" for r in matches)
                    + "; give them different aliases",
                    ref,
                    _dotted(ref.qualifier),
                )
            if matches:
                rng = matches[0]
                cols = rng.find(ref.name)
                if len(cols) == 1:
                    return rng, cols[0]
                if len(cols) > 1:
                    raise _name_error(
                        f"Ambiguous column '{ref.name.name}' in '{rng.label}'", ref, ref.name.name
                    )
                if rng.open:
                    return rng, rng.open_column(ref.name)
                raise _name_error(
                    f"Unknown column '{ref.name.name}' in table '{rng.label}'",
                    ref,
                    ref.name.name,
                    [c.info.name for c in rng.columns],
                )
            level = level.parent
        if self.bnf_only:  # the BNF does not say which tables a qualifier may name
            unlisted = _unlisted_range(ref.qualifier)
            return unlisted, unlisted.open_column(ref.name)
        hidden = [
            r
            for lvl in _levels(scope)
            for r in lvl.ranges
            if r.alias is not None and r.table is not None and _names_table(ref.qualifier, r.table)
        ]
        if hidden:
            line, column = _where(ref)
            raise _NameError(
                f"Unknown table '{_dotted(ref.qualifier)}' in column reference "
                f"'{_dotted((*ref.qualifier, ref.name))}': the query calls that table "
                f"'{hidden[0].label}', and an alias replaces the table name",
                line=line,
                column=column,
                name=_dotted(ref.qualifier),
                suggestions=[f"{hidden[0].label}.{ref.name.name}"],
            )
        vocabulary = [r.label for lvl in _levels(scope) for r in lvl.ranges]
        raise _name_error(
            f"Unknown table '{_dotted(ref.qualifier)}' in column reference "
            f"'{_dotted((*ref.qualifier, ref.name))}'",
            ref,
            _dotted(ref.qualifier),
            vocabulary,
        )

    def unqualified_column(
        self, ref: a.ColumnRef, scope: _Scope
    ) -> tuple[_Range, _Column] | a.ColumnRef:
        level: _Scope | None = scope
        while level is not None:
            merged = level.merged.get(ref.name.name.lower())
            if merged is not None:
                return merged
            found = [(r, c) for r in level.ranges for c in r.find(ref.name)]
            if len(found) > 1:
                line, column = _where(ref)
                raise _NameError(
                    f"Ambiguous column '{ref.name.name}': it is in "
                    + ", ".join(f"'{r.label}'" for r, _ in found)
                    + "; qualify it with a table name",
                    line=line,
                    column=column,
                    name=ref.name.name,
                    suggestions=[f"{r.label}.{c.info.name}" for r, c in found][:3],
                )
            if found:
                return found[0]
            alias = level.aliases.get(ref.name.name.lower())
            if alias is not None:
                out, typ = alias
                info = _output_as_column(out).info
                binding = a.ColumnBinding(range_name=OUTPUT_RANGE, column=out.name, info=info)
                return replace(ref, binding=binding, type_=typ)
            opened = [r for r in level.ranges if r.open]
            if opened:
                return opened[0], opened[0].open_column(ref.name)
            level = level.parent
        vocabulary = [c.info.name for lvl in _levels(scope) for r in lvl.ranges for c in r.columns]
        raise _name_error(f"Unknown column '{ref.name.name}'", ref, ref.name.name, vocabulary)

    # ----------------------------------------------------------------- conditions

    def cond(self, c: a.Condition, scope: _Scope, no_agg: str | None) -> a.Condition:
        if isinstance(c, a.And | a.Or):
            return replace(
                c, left=self.cond(c.left, scope, no_agg), right=self.cond(c.right, scope, no_agg)
            )
        if isinstance(c, a.Not):
            return replace(c, operand=self.cond(c.operand, scope, no_agg))
        if isinstance(c, a.Comparison):
            left = self.expr(c.left, scope, no_agg)
            right = self.expr(c.right, scope, no_agg)
            left, right = self.as_number(right, left), self.as_number(left, right)
            self.require_comparable(left, right, c)
            return replace(c, left=left, right=right)
        if isinstance(c, a.Between):
            operand = self.expr(c.operand, scope, no_agg)
            low = self.expr(c.low, scope, no_agg)
            high = self.expr(c.high, scope, no_agg)
            low, high = self.as_number(operand, low), self.as_number(operand, high)
            self.require_comparable(operand, low, c)
            self.require_comparable(operand, high, c)
            return replace(c, operand=operand, low=low, high=high)
        if isinstance(c, a.Like):
            operand = self.expr(c.operand, scope, no_agg)
            pattern = self.expr(c.pattern, scope, no_agg)
            word = "ILIKE" if c.case_insensitive else "LIKE"
            for side in (operand, pattern):
                if not self.fits(side, "string"):
                    raise _type_error(f"{word} needs strings, not {_describe_kind(side)}", side)
            return replace(c, operand=operand, pattern=pattern)
        if isinstance(c, a.InList):
            operand = self.expr(c.operand, scope, no_agg)
            items = tuple(self.as_number(operand, self.expr(i, scope, no_agg)) for i in c.items)
            for i in items:
                self.require_comparable(operand, i, i)
            return replace(c, operand=operand, items=items)
        if isinstance(c, a.InSubquery):
            operand = self.expr(c.operand, scope, no_agg)
            query, result = self.query(c.query, scope, scope.ctes)
            one = self.single_column(result, c, "IN")
            if not self.bnf_only and not _comparable_types(
                _type_of(operand), one, string_literal=isinstance(operand, a.StringLiteral)
            ):
                raise _type_error(
                    f"IN compares {_describe_kind(operand)} with a subquery of {_kind(one)} values",
                    c,
                )
            return replace(c, operand=operand, query=query)
        if isinstance(c, a.IsNull):
            return replace(c, operand=self.expr(c.operand, scope, no_agg))
        if isinstance(c, a.Exists):
            query, _ = self.query(c.query, scope, scope.ctes)
            return replace(c, query=query)
        raise _type_error(f"Not a condition: {type(c).__name__}", c)

    def as_number(self, subject: a.Expr, other: a.Expr) -> a.Expr:
        """``other`` as a number when it is a string literal compared with a number."""
        if (
            not self.bnf_only
            and isinstance(other, a.StringLiteral)
            and not isinstance(subject, a.StringLiteral)
            and _kind(_type_of(subject)) == "numeric"
        ):
            return _string_as_number(
                other, "A number can only be compared with a number", exact=True
            )
        return other

    def require_comparable(self, left: a.Expr, right: a.Expr, at: a.Node) -> None:
        if not self.bnf_only and not _comparable(left, right):
            raise _type_error(
                f"Cannot compare {_describe_kind(left)} with {_describe_kind(right)}", at
            )

    def fits(self, e: a.Expr, kind: fn.ArgKind) -> bool:
        """Whether ``e`` may stand where a ``kind`` is wanted: by its type, or in syntax-only
        mode also by its form, as the BNF allows (see ``_stands_anywhere``)."""
        return _fits(e, kind) or (self.bnf_only and _stands_anywhere(e, kind))

    def single_column(self, result: _Result, at: a.Node, what: str) -> ValueType:
        if result.open:
            return result.types[0] if len(result.types) == 1 else t.UNKNOWN
        if len(result.columns) != 1:
            raise _type_error(
                f"The subquery of {what} must select one column, not {len(result.columns)}", at
            )
        return result.types[0]

    # ----------------------------------------------------------------- expressions

    def expr(self, e: a.Expr, scope: _Scope, no_agg: str | None) -> a.Expr:
        if isinstance(e, a.NumericLiteral):
            return replace(e, type_=_literal_type(e))
        if isinstance(e, a.StringLiteral):
            return replace(e, type_=t.STRING)
        if isinstance(e, a.NullLiteral):
            return replace(e, type_=t.NULL)
        if isinstance(e, a.ColumnRef):
            return self.column(e, scope)
        if isinstance(e, a.UnaryOp):
            operand = self.expr(e.operand, scope, no_agg)
            if not self.fits(operand, "numeric"):
                raise _type_error(f"Sign '{e.op}' needs a number, not {_describe_kind(operand)}", e)
            return replace(e, operand=operand, type_=fn.promote([_type_of(operand)]))
        if isinstance(e, a.BinaryOp):
            return self.binary(e, scope, no_agg)
        if isinstance(e, a.FunctionCall):
            args = tuple(self.expr(x, scope, no_agg) for x in e.args)
            return self.call(replace(e, args=args))
        if isinstance(e, a.Aggregate):
            return self.aggregate(e, scope, no_agg)
        if isinstance(e, a.Cast):
            return self.cast(e, scope, no_agg)
        if isinstance(e, a.ScalarSubquery):
            query, result = self.query(e.query, scope, scope.ctes)
            typ = self.single_column(result, e, "a scalar subquery")
            return replace(e, query=query, type_=typ)
        if isinstance(e, a.Point | a.Circle | a.Box | a.Polygon | a.Region):
            return self.geometry(e, scope, no_agg)
        raise _type_error(f"Not a value expression: {type(e).__name__}", e)

    def binary(self, e: a.BinaryOp, scope: _Scope, no_agg: str | None) -> a.Expr:
        left = self.expr(e.left, scope, no_agg)
        right = self.expr(e.right, scope, no_agg)
        if e.op == "||":
            for side in (left, right):
                if _kind(_type_of(side)) == "geometry" and not self.fits(side, "string"):
                    raise _type_error(
                        f"'||' concatenates strings and numbers, not {_describe_kind(side)}",
                        side,
                    )
            return replace(e, left=left, right=right, type_=t.STRING)
        operands: list[a.Expr] = []
        for side in (left, right):
            if isinstance(side, a.StringLiteral):
                side = _string_as_number(side, f"Operator '{e.op}' needs numbers")
            elif not self.fits(side, "numeric"):
                raise _type_error(
                    f"Operator '{e.op}' needs numbers, not {_describe_kind(side)}", side
                )
            operands.append(side)
        left, right = operands
        typ = fn.promote([_numeric_view(left), _numeric_view(right)])
        if e.op == "/" and not typ.is_unknown:
            typ = t.DOUBLE
        return replace(e, left=left, right=right, type_=typ)

    def call(self, e: a.FunctionCall) -> a.Expr:
        spec = fn.BUILTINS.get(e.name.upper())
        if spec is None:
            if e.name.upper() in fn.GEOMETRY_CONSTRUCTORS or e.name.upper() in fn.AGGREGATES:
                raise _type_error(
                    f"Wrong number of arguments for {e.name.upper()}: {len(e.args)}", e
                )
            return self.user_call(e)
        n = len(e.args)
        if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            raise _type_error(
                f"{spec.name} takes {spec.arity_text()} argument"
                f"{'' if spec.arity_text() == '1' else 's'}, not {n}",
                e,
            )
        if spec.name == "DISTANCE" and n != 2:
            if n != 4:
                raise _type_error(f"DISTANCE takes 2 points or 4 numbers, not {n} arguments", e)
            kinds: Sequence[fn.ArgKind] = ("numeric",) * 4
        else:
            kinds = [spec.arg_kind(i) for i in range(n)]
        for i, (arg, kind) in enumerate(zip(e.args, kinds, strict=True)):
            if not self.fits(arg, kind):
                raise _type_error(
                    f"Argument {i + 1} of {spec.name} must be {_KIND_WORDS[kind]}, "
                    f"not {_describe_kind(arg)}",
                    arg,
                )
        if spec.name == "IN_UNIT" and not isinstance(e.args[1], a.StringLiteral):
            raise _type_error("The unit of IN_UNIT must be a string literal", e.args[1])
        if spec.name == "COALESCE":
            for arg in e.args[1:]:
                self.require_comparable(e.args[0], arg, arg)
        typ = fn.result_type(spec, [_type_of(x) for x in e.args])
        return replace(e, name=spec.name, type_=typ)

    def user_call(self, e: a.FunctionCall) -> a.Expr:
        udf = self.udfs.get(e.name.lower())
        if udf is None:
            if not self.strict_functions:
                return replace(e, type_=t.UNKNOWN)
            vocabulary = [*fn.KNOWN_NAMES, *(f.name for f in self.udfs.values())]
            raise _name_error(f"Unknown function '{e.name}'", e, e.name, vocabulary)
        if udf.arg_count is not None and len(e.args) != udf.arg_count:
            raise _type_error(
                f"{udf.name} takes {udf.arg_count} argument"
                f"{'' if udf.arg_count == 1 else 's'}, not {len(e.args)}",
                e,
            )
        return replace(e, type_=udf.returns)

    def aggregate(self, e: a.Aggregate, scope: _Scope, no_agg: str | None) -> a.Expr:
        if no_agg is not None and not self.bnf_only:
            raise _type_error(f"Aggregate function {e.func} is not allowed in {no_agg}", e)
        if e.arg is None:
            if e.func != "COUNT":
                raise _type_error(f"{e.func}(*) is not allowed; only COUNT(*)", e)
            return replace(e, type_=t.LONG)
        arg = self.expr(e.arg, scope, "the argument of an aggregate function")
        typ = _type_of(arg)
        typed = not self.bnf_only  # the BNF's general_set_function takes any value_expression
        if typed and e.func in ("AVG", "SUM") and not _fits(arg, "numeric"):
            raise _type_error(f"{e.func} needs numbers, not {_describe_kind(arg)}", arg)
        if typed and e.func in ("MIN", "MAX") and _kind(typ) == "geometry":
            raise _type_error(f"{e.func} cannot order {_describe_kind(arg)}", arg)
        if e.func == "COUNT":
            result = t.LONG
        elif e.func == "AVG":
            result = t.DOUBLE
        elif e.func == "SUM":
            result = fn.promote([typ])
            if result.is_integer:
                result = t.LONG
        else:
            result = typ
        return replace(e, arg=arg, type_=result)

    def cast(self, e: a.Cast, scope: _Scope, no_agg: str | None) -> a.Expr:
        operand = self.expr(e.operand, scope, no_agg)
        target = fn.type_for_name(e.target.name, e.target.length)
        if target is None or e.target.name.upper() in ("REGION", "BOOLEAN", "INT", "DOUBLE"):
            raise _type_error(f"Cannot CAST to {e.target.name}", e.target)
        # The BNF's cast_specification takes any value_expression.
        kind = "unknown" if self.bnf_only else _kind(_type_of(operand))
        if target.is_geometry and kind in ("numeric", "timestamp"):
            raise _type_error(f"Cannot CAST {_describe_kind(operand)} to {e.target.name}", e)
        if not target.is_geometry and kind == "geometry" and not target.is_string:
            raise _type_error(f"Cannot CAST {_describe_kind(operand)} to {e.target.name}", e)
        return replace(e, operand=operand, type_=target)

    def geometry(self, e: a.Expr, scope: _Scope, no_agg: str | None) -> a.Expr:
        def sub(x: a.Expr, kind: fn.ArgKind, what: str) -> a.Expr:
            checked = self.expr(x, scope, no_agg)
            if not self.fits(checked, kind):
                raise _type_error(
                    f"The {what} must be {_KIND_WORDS[kind]}, not {_describe_kind(checked)}",
                    checked,
                )
            return checked

        coordsys = getattr(e, "coordsys", None)
        if coordsys is not None:
            if not isinstance(coordsys, a.StringLiteral):
                raise _type_error("The coordinate system must be a string literal", coordsys)
            e = replace(e, coordsys=replace(coordsys, type_=t.STRING))  # type: ignore[call-arg]
        if isinstance(e, a.Point):
            return replace(
                e,
                x=sub(e.x, "numeric", "first coordinate of POINT"),
                y=sub(e.y, "numeric", "second coordinate of POINT"),
                type_=t.POINT,
            )
        if isinstance(e, a.Circle):
            return replace(
                e,
                center=sub(e.center, "point", "center of CIRCLE"),
                radius=sub(e.radius, "numeric", "radius of CIRCLE"),
                type_=t.CIRCLE,
            )
        if isinstance(e, a.Box):
            return replace(
                e,
                center=sub(e.center, "point", "center of BOX"),
                width=sub(e.width, "numeric", "width of BOX"),
                height=sub(e.height, "numeric", "height of BOX"),
                type_=t.POLYGON,
            )
        if isinstance(e, a.Polygon):
            if len(e.vertices) < 3:
                raise _type_error(f"POLYGON needs at least 3 vertices, not {len(e.vertices)}", e)
            vertices = tuple(sub(v, "point", "vertex of POLYGON") for v in e.vertices)
            return replace(e, vertices=vertices, type_=t.POLYGON)
        assert isinstance(e, a.Region)
        return replace(e, text=replace(e.text, type_=t.STRING), type_=t.REGION)


def _has_aggregate(e: a.Node) -> bool:
    """Whether ``e`` aggregates at this query level (subqueries aggregate for themselves)."""
    if isinstance(e, a.Aggregate):
        return True
    if isinstance(e, a.ScalarSubquery):
        return False
    return any(_has_aggregate(c) for c in a.children(e))


def _ungrouped(
    e: a.Expr,
    keys: set[tuple[str, str]],
    group_by: Sequence[a.Expr],
    local: set[str],
) -> a.ColumnRef | None:
    """The first column of this query level that ``e`` uses outside aggregates and grouping
    expressions, or None."""
    if isinstance(e, a.Aggregate | a.ScalarSubquery) or e in group_by:
        return None
    if isinstance(e, a.ColumnRef):
        b = e.binding
        if b is None or b.range_name not in local or (b.range_name, b.column) in keys:
            return None
        return e
    for child in a.children(e):
        if isinstance(child, a.Expr):
            found = _ungrouped(child, keys, group_by, local)
            if found is not None:
                return found
    return None


def _literal_type(e: a.NumericLiteral) -> ValueType:
    if not e.is_integer:
        return t.DOUBLE
    value = _small_int(e.text)
    if value < 2**31:
        return t.INT
    return t.LONG if value < 2**63 else t.DOUBLE


def _small_int(digits: str) -> int:
    """The value of an integer literal, capped: Python refuses int() of 4300+ digits, and
    nothing past 2**64 means anything to a backend anyway."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 20 else 2**64


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _aliases(root: a.Node) -> Iterator[str]:
    """Every table alias of the tree, lower-cased, so generated range names avoid them all.

    Iterative, with the field names cached per node class: ``ast.walk`` is general and
    recursive, and this runs on every query.
    """
    stack: list[object] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            stack.extend(node)
            continue
        if not isinstance(node, a.Node):
            continue
        if isinstance(node, a.TableRef | a.DerivedTable) and node.alias is not None:
            yield node.alias.name.lower()
        names = _CHILD_FIELDS.get(type(node))
        if names is None:
            skip = ("pos", "type_", "binding")
            names = tuple(f.name for f in fields(node) if f.name not in skip)
            _CHILD_FIELDS[type(node)] = names
        stack.extend(getattr(node, n) for n in names)


def _unlisted_range(qualifier: Sequence[a.Identifier]) -> _Range:
    """Syntax-only mode: the unknown table a qualifier names when no range of the FROM clause
    answers to it, rendered as written (its last part)."""
    name = qualifier[-1].name
    return _Range(range_name=name, alias=None, names=(name,), index=_Columns(()), open=True)


def _names_table(qualifier: Sequence[a.Identifier], table: TableInfo) -> bool:
    wanted = list(qualifier[-2:])
    mine = (table.schema, table.name)[2 - len(wanted) :]
    return all(q.matches(n) for q, n in zip(wanted, mine, strict=True))


def _levels(scope: _Scope) -> Iterable[_Scope]:
    level: _Scope | None = scope
    while level is not None:
        yield level
        level = level.parent


_NUMBER_IN_STRING = re.compile(r"\s*([+-]?)(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\s*")


def _constant(e: a.Expr) -> bool:
    """Whether ``e`` is built from literals alone (no column, aggregate, call or subquery)."""
    return all(
        isinstance(n, a.NumericLiteral | a.StringLiteral | a.NullLiteral | a.UnaryOp | a.BinaryOp)
        for n in a.walk(e)
    )


def _string_as_number(e: a.StringLiteral, refusal: str, *, exact: bool = False) -> a.Expr:
    """A string literal standing for a number (``'30' * 2``, ``objectId = '123'``, which ADQL
    allows) as the number it holds.

    Backends differ on strings there (DuckDB refuses ``'30' * ra`` and fails at run time on
    ``dec > 'x'``), and a string that holds no number is the client's mistake, not the
    database's: ``refusal`` starts the message.  In arithmetic (``exact`` false) the number is
    written as a DOUBLE literal; compared with a column it keeps its digits (a 64-bit id must
    not pass through a double).
    """
    m = _NUMBER_IN_STRING.fullmatch(e.value)
    if m is None or math.isinf(float(m.group(2))):
        raise _type_error(f"{refusal}, not the string '{e.value[:40]}'", e)
    digits = m.group(2)
    if not exact and "e" not in digits.lower():
        digits += "e0"
    literal = a.NumericLiteral(text=digits, pos=e.pos)
    typ = _literal_type(literal) if exact else t.DOUBLE
    number: a.Expr = replace(literal, type_=typ)
    if m.group(1) == "-":
        number = a.UnaryOp(op="-", operand=number, pos=e.pos, type_=typ)
    return number


def _numeric_view(e: a.Expr) -> ValueType:
    """String literals in arithmetic are numbers in disguise (``'30'*1323``)."""
    if isinstance(e, a.StringLiteral):
        return t.DOUBLE
    typ = _type_of(e)
    return typ if _kind(typ) != "other" else t.UNKNOWN


# --------------------------------------------------------------------------- output metadata

_CONSTRUCTOR_NAMES: dict[type, str] = {
    a.Point: "point",
    a.Circle: "circle",
    a.Box: "box",
    a.Polygon: "polygon",
    a.Region: "region",
}


def _natural_name(e: a.Expr) -> str | None:
    """The name a select item gets when it has no alias; None means "col_N"."""
    if isinstance(e, a.ColumnRef):
        return e.binding.info.name if e.binding is not None else e.name.name
    if isinstance(e, a.Aggregate):
        return e.func.lower()
    if isinstance(e, a.FunctionCall):
        return e.name.lower()
    return _CONSTRUCTOR_NAMES.get(type(e))


def _unit(e: a.Expr) -> str | None:
    """The unit of an expression's values, where it follows from its operands."""
    if isinstance(e, a.ColumnRef):
        return e.binding.info.unit if e.binding is not None else None
    if isinstance(e, a.Aggregate):
        return None if e.func == "COUNT" or e.arg is None else _unit(e.arg)
    if isinstance(e, a.UnaryOp):
        return _unit(e.operand)
    if isinstance(e, a.BinaryOp) and e.op in ("+", "-"):
        left, right = _unit(e.left), _unit(e.right)
        return left if left == right else None
    if isinstance(e, a.Cast) and _type_of(e).is_numeric:
        return _unit(e.operand)
    if isinstance(e, a.FunctionCall):
        spec = fn.BUILTINS.get(e.name.upper())
        if spec is None:
            return None
        if spec.unit == "keep" and e.args:
            return _unit(e.args[0])
        if spec.unit == "literal" and len(e.args) > 1 and isinstance(e.args[1], a.StringLiteral):
            return e.args[1].value
        return {"deg": "deg", "deg2": "deg**2", "rad": "rad"}.get(spec.unit)
    return None


def _describe(e: a.Expr, name: str, source: _Column | None) -> OutputColumn:
    typ = _type_of(e)
    if isinstance(e, a.ColumnRef) and e.binding is not None:
        info = e.binding.info
        return OutputColumn(
            name=name,
            datatype=typ.datatype,
            arraysize=typ.arraysize,
            xtype=typ.xtype,
            unit=info.unit,
            ucd=info.ucd,
            utype=info.utype,
            description=info.description,
            source=source.source if source is not None else None,
            source_table=source.source_table if source is not None else None,
        )
    base = OutputColumn(
        name=name, datatype=typ.datatype, arraysize=typ.arraysize, xtype=typ.xtype, unit=_unit(e)
    )
    if (
        isinstance(e, a.Aggregate)
        and e.func in ("MIN", "MAX")
        and isinstance(e.arg, a.ColumnRef)
        and e.arg.binding is not None
    ):
        info = e.arg.binding.info
        return replace(base, ucd=info.ucd, utype=info.utype, description=info.description)
    return base


# --------------------------------------------------------------------------- entry point


def check(
    query: a.Query,
    catalog: Catalog | None,
    *,
    text: str | None = None,
    functions: Iterable[UserFunction] | None = None,
) -> CheckedQuery:
    """Resolve ``query`` against ``catalog`` (None: syntax-only mode).

    The two modes differ in what counts as an error.  With a catalog, the strict SQL-92 rules
    the service relies on apply: a column qualifier must name a table of the FROM clause in
    scope (not one its alias hides), every selected column of a grouped query must be grouped
    or aggregated, no aggregate may appear in WHERE, ON, GROUP BY or another aggregate, and
    operands must have the types their operators and functions need.  Without a catalog the
    query is judged as the ADQL 2.1 BNF judges it (as the IVOA lyonetia corpus expects):
    dangling qualifiers bind to unknown tables, grouping is not checked, and a
    value_expression_primary (literal, column, aggregate, CAST, COALESCE) or user-defined
    function may stand in any typed position; only a typed function or operator of the wrong
    kind is a type error there (``POINT(...) || 'a'``).  The module docstring has the details.

    ``functions`` declares user-defined functions beyond the catalog's.  Without a catalog,
    giving it (even empty) makes undeclared functions errors, which is how a validator that
    knows a service's UDFs but not its tables behaves.
    """
    checker = _Checker(catalog, functions)
    try:
        checked, result = checker.run(query)
    except RecursionError:
        raise AdqlError("The query is nested too deeply to be checked") from None
    return CheckedQuery(
        query=checked, columns=tuple(result.columns), tables=tuple(checker.tables), text=text
    )


__all__ = ["OUTPUT_RANGE", "check"]
