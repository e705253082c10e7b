"""ADQL text to tree.

The grammar (``grammar.lark``) is LALR(1) with lark's contextual lexer, and the tree is built
*during* parsing: the ``_Builder`` methods run at each reduction, so no intermediate parse tree
is ever allocated.  The parser is built lazily once per process and shared (an LALR parse keeps
its state on the stack of the call).  A fast path (``_fast_parse``) drives lark's tables with a
tighter loop; lark itself parses again only when the text has an error, to report it.

Everything the grammar leaves open is decided here, with positions: which function names are
built-ins (and their arities), the argument shapes of the geometry constructors, reserved words
used as names, the number of parts in a qualified name, integers for TOP/OFFSET.  All failures
surface as ``AdqlSyntaxError``.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, NoReturn, cast

import lark
from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr
from lark.parse_tree_builder import ExpandSingleChild

from tap_service.adql import ast
from tap_service.adql.errors import AdqlError, AdqlSyntaxError

__all__ = ["BUILTIN_FUNCTIONS", "MAX_DEPTH", "RESERVED_WORDS", "parse"]

MAX_DEPTH = 250
"""Deepest tree accepted.  Every later stage (checker, rewrites, dialects, ``==``) recurses over
the tree; a limit here turns a stack overflow deep in the service into a clear syntax error."""

MAX_INT = 2**63 - 1
"""TOP, OFFSET and lengths must fit the 64-bit integers every backend uses for them."""


# The ADQL 2.1 and SQL reserved words of the BNF.  A regular identifier may not be one of them;
# a delimited identifier may.  (END-EXEC cannot be a regular identifier anyway.)
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


RESERVED_WORDS = _words(
    """
    ABS ACOS AREA ASIN ATAN ATAN2 BIGINT BOX CEILING CENTROID CIRCLE CONTAINS COORD1 COORD2
    COORDSYS COS COT DEGREES DISTANCE EXP FLOOR ILIKE INTERSECTS IN_UNIT LOG LOG10 MOD OFFSET PI
    POINT POLYGON POWER RADIANS REGION RAND ROUND SIN SQRT TOP TAN TRUNCATE
    ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT AUTHORIZATION AVG
    BEGIN BETWEEN BIT BIT_LENGTH BOTH BY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER
    CHAR_LENGTH CHARACTER_LENGTH CHECK CLOSE COALESCE COLLATE COLLATION COLUMN COMMIT CONNECT
    CONNECTION CONSTRAINT CONSTRAINTS CONTINUE CONVERT CORRESPONDING COUNT CREATE CROSS CURRENT
    CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATE DAY DEALLOCATE DECIMAL
    DECLARE DEFAULT DEFERRABLE DEFERRED DELETE DESC DESCRIBE DESCRIPTOR DIAGNOSTICS DISCONNECT
    DISTINCT DOMAIN DOUBLE DROP ELSE END ESCAPE EXCEPT EXCEPTION EXEC EXECUTE EXISTS EXTERNAL
    EXTRACT FALSE FETCH FIRST FLOAT FOR FOREIGN FOUND FROM FULL GET GLOBAL GO GOTO GRANT GROUP
    HAVING HOUR IDENTITY IMMEDIATE IN INDICATOR INITIALLY INNER INPUT INSENSITIVE INSERT INT
    INTEGER INTERSECT INTERVAL INTO IS ISOLATION JOIN KEY LANGUAGE LAST LEADING LEFT LEVEL LIKE
    LOCAL LOWER MATCH MAX MIN MINUTE MODULE MONTH NAMES NATIONAL NATURAL NCHAR NEXT NO NOT NULL
    NULLIF NUMERIC OCTET_LENGTH OF ON ONLY OPEN OPTION OR ORDER OUTER OUTPUT OVERLAPS PAD
    PARTIAL POSITION PRECISION PREPARE PRESERVE PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC READ
    REAL REFERENCES RELATIVE RESTRICT REVOKE RIGHT ROLLBACK ROWS SCHEMA SCROLL SECOND SECTION
    SELECT SESSION SESSION_USER SET SIZE SMALLINT SOME SPACE SQL SQLCODE SQLERROR SQLSTATE
    SUBSTRING SUM SYSTEM_USER TABLE TEMPORARY THEN TIME TIMESTAMP TIMEZONE_HOUR TIMEZONE_MINUTE
    TO TRAILING TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION UNIQUE UNKNOWN UPDATE UPPER
    USAGE USER USING VALUE VALUES VARCHAR VARYING VIEW WHEN WHENEVER WHERE WITH WORK WRITE YEAR
    ZONE
    """
)

# Built-in functions parsed through the generic call rule: name -> (min, max) argument count
# (max None: unbounded).  The geometry constructors have their own builders below.
_ARITY: dict[str, tuple[int, int | None]] = {
    **dict.fromkeys(
        _words(
            "ABS CEILING DEGREES EXP FLOOR LOG LOG10 RADIANS SQRT ACOS ASIN ATAN COS COT SIN TAN"
            " LOWER UPPER AREA CENTROID COORDSYS COORD1 COORD2"
        ),
        (1, 1),
    ),
    **dict.fromkeys(_words("MOD POWER ATAN2 CONTAINS INTERSECTS IN_UNIT"), (2, 2)),
    "PI": (0, 0),
    "RAND": (0, 1),
    "ROUND": (1, 2),
    "TRUNCATE": (1, 2),
    "COALESCE": (1, None),
    "DISTANCE": (2, 4),
    "POINT": (2, 3),
    "CIRCLE": (2, 4),
    "BOX": (3, 5),
    "POLYGON": (3, None),
    "REGION": (1, 1),
}
BUILTIN_FUNCTIONS = frozenset(_ARITY)
"""Names of the ADQL built-in functions written with the function-call syntax (aggregates and
CAST have their own syntax)."""

_GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")
_lock = threading.Lock()


# --------------------------------------------------------------------------- errors


def _at(pos: ast.Position | None, detail: str, *, found: str | None = None) -> NoReturn:
    if pos is None:
        raise AdqlSyntaxError(f"Syntax error: {detail}", found=found)
    raise AdqlSyntaxError(
        f"Syntax error at line {pos.line}, column {pos.column}: {detail}",
        line=pos.line,
        column=pos.column,
        found=found,
    )


class _Tok:
    """A token of the fast path: what the callbacks read of a lark ``Token``, and no more."""

    __slots__ = ("column", "line", "type", "value")

    def __init__(self, type_: str, value: str, line: int, column: int) -> None:
        self.type = type_
        self.value = value
        self.line = line
        self.column = column


AnyToken = Token | _Tok


def _tpos(tok: AnyToken) -> ast.Position:
    return ast.Position(tok.line or 1, tok.column or 1)


# --------------------------------------------------------------------------- tree building


def _is_coord_value(e: ast.Expr) -> bool:
    """The BNF's <coord_value>: a point, CENTROID, a user-defined function or a column."""
    if isinstance(e, ast.Point | ast.ColumnRef):
        return True
    return isinstance(e, ast.FunctionCall) and (
        e.name == "CENTROID" or e.name.upper() not in BUILTIN_FUNCTIONS
    )


def _coordsys(e: ast.Expr) -> ast.StringLiteral | None:
    if isinstance(e, ast.StringLiteral):
        return e
    if isinstance(e, ast.NullLiteral):
        return None
    _at(e.pos, "a coordinate system must be a string literal or NULL")


def _has_coordsys(e: ast.Expr) -> bool:
    return isinstance(e, ast.StringLiteral | ast.NullLiteral)


def _coord_value(e: ast.Expr, what: str) -> ast.Expr:
    if not _is_coord_value(e):
        _at(e.pos, f"{what} must be a point (POINT, CENTROID, a column or a user-defined function)")
    return e


def _make_point(pos: ast.Position | None, args: Sequence[ast.Expr]) -> ast.Point:
    if len(args) == 3:
        return ast.Point(coordsys=_coordsys(args[0]), x=args[1], y=args[2], pos=pos)
    return ast.Point(x=args[0], y=args[1], pos=pos)


def _make_circle(pos: ast.Position | None, args: Sequence[ast.Expr]) -> ast.Circle:
    # CIRCLE([cs,] x, y, r) puts cs on the centre point, so that it equals CIRCLE(POINT(...), r).
    if len(args) == 4 or (len(args) == 3 and not _has_coordsys(args[0])):
        center: ast.Expr = _make_point(args[0].pos, args[:-1])
        return ast.Circle(center=center, radius=args[-1], pos=pos)
    if len(args) == 3:
        center = _coord_value(args[1], "the centre of a CIRCLE")
        return ast.Circle(coordsys=_coordsys(args[0]), center=center, radius=args[2], pos=pos)
    center = _coord_value(args[0], "the centre of a CIRCLE")
    return ast.Circle(center=center, radius=args[1], pos=pos)


def _make_box(pos: ast.Position | None, args: Sequence[ast.Expr]) -> ast.Box:
    if len(args) == 5 or (len(args) == 4 and not _has_coordsys(args[0])):
        center: ast.Expr = _make_point(args[0].pos, args[:-2])
        return ast.Box(center=center, width=args[-2], height=args[-1], pos=pos)
    coordsys: ast.StringLiteral | None = None
    if len(args) == 4:
        coordsys = _coordsys(args[0])
    center = _coord_value(args[-3], "the centre of a BOX")
    return ast.Box(coordsys=coordsys, center=center, width=args[-2], height=args[-1], pos=pos)


def _make_polygon(pos: ast.Position | None, args: Sequence[ast.Expr]) -> ast.Polygon:
    coordsys: ast.StringLiteral | None = None
    rest = list(args)
    if _has_coordsys(rest[0]):
        coordsys = _coordsys(rest[0])
        rest = rest[1:]
    # Six column names could be six point columns or three coordinate pairs; the BNF allows both.
    # We read them as coordinates (the ADQL 2.0 form, and the common one); POINT(...) vertices
    # or any non-column vertex select the vertex form.
    as_vertices = all(_is_coord_value(e) for e in rest) and not (
        len(rest) % 2 == 0 and all(isinstance(e, ast.ColumnRef) for e in rest)
    )
    if as_vertices:
        if len(rest) < 3:
            _at(pos, "a POLYGON needs at least 3 vertices")
        return ast.Polygon(coordsys=coordsys, vertices=tuple(rest), pos=pos)
    if len(rest) % 2 or len(rest) < 6:
        _at(pos, "a POLYGON needs at least 3 vertices, given as pairs of coordinates or as points")
    vertices = tuple(
        ast.Point(x=rest[i], y=rest[i + 1], pos=rest[i].pos) for i in range(0, len(rest), 2)
    )
    return ast.Polygon(coordsys=coordsys, vertices=vertices, pos=pos)


def _make_builtin(name: str, pos: ast.Position | None, args: Sequence[ast.Expr]) -> ast.Expr:
    low, high = _ARITY[name]
    if len(args) < low or (high is not None and len(args) > high):
        if high == low:
            count = f"{low} argument{'s' if low != 1 else ''}"
        elif high is None:
            count = f"at least {low} argument{'s' if low != 1 else ''}"
        else:
            count = f"{low} to {high} arguments"
        _at(pos, f"{name} takes {count}, not {len(args)}", found=name)
    if name == "POINT":
        return _make_point(pos, args)
    if name == "CIRCLE":
        return _make_circle(pos, args)
    if name == "BOX":
        return _make_box(pos, args)
    if name == "POLYGON":
        return _make_polygon(pos, args)
    if name == "REGION":
        if not isinstance(args[0], ast.StringLiteral):
            _at(args[0].pos, "REGION takes a string literal")
        return ast.Region(text=args[0], pos=pos)
    if name == "DISTANCE":
        if len(args) == 3:
            _at(pos, "DISTANCE takes 2 points or 4 coordinates, not 3 arguments", found=name)
        if len(args) == 4:
            args = (
                ast.Point(x=args[0], y=args[1], pos=args[0].pos),
                ast.Point(x=args[2], y=args[3], pos=args[2].pos),
            )
        else:
            args = tuple(_coord_value(a, "an argument of DISTANCE") for a in args)
    elif name in ("COORD1", "COORD2"):
        _coord_value(args[0], f"the argument of {name}")
    elif name == "IN_UNIT" and not isinstance(args[1], ast.StringLiteral):
        _at(args[1].pos, "the unit of IN_UNIT must be a string literal")
    return ast.FunctionCall(name=name, args=tuple(args), pos=pos)


def _brief(text: str, limit: int = 40) -> str:
    """A token shortened for a message (a 5000-digit number need not be quoted in full)."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _int_token(tok: AnyToken, what: str) -> int:
    text = tok.value
    if not text.isdigit():
        _at(_tpos(tok), f"{what} must be an unsigned integer, not {text}", found=text)
    # Compare lengths first: int() of thousands of digits is slow, and refused past 4300.
    if len(text.lstrip("0")) > len(str(MAX_INT)) or int(text) > MAX_INT:
        _at(_tpos(tok), f"{what} is too large: {_brief(text)}", found=text)
    return int(text)


_STRING_PART = re.compile(r"(?:[ \t\r\f\v]*(?:--[^\n]*)?\n)*[ \t\r\f\v]*'((?:[^']|'')*)'")


def _string_value(text: str) -> str:
    """The value of a (possibly continued) string literal token."""
    if text.count("'") == 2 or "\n" not in text:
        return text[1:-1].replace("''", "'")
    parts = []
    pos = 0
    while pos < len(text):
        m = _STRING_PART.match(text, pos)
        if m is None:  # pragma: no cover - the token regex guarantees the shape
            break
        parts.append(m.group(1).replace("''", "'"))
        pos = m.end()
    return "".join(parts)


def _negated(tok: AnyToken | None) -> bool:
    return tok is not None


Children = list[Any]


class _Builder:
    """Lark callbacks, one per rule or alias of the grammar; each gets the kept children.

    Not a ``lark.Transformer``: lark looks callbacks up by attribute name, which is all that
    is needed, and plain methods avoid the per-call wrapper.
    """

    # ---------------------------------------------------------------- queries

    def start(self, c: Children) -> ast.Query:
        with_, query = c
        if with_ is None:
            return cast(ast.Query, query)
        return cast(ast.Query, replace(query, with_=with_, pos=with_[0].pos))

    def with_clause(self, c: Children) -> tuple[ast.CommonTableExpr, ...]:
        return tuple(c)

    def cte(self, c: Children) -> ast.CommonTableExpr:
        name, query = c
        return ast.CommonTableExpr(name=name, query=query, pos=name.pos)

    def select_expression(self, c: Children) -> ast.Query:
        body, order_by, offset = c
        return ast.Query(
            body=body,
            order_by=order_by or (),
            offset=offset,
            pos=body.pos,
        )

    def set_op(self, c: Children) -> ast.SetOperation:
        left, op, all_, right = c
        return ast.SetOperation(
            op=cast(Literal["UNION", "EXCEPT", "INTERSECT"], op.type),
            all=all_ is not None,
            left=left,
            right=right,
            pos=left.pos,
        )

    def subquery_s(self, c: Children) -> ast.Query:
        return cast(ast.Query, c[0])

    def select_query(self, c: Children) -> ast.SelectQuery:
        select, quantifier, top, items, from_, where, group_by, having = c
        return ast.SelectQuery(
            quantifier=quantifier,
            top=top,
            items=items,
            from_=from_,
            where=where,
            group_by=group_by or (),
            having=having,
            pos=_tpos(select),
        )

    def quantifier(self, c: Children) -> str:
        return cast(str, c[0].type)

    def top(self, c: Children) -> int:
        return _int_token(c[0], "TOP")

    def offset(self, c: Children) -> int:
        return _int_token(c[1], "OFFSET")

    def select_list(self, c: Children) -> tuple[ast.SelectItem | ast.Star, ...]:
        return tuple(c)

    def star(self, c: Children) -> ast.Star:
        return ast.Star(pos=_tpos(c[0]))

    def qualified_star(self, c: Children) -> ast.Star:
        qualifier = c[0]
        if len(qualifier) > 3:
            _at(qualifier[0].pos, "a table name has at most 3 parts (catalog.schema.table)")
        return ast.Star(qualifier=qualifier, pos=qualifier[0].pos)

    def select_item(self, c: Children) -> ast.SelectItem:
        expr, alias = c
        return ast.SelectItem(expr=expr, alias=alias, pos=expr.pos)

    def from_clause(self, c: Children) -> tuple[ast.FromItem, ...]:
        return tuple(c)

    def where(self, c: Children) -> ast.Condition:
        return cast(ast.Condition, c[0])

    having = where

    def group_by(self, c: Children) -> tuple[ast.Expr, ...]:
        return tuple(c)

    def order_by(self, c: Children) -> tuple[ast.OrderItem, ...]:
        return tuple(c)

    def order_item(self, c: Children) -> ast.OrderItem:
        expr, direction = c
        return ast.OrderItem(
            expr=expr,
            descending=direction is not None and direction.type == "DESC",
            pos=expr.pos,
        )

    # ---------------------------------------------------------------- FROM

    def table(self, c: Children) -> ast.TableRef:
        name, alias = c
        if len(name) > 3:
            _at(name[0].pos, "a table name has at most 3 parts (catalog.schema.table)")
        return ast.TableRef(name=name, alias=alias, pos=name[0].pos)

    def derived(self, c: Children) -> ast.DerivedTable:
        query, alias = c
        return ast.DerivedTable(query=query, alias=alias, pos=query.pos)

    def join(self, c: Children) -> ast.Join:
        left, natural, kind, _join, right, spec = c
        condition: ast.Condition | None = None
        using: tuple[ast.Identifier, ...] | None = None
        if spec is not None:
            if natural is not None:
                _at(_tpos(natural), "a NATURAL join takes no ON or USING", found=natural.value)
            if spec[0] == "on":
                condition = spec[1]
            else:
                using = spec[1]
        return ast.Join(
            left=left,
            right=right,
            kind=kind or "INNER",
            natural=natural is not None,
            condition=condition,
            using=using,
            pos=left.pos,
        )

    def join_type(self, c: Children) -> str:
        return cast(str, c[0].type)

    def join_on(self, c: Children) -> tuple[str, ast.Condition]:
        return ("on", c[0])

    def join_using(self, c: Children) -> tuple[str, tuple[ast.Identifier, ...]]:
        return ("using", tuple(c))

    # ---------------------------------------------------------------- conditions

    def or_(self, c: Children) -> ast.Or:
        return ast.Or(left=c[0], right=c[1], pos=c[0].pos)

    def and_(self, c: Children) -> ast.And:
        return ast.And(left=c[0], right=c[1], pos=c[0].pos)

    def not_(self, c: Children) -> ast.Not:
        return ast.Not(operand=c[1], pos=_tpos(c[0]))

    def comparison(self, c: Children) -> ast.Comparison:
        left, op, right = c
        text = "<>" if op.value == "!=" else op.value
        return ast.Comparison(op=cast(ast.CompOp, text), left=left, right=right, pos=left.pos)

    def between(self, c: Children) -> ast.Between:
        operand, neg, low, high = c
        return ast.Between(
            operand=operand, low=low, high=high, negated=_negated(neg), pos=operand.pos
        )

    def in_list(self, c: Children) -> ast.InList:
        operand, neg, *items = c
        return ast.InList(
            operand=operand, items=tuple(items), negated=_negated(neg), pos=operand.pos
        )

    def in_subquery(self, c: Children) -> ast.InSubquery:
        operand, neg, query = c
        return ast.InSubquery(operand=operand, query=query, negated=_negated(neg), pos=operand.pos)

    def like(self, c: Children) -> ast.Like:
        operand, neg, op, pattern = c
        return ast.Like(
            operand=operand,
            pattern=pattern,
            negated=_negated(neg),
            case_insensitive=op.type == "ILIKE",
            pos=operand.pos,
        )

    def is_null(self, c: Children) -> ast.IsNull:
        operand, neg, _null = c
        return ast.IsNull(operand=operand, negated=_negated(neg), pos=operand.pos)

    def exists(self, c: Children) -> ast.Exists:
        return ast.Exists(query=c[1], pos=_tpos(c[0]))

    # ---------------------------------------------------------------- values

    def binary(self, c: Children) -> ast.BinaryOp:
        left, op, right = c
        return ast.BinaryOp(op=op.value, left=left, right=right, pos=left.pos)

    def unary(self, c: Children) -> ast.UnaryOp:
        op, operand = c
        return ast.UnaryOp(op=op.value, operand=operand, pos=_tpos(op))

    def number(self, c: Children) -> ast.NumericLiteral:
        tok = c[0]
        if math.isinf(float(tok.value)):
            # Beyond a DOUBLE: no backend reads it, and folding would turn it into "inf".
            _at(_tpos(tok), f"the number {_brief(tok.value)} is out of range (±1.8e308 at most)")
        return ast.NumericLiteral(text=tok.value, pos=_tpos(tok))

    def string(self, c: Children) -> ast.StringLiteral:
        tok = c[0]
        return ast.StringLiteral(value=_string_value(tok.value), pos=_tpos(tok))

    def null(self, c: Children) -> ast.NullLiteral:
        return ast.NullLiteral(pos=_tpos(c[0]))

    def column_ref(self, c: Children) -> ast.ColumnRef:
        parts = c[0]
        if len(parts) > 4:
            _at(parts[0].pos, "a column name has at most 4 parts (catalog.schema.table.column)")
        return ast.ColumnRef(qualifier=parts[:-1], name=parts[-1], pos=parts[0].pos)

    def function(self, c: Children) -> ast.Expr:
        tok = c[0]
        args = [a for a in c[1:] if a is not None]
        name = tok.value
        upper = name.upper()
        pos = _tpos(tok)
        if upper in BUILTIN_FUNCTIONS:
            return _make_builtin(upper, pos, args)
        if upper in RESERVED_WORDS:
            _at(pos, f"{name} is a reserved word, not an ADQL function", found=name)
        return ast.FunctionCall(name=name, args=tuple(args), pos=pos)

    def aggregate(self, c: Children) -> ast.Aggregate:
        func, quantifier, arg = c
        return ast.Aggregate(
            func=func.type,
            arg=arg,
            quantifier=quantifier,
            pos=_tpos(func),
        )

    def count_star(self, c: Children) -> ast.Aggregate:
        return ast.Aggregate(func="COUNT", arg=None, pos=_tpos(c[0]))

    def cast(self, c: Children) -> ast.Cast:
        tok, operand, target = c
        return ast.Cast(operand=operand, target=target, pos=_tpos(tok))

    def cast_type(self, c: Children) -> ast.TypeName:
        toks = [t for t in c if t is not None]
        length: int | None = None
        if toks[-1].type == "NUMBER":
            length = _int_token(toks[-1], "a length")
            if length == 0:
                _at(_tpos(toks[-1]), "a length must be positive", found="0")
            toks = toks[:-1]
        name = " ".join(t.type for t in toks)
        return ast.TypeName(name=name, length=length, pos=_tpos(toks[0]))

    def scalar_subquery(self, c: Children) -> ast.ScalarSubquery:
        query = c[0]
        return ast.ScalarSubquery(query=query, pos=query.pos)

    def dotted_first(self, c: Children) -> tuple[ast.Identifier, ...]:
        return (c[0],)

    def dotted_next(self, c: Children) -> tuple[ast.Identifier, ...]:
        return (*c[0], c[1])

    def identifier(self, c: Children) -> ast.Identifier:
        tok = c[0]
        text = tok.value
        if tok.type == "DELIMITED":
            if "\x00" in text:
                _at(_tpos(tok), "a delimited identifier cannot contain the NUL character")
            return ast.Identifier(
                name=text[1:-1].replace('""', '"'), delimited=True, pos=_tpos(tok)
            )
        if text.upper() in RESERVED_WORDS:
            _at(
                _tpos(tok),
                f"found '{text}': a reserved word cannot be a name (write \"{text}\" if it is one)",
                found=text,
            )
        return ast.Identifier(name=text, pos=_tpos(tok))


# --------------------------------------------------------------------------- the parser


class _WordsAreWhole:
    """Keep NAME in every state of the contextual lexer.

    Where no name can stand, lark's state lexer would otherwise match a keyword as a *prefix*
    of a longer word ("x IS NOTNULL" read as IS NOT NULL).  With NAME always present, keywords
    are recognised only as whole words, like the fast path's tokenizer does.
    """

    always_accept = ("NAME",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return stream


_PARSER: lark.Lark | None = None


def _parser() -> lark.Lark:
    """The lark parser, built on first use (about 0.4 s) and shared by all threads."""
    global _PARSER
    if _PARSER is None:
        with _lock:
            if _PARSER is None:
                _PARSER = lark.Lark(
                    _GRAMMAR_PATH.read_text(encoding="utf-8"),
                    parser="lalr",
                    lexer="contextual",
                    transformer=_Builder(),
                    maybe_placeholders=True,
                    propagate_positions=False,
                    postlex=_WordsAreWhole(),
                )
    return _PARSER


# --------------------------------------------------------------------------- the fast path
#
# Lark's LALR loop and contextual lexer are general; for the happy path we drive lark's own
# parse table and tree-building callbacks with a tighter loop and a single-regex tokenizer.
# It makes the same decisions as lark's contextual lexer (a word is a keyword exactly when the
# keyword is acceptable in the current parser state) and the same shifts and reductions, so it
# accepts the same texts and builds the same trees.  On any failure it gives up and lark parses
# the text again, so error reporting (expected tokens, positions) is lark's alone.


class _GiveUp(Exception):
    """The fast path met something it does not handle; let lark produce the verdict."""


_Shift = tuple[Literal[True], int]
_Reduce = tuple[Literal[False], int, Callable[[list[Any]], Any] | None, str]


@dataclass(frozen=True)
class _Tables:
    actions: dict[int, dict[str, _Shift | _Reduce]]
    start: int
    end: int
    token_re: re.Pattern[str]
    group_types: dict[str, str]
    ignore: frozenset[str]
    keywords: dict[str, str]


def _plain(text: str) -> str:
    return "".join(text)


@functools.cache
def _tables() -> _Tables:
    lp = _parser()
    lalr = lp.parser.parser.parser
    table = lalr.parse_table
    callbacks = lalr.callbacks
    actions: dict[int, dict[str, _Shift | _Reduce]] = {}
    for state, row in table.states.items():
        fast_row: dict[str, _Shift | _Reduce] = {}
        for symbol, (action, arg) in row.items():
            # Lark's symbol names are str subclasses with a Python-level __eq__: plain str keys
            # make every lookup a C-level comparison.
            name = _plain(symbol)
            if action.name == "Shift":
                fast_row[name] = (True, arg)
            elif len(arg.expansion) == 1 and isinstance(callbacks[arg], ExpandSingleChild):
                # "?rule: other" passes its only child through: no call, just a new state.
                fast_row[name] = (False, 1, None, _plain(arg.origin.name))
            else:
                fast_row[name] = (
                    False,
                    len(arg.expansion),
                    callbacks[arg],
                    _plain(arg.origin.name),
                )
        actions[state] = fast_row
    keywords: dict[str, str] = {}
    others = []
    for term in lp.terminals:
        if isinstance(term.pattern, PatternStr) and term.pattern.value.isalpha():
            keywords[term.pattern.value.upper()] = _plain(term.name)
        else:
            others.append(term)
    # Lark's own order of alternatives: priority, then longest possible match first.
    others.sort(key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
    group_types = {f"g{i}": _plain(t.name) for i, t in enumerate(others)}
    token_re = re.compile(
        "|".join(f"(?P<g{i}>{t.pattern.to_regexp()})" for i, t in enumerate(others))
    )
    return _Tables(
        actions=actions,
        start=table.start_states["start"],
        end=table.end_states["start"],
        token_re=token_re,
        group_types=group_types,
        ignore=frozenset(_plain(n) for n in lp.ignore_tokens),
        keywords=keywords,
    )


def _fast_parse(text: str) -> ast.Query:
    t = _tables()
    actions, end_state, keywords, ignore = t.actions, t.end, t.keywords, t.ignore
    group_types = t.group_types
    match = t.token_re.match
    states = [t.start]
    values: list[Any] = []
    pos, line, line_start, length = 0, 1, 0, len(text)
    while True:
        if pos < length:
            m = match(text, pos)
            if m is None:
                raise _GiveUp
            value = m.group()
            type_ = group_types[m.lastgroup]  # type: ignore[index]
            start, pos = pos, m.end()
            column = start - line_start + 1
            tok_line = line
            if "\n" in value:
                line += value.count("\n")
                line_start = start + value.rindex("\n") + 1
            if type_ in ignore:
                continue
            if type_ == "NAME":
                keyword = keywords.get(value.upper())
                if keyword is not None and keyword in actions[states[-1]]:
                    type_ = keyword
            tok: _Tok | None = _Tok(type_, value, tok_line, column)
        else:
            type_, tok = "$END", None
        while True:
            action = actions[states[-1]].get(type_)
            if action is None:
                raise _GiveUp
            if action[0]:
                states.append(action[1])
                values.append(tok)
                break
            _, size, callback, origin = action
            if callback is None:
                del states[-1]
                states.append(actions[states[-1]][origin][1])
                continue
            if size:
                args = values[-size:]
                del values[-size:]
                del states[-size:]
            else:
                args = []
            result = callback(args)
            states.append(actions[states[-1]][origin][1])
            values.append(result)
            if tok is None and states[-1] == end_state:
                return cast(ast.Query, values[-1])


@functools.cache
def _terminal_names() -> dict[str, tuple[str, ...]]:
    """Terminal name -> the words an error message shows for it."""
    special = {
        "NAME": ("identifier",),
        "DELIMITED": ("identifier",),
        "NUMBER": ("number",),
        "STRING": ("string",),
        "COMP_OP": ("comparison operator",),
        "ADD_OP": ("'+'", "'-'"),
        "$END": ("end of input",),
    }
    names: dict[str, tuple[str, ...]] = {}
    for term in _parser().terminals:
        pattern = term.pattern
        if isinstance(pattern, PatternStr):
            value = pattern.value
            names[term.name] = (value.upper() if value.isalpha() else f"'{value}'",)
    names.update(special)
    return names


def _human(expected: Iterable[str]) -> list[str]:
    """Expected terminals in words: keywords, then punctuation, then kinds of token."""
    names = _terminal_names()
    words = {w for e in expected for w in names.get(e, (e,))}

    def order(w: str) -> tuple[int, str]:
        if w.isupper() and w.replace("_", "").isalpha():
            return (0, w)
        if w.startswith("'"):
            return (1, w)
        return (2, w)

    return sorted(words, key=order)


def _acceptable(exc: UnexpectedCharacters) -> set[str]:
    """The terminals the parser could take where the lexer failed (the lexer's own list also
    has NAME everywhere, see ``_WordsAreWhole``)."""
    state = getattr(exc, "state", None)
    try:
        row = state.parse_conf.states[state.position]  # type: ignore[union-attr]
    except (AttributeError, KeyError, TypeError):
        return set()
    return {name for name in row if name.isupper() or name.startswith(("_", "$"))}


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of input"
    return f"'{tok}'"


def _translate(exc: UnexpectedInput, text: str) -> AdqlSyntaxError:
    line, column = exc.line, exc.column
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        found = _describe(tok)
        expected = _human(exc.expected)
        if tok.type == "$END":
            # Lark puts the end token at the last token; point just after the text instead.
            line = text.count("\n") + 1
            column = len(text) - (text.rfind("\n") + 1) + 1
    elif isinstance(exc, UnexpectedCharacters):
        char = exc.char
        expected = _human(_acceptable(exc) or exc.allowed or ())
        if char == "'":
            found = "an unterminated string literal"
        elif char == '"':
            found = "an unterminated or empty delimited identifier"
        else:
            found = f"unexpected character {char!r}"
        message = f"Syntax error at line {line}, column {column}: {found}"
        return AdqlSyntaxError(message, line=line, column=column, found=char, expected=expected)
    else:  # pragma: no cover - LALR raises only the two kinds above
        return AdqlSyntaxError(f"Syntax error: {exc}", line=line, column=column)
    message = f"Syntax error at line {line}, column {column}: found {found}"
    if expected:
        if len(expected) == 1:
            message += f", expected {expected[0]}"
        else:
            message += f", expected one of {', '.join(expected)}"
    return AdqlSyntaxError(
        message,
        line=line,
        column=column,
        found="end of input" if tok.type == "$END" else str(tok),
        expected=expected,
    )


def _too_deep(root: ast.Node) -> ast.Position | None:
    """Where the tree first goes deeper than MAX_DEPTH (iteratively: it may be too deep for
    recursion), as the position of the nearest node that has one; None when it does not."""
    stack: list[tuple[ast.Node, int, ast.Position | None]] = [(root, 1, root.pos)]
    while stack:
        node, depth, pos = stack.pop()
        pos = node.pos or pos
        if depth > MAX_DEPTH:
            return pos or ast.Position(line=1, column=1)
        stack.extend((child, depth + 1, pos) for child in ast.children(node))
    return None


def _deepest_parenthesis(text: str) -> ast.Position:
    """Where parentheses nest deepest (outside strings): the likely cause of a RecursionError."""
    depth = deepest = 0
    at = (1, 1)
    line, column = 1, 1
    quote: str | None = None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth > deepest:
                deepest, at = depth, (line, column)
        elif ch == ")":
            depth -= 1
        line, column = (line + 1, 1) if ch == "\n" else (line, column + 1)
    return ast.Position(line=at[0], column=at[1])


def parse(text: str) -> ast.Query:
    """Parse one ADQL query; raise ``AdqlSyntaxError`` with a position when it is not ADQL."""
    if not isinstance(text, str):
        raise AdqlSyntaxError("Syntax error: the query must be text")
    try:
        try:
            query = _fast_parse(text)
        except _GiveUp:
            query = cast(ast.Query, _parser().parse(text))
    except AdqlError:
        raise
    except UnexpectedInput as exc:
        raise _translate(exc, text) from None
    except RecursionError:
        _at(
            _deepest_parenthesis(text),
            f"the query is nested too deeply (at most {MAX_DEPTH} levels)",
        )
    # A tree deeper than MAX_DEPTH needs more than MAX_DEPTH characters.
    deep = _too_deep(query) if len(text) > MAX_DEPTH else None
    if deep is not None:
        _at(
            deep,
            f"the query is nested too deeply (at most {MAX_DEPTH} levels); long chains of OR "
            "are better written with IN (...)",
        )
    return query
