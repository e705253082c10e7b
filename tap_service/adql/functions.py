"""Signatures of the ADQL 2.1 built-in functions, and the TAPRegExt UDF signature reader.

The checker needs three facts per function: how many arguments it takes, what kind each must
be, and what it returns (type and, for output metadata, unit).  Keeping them as data means the
arity table, the type rules and the "did you mean" vocabulary cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from tap_service.adql import types as t
from tap_service.adql.catalog import UserFunction
from tap_service.adql.errors import AdqlSyntaxError
from tap_service.adql.types import ValueType

ArgKind: TypeAlias = Literal["numeric", "integer", "string", "geometry", "point", "any"]
"""What an argument must be.  ``point`` also admits generic shapes (a REGION column may hold a
point); unknown types satisfy every kind."""

ResultRule: TypeAlias = Literal[
    "double",
    "int",
    "long",
    "string",
    "point",
    "polygon",
    "circle",
    "region",
    "numeric_of_first",
    "promoted",
    "first_known",
]
"""How the result type follows from the arguments: ``numeric_of_first`` keeps an integer
argument integer (ABS, ROUND) and makes anything else double; ``promoted`` is the arithmetic
promotion of all arguments (MOD); ``first_known`` is the first argument whose type is known
(COALESCE)."""

UnitRule: TypeAlias = Literal["none", "keep", "deg", "deg2", "rad", "literal"]
"""The unit of the result: ``keep`` the first argument's unit (ABS of a flux is a flux),
``literal`` the unit string given as second argument (IN_UNIT)."""


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """One built-in function.  ``args`` gives the kind per position; when ``max_args`` is None
    the last kind repeats."""

    name: str
    min_args: int
    max_args: int | None
    args: tuple[ArgKind, ...]
    result: ResultRule
    unit: UnitRule = "none"

    def arg_kind(self, index: int) -> ArgKind:
        if not self.args:
            return "any"
        return self.args[min(index, len(self.args) - 1)]

    def arity_text(self) -> str:
        """The accepted argument counts, for error messages."""
        if self.max_args is None:
            return f"at least {self.min_args}"
        if self.min_args == self.max_args:
            return str(self.min_args)
        return f"{self.min_args} to {self.max_args}"


def _spec(
    name: str,
    min_args: int,
    max_args: int | None,
    args: tuple[ArgKind, ...],
    result: ResultRule,
    unit: UnitRule = "none",
) -> FunctionSpec:
    return FunctionSpec(
        name=name, min_args=min_args, max_args=max_args, args=args, result=result, unit=unit
    )


_N: tuple[ArgKind, ...] = ("numeric",)
_NN: tuple[ArgKind, ...] = ("numeric", "numeric")

BUILTINS: dict[str, FunctionSpec] = {
    s.name: s
    for s in (
        # math (ADQL 2.1 section 2.3.6)
        _spec("ABS", 1, 1, _N, "numeric_of_first", "keep"),
        _spec("CEILING", 1, 1, _N, "numeric_of_first", "keep"),
        _spec("DEGREES", 1, 1, _N, "double", "deg"),
        _spec("EXP", 1, 1, _N, "double"),
        _spec("FLOOR", 1, 1, _N, "numeric_of_first", "keep"),
        _spec("LOG", 1, 1, _N, "double"),
        _spec("LOG10", 1, 1, _N, "double"),
        _spec("MOD", 2, 2, _NN, "promoted", "keep"),
        _spec("PI", 0, 0, (), "double"),
        _spec("POWER", 2, 2, _NN, "double"),
        _spec("RADIANS", 1, 1, _N, "double", "rad"),
        _spec("RAND", 0, 1, ("integer",), "double"),
        _spec("ROUND", 1, 2, ("numeric", "integer"), "numeric_of_first", "keep"),
        _spec("SQRT", 1, 1, _N, "double"),
        _spec("TRUNCATE", 1, 2, ("numeric", "integer"), "numeric_of_first", "keep"),
        # trigonometry
        _spec("ACOS", 1, 1, _N, "double"),
        _spec("ASIN", 1, 1, _N, "double"),
        _spec("ATAN", 1, 1, _N, "double"),
        _spec("ATAN2", 2, 2, _NN, "double"),
        _spec("COS", 1, 1, _N, "double"),
        _spec("COT", 1, 1, _N, "double"),
        _spec("SIN", 1, 1, _N, "double"),
        _spec("TAN", 1, 1, _N, "double"),
        # strings, conditionals, units (optional features)
        _spec("LOWER", 1, 1, ("string",), "string"),
        _spec("UPPER", 1, 1, ("string",), "string"),
        _spec("COALESCE", 1, None, ("any",), "first_known", "keep"),
        _spec("IN_UNIT", 2, 2, ("numeric", "string"), "double", "literal"),
        # geometry functions that are not constructors
        _spec("AREA", 1, 1, ("geometry",), "double", "deg2"),
        _spec("CENTROID", 1, 1, ("geometry",), "point"),
        _spec("CONTAINS", 2, 2, ("geometry", "geometry"), "int"),
        _spec("INTERSECTS", 2, 2, ("geometry", "geometry"), "int"),
        _spec("COORD1", 1, 1, ("point",), "double", "deg"),
        _spec("COORD2", 1, 1, ("point",), "double", "deg"),
        _spec("COORDSYS", 1, 1, ("geometry",), "string"),
        _spec("DISTANCE", 2, 4, ("point", "point", "numeric", "numeric"), "double", "deg"),
    )
}
"""Built-in functions the parser leaves as ``FunctionCall`` (upper-case name)."""

GEOMETRY_CONSTRUCTORS = frozenset({"POINT", "CIRCLE", "BOX", "POLYGON", "REGION"})
"""Names the parser turns into their own nodes; a ``FunctionCall`` with one of these names
means the parser could not (wrong argument count), so the checker reports it."""

AGGREGATES = frozenset({"AVG", "MAX", "MIN", "SUM", "COUNT"})

KNOWN_NAMES = tuple(sorted({*BUILTINS, *GEOMETRY_CONSTRUCTORS, *AGGREGATES}))
"""Every built-in name, the vocabulary for "did you mean" on unknown functions."""


def promote(types: Sequence[ValueType]) -> ValueType:
    """The arithmetic result of numeric operands: integers stay integers (long when any is
    long), anything else is double, unknown when any operand is unknown."""
    if any(v.is_unknown for v in types):
        return t.UNKNOWN
    if all(v.is_integer for v in types):
        return t.LONG if any(v.datatype == "long" for v in types) else t.INT
    return t.DOUBLE


def result_type(spec: FunctionSpec, args: Sequence[ValueType]) -> ValueType:
    """The type ``spec`` returns for arguments of types ``args``."""
    rule = spec.result
    fixed: dict[str, ValueType] = {
        "double": t.DOUBLE,
        "int": t.INT,
        "long": t.LONG,
        "string": t.STRING,
        "point": t.POINT,
        "polygon": t.POLYGON,
        "circle": t.CIRCLE,
        "region": t.REGION,
    }
    if rule in fixed:
        return fixed[rule]
    if rule == "numeric_of_first":
        first = args[0]
        if first.is_unknown:
            return t.UNKNOWN
        if first.is_integer:
            return t.LONG if first.datatype == "long" else t.INT
        return t.DOUBLE
    if rule == "promoted":
        return promote(args)
    for arg in args:  # first_known
        if not arg.is_unknown:
            return arg
    return t.UNKNOWN


# --------------------------------------------------------------------------- type names

_TYPE_NAMES: dict[str, ValueType] = {
    "SMALLINT": t.SHORT,
    "INTEGER": t.INT,
    "INT": t.INT,
    "BIGINT": t.LONG,
    "REAL": t.FLOAT,
    "DOUBLE": t.DOUBLE,
    "DOUBLE PRECISION": t.DOUBLE,
    "TIMESTAMP": t.TIMESTAMP,
    "POINT": t.POINT,
    "CIRCLE": t.CIRCLE,
    "POLYGON": t.POLYGON,
    "REGION": t.REGION,
    "BOOLEAN": t.BOOLEAN,
}


def type_for_name(name: str, length: int | None = None) -> ValueType | None:
    """The value type of an ADQL type name (CAST targets, UDF signatures); None if unknown.

    CHAR(n) is fixed-width ``char n``, VARCHAR(n) bounded ``char n*``, both ``char *`` without
    a length, as VOTable spells them.
    """
    key = " ".join(name.upper().split())
    key = key.removeprefix("NATIONAL ")
    if key in ("CHAR", "CHARACTER"):
        return ValueType("char", str(length) if length is not None else "*")
    if key in ("VARCHAR", "CHARACTER VARYING"):
        return ValueType("char", f"{length}*" if length is not None else "*")
    return _TYPE_NAMES.get(key)


_SIGNATURE = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_:]*)\s*\((?P<args>.*)\)\s*->\s*(?P<ret>[^()]+(?:\(\s*\d+\s*\))?)\s*$"
)
_TYPE_WITH_LENGTH = re.compile(r"^(?P<base>[A-Za-z ]+?)\s*(?:\(\s*(?P<len>\d+)\s*\))?\s*$")


def _parse_type(text: str) -> ValueType | None:
    match = _TYPE_WITH_LENGTH.match(text)
    if match is None:
        return None
    length = match.group("len")
    return type_for_name(match.group("base"), int(length) if length else None)


def parse_udf_signature(form: str, *, description: str | None = None) -> UserFunction:
    """A ``UserFunction`` from the TAPRegExt form ``name(arg TYPE, ...) -> TYPE``.

    Services declare UDFs in configuration in this form (it is also what they advertise in
    capabilities), so reading it here keeps declaration and advertisement one string.
    """
    match = _SIGNATURE.match(form)
    if match is None:
        raise AdqlSyntaxError(f"Not a function signature 'name(arg TYPE, ...) -> TYPE': {form!r}")
    returns = _parse_type(match.group("ret"))
    if returns is None:
        raise AdqlSyntaxError(f"Unknown return type {match.group('ret')!r} in {form!r}")
    args_text = match.group("args").strip()
    arg_count = 0 if not args_text else len(args_text.split(","))
    return UserFunction(
        name=match.group("name"),
        signature=form.strip(),
        returns=returns,
        arg_count=arg_count,
        description=description,
    )
