"""Bad input against the ADQL library: only ``AdqlError`` may escape, and it says where.

Mutants of valid queries (the lyonetia corpus and queries over the test catalog) with tokens
deleted, inserted, duplicated, swapped or replaced, byte-level mutants, arbitrary text, and the
random valid trees of ``strategies`` go through parse, check (with the catalog and without) and
``to_sql`` in both dialects.  See tests/fuzzing.py for the profiles (``HYPOTHESIS_PROFILE=long``).
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tap_service.adql import AdqlError, check, parse, to_sql
from tap_service.adql.unparse import to_adql
from tests.adql.conftest import CATALOG
from tests.adql.strategies import random_queries
from tests.fuzzing import DEMO_SEEDS, byte_mutants, fuzz_settings, token_mutants

DIALECTS = ("embedded", "qserv")


def _assert_positioned(exc: AdqlError, text: str) -> None:
    assert isinstance(exc.line, int), f"{type(exc).__name__} without a line: {exc} <- {text!r}"
    assert isinstance(exc.column, int), f"{type(exc).__name__} without a column: {exc}"
    lines = text.split("\n")
    assert 1 <= exc.line <= len(lines) + 1, (exc.line, text)
    assert exc.column >= 1, (exc.column, text)


def run_pipeline(text: str) -> int:
    """Everything the service does with ADQL text; returns how many SQL statements came out.

    Fails the test when anything but an ``AdqlError`` escapes, or one comes without a position.
    """
    rendered = 0
    try:
        tree = parse(text)
    except AdqlError as exc:
        _assert_positioned(exc, text)
        return rendered
    for catalog in (CATALOG, None):
        try:
            checked = check(tree, catalog, text=text)
        except AdqlError as exc:
            _assert_positioned(exc, text)
            continue
        if catalog is None:
            continue
        for dialect in DIALECTS:
            try:
                sql = to_sql(checked, dialect, functions=CATALOG.function_list)
            except AdqlError as exc:
                _assert_positioned(exc, text)
                continue
            assert sql.startswith(("SELECT", "WITH", "(")), sql
            rendered += 1
    return rendered


def test_every_demo_seed_translates_to_both_dialects() -> None:
    # The mutants below start from queries that go all the way through: keep it so.
    for text in DEMO_SEEDS:
        assert run_pipeline(text) == 2, text


# Regressions the fuzzers found (each was an exception other than AdqlError, or no position).
REGRESSIONS = [
    # A literal beyond a DOUBLE: math domain error in the polygon analysis, "inf"/"nan" in SQL.
    "SELECT id FROM demo.sky WHERE 1 = CONTAINS(POINT(ra, dec), "
    "POLYGON(10, 10, 1e30814, 10, 14, 12, 10, 12))",
    "SELECT id FROM demo.sky WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(1e400, 10, 1))",
    # More than 4300 digits: Python's int() refuses them (TOP, GROUP BY positions).
    "SELECT TOP 1" + "0" * 5000 + " id FROM demo.sky",
    "SELECT id FROM demo.sky GROUP BY 1" + "0" * 5000,
    # Nesting beyond the limit: the error had no position.
    "SELECT 1" + "+1" * 3000 + " FROM demo.sky",
    "SELECT id FROM demo.sky WHERE\n" + "NOT " * 3000 + "id = 1",
    # A number compared with a string that holds none: DuckDB failed converting it (HTTP 500).
    "SELECT id FROM demo.sky WHERE dec BETWEEN 'x' AND -30",
    "SELECT id FROM demo.sky WHERE id IN (1, 'two')",
    # ORDER BY a constant: -1 failed in DuckDB (a position out of range), 1+1 was folded into
    # the position 2 (sorting silently by the second column).
    "SELECT id, ra FROM demo.sky ORDER BY -1",
    "SELECT id, ra FROM demo.sky ORDER BY 1 + 1",
    # NUL in a delimited name: MariaDB's parser stops at it (HTTP 500).
    'SELECT id AS "a\x00b" FROM demo.sky',
    # A string in arithmetic that holds no number: DuckDB's binder refused it (HTTP 500).
    "SELECT id FROM demo.sky WHERE CONTAINS(POINT('ICRS' * ra, dec), "
    "CIRCLE('ICRS', 62.0, -37.0, 0.05)) = 1",
]


@pytest.mark.parametrize("text", REGRESSIONS, ids=range(len(REGRESSIONS)))
def test_regressions_are_positioned_adql_errors(text: str) -> None:
    with pytest.raises(AdqlError) as info:
        check(parse(text), CATALOG, text=text)
    _assert_positioned(info.value, text)


def test_numbers_within_range_still_parse() -> None:
    assert run_pipeline("SELECT 1e308, 1e-400, 0.0e999, 99999999999999999999 FROM demo.sky") == 2


@pytest.mark.parametrize("alias", ["a" * 65, "x\U0001f600", "trailing "])
def test_names_mariadb_cannot_hold_are_refused_for_qserv_only(alias: str) -> None:
    checked = check(parse(f'SELECT id AS "{alias}" FROM demo.sky'), CATALOG)
    assert f'"{alias}"' in to_sql(checked, "embedded")
    with pytest.raises(AdqlError) as info:
        to_sql(checked, "qserv")
    assert (info.value.line, info.value.column) == (1, 14)


def test_strings_compared_with_numbers_keep_their_digits() -> None:
    # A 64-bit id written as a string must not pass through a double.
    text = "SELECT id FROM demo.sky WHERE id = '1000000000000000123' OR id IN ('-5', 7)"
    for dialect in DIALECTS:
        sql = to_sql(check(parse(text), CATALOG), dialect)
        assert "= 1000000000000000123" in sql, sql
        assert "IN (-5, 7)" in sql, sql


def test_strings_holding_numbers_are_numbers_in_arithmetic() -> None:
    # ADQL allows '30' * 2; both backends get a DOUBLE literal (DuckDB refuses '30' * ra).
    text = "SELECT ' 30 ' * ra, '-2.5' + mag FROM demo.sky"
    for dialect in DIALECTS:
        sql = to_sql(check(parse(text), CATALOG), dialect)
        assert "30e0 *" in sql, sql
        assert "-2.5e0 +" in sql, sql
        assert "'" not in sql, sql


@fuzz_settings(max_examples=1500)
@given(token_mutants())
@example("SELECT id FROM demo.sky WHERE name = 'a''b' -- ;DROP TABLE x")
def test_token_mutants_of_corpus_and_demo_queries(text: str) -> None:
    run_pipeline(text)


@fuzz_settings(max_examples=800)
@given(token_mutants(DEMO_SEEDS))
def test_token_mutants_of_demo_queries(text: str) -> None:
    run_pipeline(text)


@fuzz_settings(max_examples=800)
@given(byte_mutants())
@example("SELECT\x00 id FROM demo.sky")
@example("SELECT id FROM demo.sky WHERE name = '\udcff'")
def test_byte_mutants(text: str) -> None:
    run_pipeline(text)


@fuzz_settings(max_examples=200)
@given(st.text(max_size=80))
def test_arbitrary_text(text: str) -> None:
    run_pipeline(text)


@fuzz_settings(max_examples=50)
@given(random_queries(depth=2))
def test_random_valid_trees_checked_against_the_catalog(tree: object) -> None:
    # Random trees name random tables: the checker refuses most, with a position.
    run_pipeline(to_adql(tree))  # type: ignore[arg-type]
