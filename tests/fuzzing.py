"""Shared pieces of the bad-input fuzzers: settings profiles, seed queries and mutators.

Two hypothesis profiles, chosen with ``HYPOTHESIS_PROFILE``:

* ``ci`` (the default): derandomized (a fixed seed, the same examples on every run), a small
  number of examples per test, no deadline; ``make test`` stays within its time budget.
* ``long``: random seeds, 100x the examples; for a local run of an hour or so, e.g.
  ``HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/adql/test_fuzz.py``.

The mutators are grammar-aware: they work on ADQL tokens (keywords, names, delimited names,
strings, numbers, operators) rather than on bytes, so most mutants are *near*-valid queries that
get deep into the parser and checker; a byte-level mutator covers the rest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.adql import lyonetia

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = 100 if PROFILE == "long" else 1

F = TypeVar("F", bound=Callable[..., Any])


def fuzz_settings(max_examples: int) -> Callable[[F], F]:
    """Settings for one fuzz test: ``max_examples`` under ``ci``, 100x under ``long``."""
    return settings(
        max_examples=max_examples * SCALE,
        derandomize=PROFILE != "long",
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Queries over the test catalog of tests/adql/conftest.py (demo.sky, demo.bands) that pass the
# checker and translate to both dialects: mutants of these get all the way to ``to_sql``.
DEMO_SEEDS = (
    "SELECT id, ra, dec FROM demo.sky WHERE mag < 20",
    "SELECT TOP 10 s.id, b.wavelength FROM demo.sky AS s JOIN demo.bands AS b ON s.band = b.band",
    "SELECT band, COUNT(*) AS n, AVG(mag) FROM demo.sky GROUP BY band HAVING COUNT(*) > 3",
    "SELECT id FROM demo.sky WHERE CONTAINS(POINT('ICRS', ra, dec), "
    "CIRCLE('ICRS', 62, -37, 0.05)) = 1",
    "SELECT id FROM demo.sky WHERE 1 = CONTAINS(POINT(ra, dec), "
    "POLYGON(10, 10, 14, 10, 14, 12, 10, 12))",
    "SELECT id, DISTANCE(POINT(ra, dec), POINT(62, -37)) AS d FROM demo.sky ORDER BY d",
    "SELECT name FROM demo.sky WHERE name LIKE 'Star%' AND band IN ('g', 'r')",
    "SELECT \"name\", UPPER(band) || '-x' FROM demo.sky WHERE name ILIKE 'qso\\_%'",
    "SELECT id FROM demo.sky WHERE mag BETWEEN 18 AND 19.5 AND flag <> 1 OR mag IS NULL",
    "SELECT ROUND(mag, 2), ABS(pm), SQRT(ra * ra + dec * dec) FROM demo.sky",
    "SELECT id FROM demo.sky WHERE band = 'it''s' AND name <> 'a\\b'",
    "SELECT s.* FROM demo.sky s WHERE s.id IN (1000000000000000001, 2) AND s.mag > -2.5e1",
    "SELECT COUNT(*) FROM demo.sky WHERE CONTAINS(POINT(ra, dec), BOX('ICRS', 200.5, 0, 1, 1)) = 1",
    "SELECT id, COALESCE(mag, 0) FROM demo.sky WHERE id = 1000000000000000123",
    'SELECT MAX(wavelength), MIN("rank") FROM demo.bands',
)

SEEDS = DEMO_SEEDS + tuple(q.adql for q in lyonetia.queries())

# One ADQL token: delimited identifier, string, number, word, comment, multi-char operator, other.
_TOKEN = re.compile(
    r"\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*'|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?"
    r"|[A-Za-z_][A-Za-z0-9_]*|--[^\n]*|<>|!=|<=|>=|\|\||\s+|.",
    re.DOTALL,
)

# Tokens worth inserting: the grammar's keywords, punctuation and troublemakers.
_KEYWORDS = (
    "SELECT FROM WHERE AND OR NOT JOIN ON USING AS TOP DISTINCT ALL GROUP BY HAVING ORDER "
    "ASC DESC OFFSET UNION EXCEPT INTERSECT WITH IN LIKE ILIKE BETWEEN IS NULL EXISTS NATURAL "
    "LEFT RIGHT FULL OUTER INNER CAST POINT CIRCLE BOX POLYGON REGION CONTAINS INTERSECTS "
    "DISTANCE COUNT AVG SUM CENTROID COORD1 AREA"
)
_PUNCTUATION = "( ) , . * + - / || = <> < > <= >= ' \" ; ` \\ -- /* */ : ? @ $ # [ ]"
VOCABULARY = (
    *_KEYWORDS.split(),
    *_PUNCTUATION.split(),
    "'x'",
    "''",
    '"a""b"',
    '""',
    "0",
    "-1",
    "1e308",
    "1e-400",
    "9223372036854775808",
    "99999999999999999999999",
    ".5",
    "1.",
    "\x00",
    "\u00e9",
    "\u2028",
    "\U0001f600",
    "\r\n",
)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


@st.composite
def token_mutants(draw: st.DrawFn, seeds: tuple[str, ...] = SEEDS) -> str:
    """A seed query with a few tokens deleted, inserted, duplicated or swapped."""
    tokens = tokenize(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "swap", "duplicate", "replace"]))
        if not tokens:
            tokens = [draw(st.sampled_from(VOCABULARY))]
            continue
        i = draw(st.integers(0, len(tokens) - 1))
        if op == "delete":
            del tokens[i]
        elif op == "insert":
            tokens.insert(i, draw(st.sampled_from(VOCABULARY)))
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif op == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        else:
            tokens[i] = draw(st.sampled_from(VOCABULARY))
    return "".join(tokens)


@st.composite
def byte_mutants(draw: st.DrawFn, seeds: tuple[str, ...] = SEEDS) -> str:
    """A seed query with random bytes flipped, inserted or cut, decoded leniently."""
    data = bytearray(draw(st.sampled_from(seeds)).encode("utf-8"))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if not data:
            data.extend(draw(st.binary(min_size=1, max_size=4)))
            continue
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 4))]
        else:
            del data[i:]
    return data.decode("utf-8", errors=draw(st.sampled_from(["replace", "surrogateescape"])))


def bad_queries() -> st.SearchStrategy[str]:
    """Near-valid and garbled ADQL: token mutants, byte mutants, and arbitrary text."""
    return st.one_of(
        token_mutants(),
        byte_mutants(),
        st.text(max_size=60),
    )
