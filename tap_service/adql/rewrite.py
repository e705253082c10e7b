"""Dialect-neutral rewrites of a checked tree: constant folding and IN_UNIT.

Why fold here rather than let the database do it: Qserv recognises a spatial restrictor only
when every argument of ``scisql_s2PtIn*`` is a plain literal, so ``CIRCLE('ICRS', 62, -37,
5/3600.)`` must reach it as ``0.001388...``; and the embedded dialect computes bounding boxes
of constant regions in Python, which needs numbers, not expressions.

Semantics chosen once for both backends:
* ``/`` is real division, also between integers (MySQL returns 1.6667 for 5/3, DuckDB
  1.666...; neither truncates), so folding ``5/3`` gives a double.
* ``LOG`` is the natural logarithm (ADQL 2.1, section 2.3.6.1), ``LOG10`` the decimal one.
* ``ROUND`` rounds halves to even on doubles, like MariaDB does (``round_even`` in DuckDB).
* Division by zero, domain errors and overflow are never folded: the backend decides.

Every new node carries a ``type_`` so that later stages can still rely on it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from tap_service.adql import ast
from tap_service.adql.checked import CheckedQuery
from tap_service.adql.errors import AdqlUnsupportedError
from tap_service.adql.types import DOUBLE, LONG

Number = int | float


def const_value(expr: ast.Expr) -> Number | None:
    """The number a constant numeric expression denotes, or None when it is not one."""
    if isinstance(expr, ast.NumericLiteral):
        try:
            return expr.value
        except ValueError:
            return None
    if isinstance(expr, ast.UnaryOp):
        inner = const_value(expr.operand)
        if inner is None:
            return None
        return -inner if expr.op == "-" else inner
    return None


def number_literal(value: Number, like: ast.Node | None = None) -> ast.NumericLiteral:
    """A literal for a folded value; doubles keep an exponent so both backends read a DOUBLE.

    Plain ``0.5`` is an exact DECIMAL in MySQL and DuckDB; ``5e-01`` is a double in both,
    which is what the folded computation produced.
    """
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        text, type_ = str(value), LONG
    else:
        text = repr(float(value))
        if "e" not in text and "E" not in text:
            text += "e0"
        type_ = DOUBLE
    return ast.NumericLiteral(text=text, type_=type_, pos=like.pos if like else None)


def _finite(value: Number) -> bool:
    return isinstance(value, int) or math.isfinite(value)


def _round_half_even(x: float, n: int) -> float:
    return float(round(x, n))


def _truncate(x: float, n: int) -> float:
    f = 10.0**n
    return math.trunc(x * f) / f


_UNARY: dict[str, Callable[[float], float]] = {
    "ABS": abs,
    "ACOS": math.acos,
    "ASIN": math.asin,
    "ATAN": math.atan,
    "COS": math.cos,
    "COT": lambda x: 1.0 / math.tan(x),
    "DEGREES": math.degrees,
    "EXP": math.exp,
    "LOG": math.log,
    "LOG10": math.log10,
    "RADIANS": math.radians,
    "SIN": math.sin,
    "SQRT": math.sqrt,
    "TAN": math.tan,
}


def _fold_function(name: str, args: list[Number]) -> Number | None:
    try:
        if name == "PI" and not args:
            return math.pi
        if len(args) == 1:
            (x,) = args
            if name == "ABS":
                return abs(x)
            if name in ("CEILING", "CEIL"):
                return x if isinstance(x, int) else float(math.ceil(x))
            if name == "FLOOR":
                return x if isinstance(x, int) else float(math.floor(x))
            if name == "ROUND":
                return x if isinstance(x, int) else _round_half_even(x, 0)
            if name == "TRUNCATE":
                return x if isinstance(x, int) else float(math.trunc(x))
            fn = _UNARY.get(name)
            return fn(float(x)) if fn else None
        if len(args) == 2:
            x, y = args
            if name == "ATAN2":
                return math.atan2(float(x), float(y))
            if name == "POWER":
                return math.pow(float(x), float(y))
            if name == "MOD":
                if y == 0:
                    return None
                if isinstance(x, int) and isinstance(y, int):
                    return int(math.fmod(x, y))
                return math.fmod(float(x), float(y))
            if name in ("ROUND", "TRUNCATE") and isinstance(y, int):
                if isinstance(x, int):
                    return x if y >= 0 else None
                f = _round_half_even if name == "ROUND" else _truncate
                return f(float(x), y)
    except (ValueError, OverflowError, ZeroDivisionError):
        return None
    return None


def _fold_binary(op: str, x: Number, y: Number) -> Number | None:
    try:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            if y == 0:
                return None
            return float(x) / float(y)
    except OverflowError:
        return None
    return None


# Conversion factors to a base unit per dimension; IN_UNIT folds to a multiplication.
_UNITS: dict[str, tuple[str, float]] = {
    "deg": ("angle", 1.0),
    "arcmin": ("angle", 1.0 / 60),
    "arcsec": ("angle", 1.0 / 3600),
    "mas": ("angle", 1.0 / 3_600_000),
    "uas": ("angle", 1.0 / 3_600_000_000),
    "rad": ("angle", 180.0 / math.pi),
    "m": ("length", 1.0),
    "km": ("length", 1e3),
    "cm": ("length", 1e-2),
    "mm": ("length", 1e-3),
    "um": ("length", 1e-6),
    "nm": ("length", 1e-9),
    "Angstrom": ("length", 1e-10),
    "AU": ("length", 1.495978707e11),
    "pc": ("length", 3.0856775814913673e16),
    "kpc": ("length", 3.0856775814913673e19),
    "Mpc": ("length", 3.0856775814913673e22),
    "s": ("time", 1.0),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "d": ("time", 86400.0),
    "yr": ("time", 365.25 * 86400.0),
    "a": ("time", 365.25 * 86400.0),
    "Hz": ("frequency", 1.0),
    "kHz": ("frequency", 1e3),
    "MHz": ("frequency", 1e6),
    "GHz": ("frequency", 1e9),
    "Jy": ("flux", 1.0),
    "mJy": ("flux", 1e-3),
    "uJy": ("flux", 1e-6),
    "nJy": ("flux", 1e-9),
    "deg/yr": ("pm", 1.0),
    "mas/yr": ("pm", 1.0 / 3_600_000),
    "arcsec/yr": ("pm", 1.0 / 3600),
}


def unit_factor(source: str, target: str) -> float | None:
    """Factor turning a value in ``source`` into ``target``, for simple VOUnits only."""
    s, t = _UNITS.get(source.strip()), _UNITS.get(target.strip())
    if s is None or t is None or s[0] != t[0]:
        return None
    return s[1] / t[1]


_UNIT_KEEPING = frozenset({"ABS", "CEILING", "FLOOR", "ROUND", "TRUNCATE", "MOD", "COALESCE"})


def _expr_unit(expr: ast.Expr) -> str | None:
    """The unit of a value expression where it follows from its operands (else None)."""
    if isinstance(expr, ast.ColumnRef) and expr.binding is not None:
        return expr.binding.info.unit
    if isinstance(expr, ast.UnaryOp):
        return _expr_unit(expr.operand)
    if isinstance(expr, ast.BinaryOp) and expr.op in ("+", "-"):
        left, right = _expr_unit(expr.left), _expr_unit(expr.right)
        return left if left == right else None
    if isinstance(expr, ast.Aggregate) and expr.func != "COUNT" and expr.arg is not None:
        return _expr_unit(expr.arg)
    if isinstance(expr, ast.FunctionCall):
        if expr.name in _UNIT_KEEPING and expr.args:
            return _expr_unit(expr.args[0])
        if expr.name in ("DISTANCE", "COORD1", "COORD2"):
            return "deg"
    return None


def _unsupported(message: str, node: ast.Node) -> AdqlUnsupportedError:
    pos = node.pos
    return AdqlUnsupportedError(
        message, line=pos.line if pos else None, column=pos.column if pos else None
    )


def _in_unit(call: ast.FunctionCall) -> ast.Expr:
    if len(call.args) != 2 or not isinstance(call.args[1], ast.StringLiteral):
        raise _unsupported("IN_UNIT needs a value and a constant unit string", call)
    value, target = call.args[0], call.args[1].value
    source = _expr_unit(value)
    if source is None:
        raise _unsupported(
            "IN_UNIT needs a value whose unit is known (a column with a declared unit, or "
            "an expression of one); multiply by the conversion factor instead",
            call,
        )
    factor = unit_factor(source, target)
    if factor is None:
        raise _unsupported(
            f"IN_UNIT cannot convert {source!r} to {target!r}: only simple angle, length, time,"
            " frequency and flux units are known; multiply by the conversion factor instead",
            call,
        )
    if factor == 1.0:
        return value
    return ast.BinaryOp(
        op="*", left=value, right=number_literal(factor), type_=DOUBLE, pos=call.pos
    )


def _fold(node: ast.Node) -> ast.Node:
    if isinstance(node, ast.UnaryOp):
        v = const_value(node.operand)
        if v is not None and not isinstance(node.operand, ast.UnaryOp):
            if node.op == "+":
                return node.operand
            if isinstance(node.operand, ast.NumericLiteral):
                text = node.operand.text
                return ast.NumericLiteral(
                    text=text[1:] if text.startswith("-") else "-" + text,
                    type_=node.operand.type_ or node.type_,
                    pos=node.pos,
                )
        if v is not None:
            return number_literal(-v if node.op == "-" else v, node)
        return node
    if isinstance(node, ast.BinaryOp) and node.op != "||":
        x, y = const_value(node.left), const_value(node.right)
        if x is None or y is None:
            return node
        r = _fold_binary(node.op, x, y)
        if r is None or not _finite(r):
            return node
        return number_literal(r, node)
    if isinstance(node, ast.FunctionCall):
        if node.name == "IN_UNIT":
            return _in_unit(node)
        values = [const_value(a) for a in node.args]
        if any(v is None for v in values):
            return node
        r = _fold_function(node.name, [v for v in values if v is not None])
        if r is None or not _finite(r):
            return node
        return number_literal(r, node)
    return node


def fold_constants(query: ast.Query) -> ast.Query:
    """Fold numeric constant sub-expressions bottom-up (see the module notes)."""
    return ast.transform(query, _fold)


def rewrite(checked: CheckedQuery) -> CheckedQuery:
    """All dialect-neutral rewrites, in order; the result is still a checked tree."""
    folded = fold_constants(checked.query)
    if folded is checked.query:
        return checked
    return dataclasses.replace(checked, query=folded)
