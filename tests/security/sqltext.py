"""Reading back the SQL a backend received: a small lexer for the two dialects we emit.

Independent of the renderer on purpose (a test of the renderer's escaping should not reuse it):
it splits SQL into string literals, quoted identifiers and the rest, decoding the first two by
the backend's own rules (MariaDB: backslash escapes and doubled quotes; DuckDB: doubled quotes
only).  Text that ends inside a quote is an error: the statement would not have been whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["string", "ident", "code"]

_MYSQL_ESCAPES = {"0": "\x00", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


@dataclass(frozen=True)
class Piece:
    kind: Kind
    value: str  # decoded for strings and identifiers, raw for code


def lex(sql: str, dialect: str) -> list[Piece]:
    mysql = dialect == "qserv"
    ident_quote = "`" if mysql else '"'
    pieces: list[Piece] = []
    code: list[str] = []
    i, n = 0, len(sql)

    def flush() -> None:
        if code:
            pieces.append(Piece("code", "".join(code)))
            code.clear()

    while i < n:
        ch = sql[i]
        if ch == "'" or ch == ident_quote:
            flush()
            value: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise ValueError(f"unterminated {ch} at {i}: {sql!r}")
                c = sql[j]
                if mysql and ch == "'" and c == "\\":
                    if j + 1 >= n:
                        raise ValueError(f"dangling backslash at {j}: {sql!r}")
                    nxt = sql[j + 1]
                    value.append(_MYSQL_ESCAPES.get(nxt, nxt))
                    j += 2
                    continue
                if c == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        value.append(ch)
                        j += 2
                        continue
                    break
                value.append(c)
                j += 1
            pieces.append(Piece("string" if ch == "'" else "ident", "".join(value)))
            i = j + 1
        else:
            code.append(ch)
            i += 1
    flush()
    return pieces


def outside_quotes(sql: str, dialect: str) -> str:
    """The SQL with every string literal and quoted identifier blanked out."""
    return " ".join(p.value if p.kind == "code" else "?" for p in lex(sql, dialect))


def strings(sql: str, dialect: str) -> list[str]:
    return [p.value for p in lex(sql, dialect) if p.kind == "string"]


def identifiers(sql: str, dialect: str) -> list[str]:
    return [p.value for p in lex(sql, dialect) if p.kind == "ident"]
