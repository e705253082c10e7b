"""The ADQL library's own exceptions: the only ones ``parse``/``check``/``to_sql`` raise.

Each carries a position when one is known, so the service can answer "line 2, column 14"
instead of a traceback.  The service maps them to DALI errors (HTTP 400) in one place.
"""

from __future__ import annotations

from collections.abc import Sequence


class AdqlError(Exception):
    """Base class: something is wrong with the query (not with the service)."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        # Most messages already say where; add the position only when they do not.
        if self.line is not None and f"line {self.line}" not in self.message:
            return f"{self.message} (line {self.line}, column {self.column})"
        return self.message


class AdqlSyntaxError(AdqlError):
    """The text is not ADQL: ``found`` is the offending token, ``expected`` what could stand."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        found: str | None = None,
        expected: Sequence[str] = (),
    ):
        super().__init__(message, line=line, column=column)
        self.found = found
        self.expected = tuple(expected)


class AdqlNameError(AdqlError):
    """An unknown or ambiguous table, column or function; ``suggestions`` are close names."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        name: str | None = None,
        suggestions: Sequence[str] = (),
    ):
        super().__init__(message, line=line, column=column)
        self.name = name
        self.suggestions = tuple(suggestions)


class AdqlTypeError(AdqlError):
    """An operand of the wrong kind (CONTAINS on a number, || on a geometry, ...)."""


class AdqlUnsupportedError(AdqlError):
    """Valid ADQL that the target backend cannot run; the message says what to write instead."""
