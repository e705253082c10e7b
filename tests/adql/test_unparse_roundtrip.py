"""``to_adql`` against the parser: printing a tree and reading it back gives the same tree, and
no text whatsoever makes the parser fail with anything but an ``AdqlError``."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tap_service.adql import ast as a
from tap_service.adql.errors import AdqlError
from tap_service.adql.parser import _fast_parse, _GiveUp, _parser, parse
from tap_service.adql.unparse import to_adql
from tests.adql import strategies

_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@settings(_SETTINGS, max_examples=120)
@given(strategies.random_queries())
def test_round_trip_of_random_queries(tree: a.Query) -> None:
    text = to_adql(tree)
    assert parse(text) == tree, text


@_SETTINGS
@given(strategies.random_values())
def test_round_trip_of_random_expressions(value: a.Expr) -> None:
    text = to_adql(value)
    item = parse(f"SELECT {text} FROM t").body
    assert isinstance(item, a.SelectQuery)
    assert item.items == (a.SelectItem(expr=value),), text


@_SETTINGS
@given(strategies.random_conditions())
def test_round_trip_of_random_conditions(condition: a.Condition) -> None:
    text = to_adql(condition)
    body = parse(f"SELECT x FROM t WHERE {text}").body
    assert isinstance(body, a.SelectQuery)
    assert body.where == condition, text


@pytest.mark.parametrize(
    "text",
    [
        "SELECT a - -1, - -a, +-a, -(a + b), (a - b) - c, a - (b - c), a / (b * c) FROM t",
        'SELECT \'it\'\'s\', "we""ird", "select" FROM "from"',
        "SELECT x FROM t WHERE NOT (a = 1 OR b = 2) AND (c = 3 OR NOT d = 4)",
        "SELECT x FROM t WHERE NOT (NOT a = 1)",
        "SELECT CIRCLE('ICRS', POINT('GALACTIC', 1, 2), 3), CIRCLE(POINT('a', 1), 2) FROM t",
        "SELECT BOX(POINT(NULL, 1), 2, 3), POLYGON(POINT('ICRS', 1, 2), p, q) FROM t",
        "SELECT * FROM a JOIN (b JOIN c ON b.x = c.x) ON a.y = b.y NATURAL JOIN d",
        "SELECT a FROM t UNION (SELECT b FROM u UNION SELECT c FROM v) INTERSECT SELECT d FROM w",
        "(SELECT a FROM t) UNION ALL ((SELECT b FROM u)) ORDER BY 1 OFFSET 3",
        "WITH q AS (SELECT a FROM t ORDER BY a) SELECT * FROM q WHERE a IN (SELECT b FROM u)",
        "SELECT CAST(x AS NATIONAL CHAR(3)), COUNT(DISTINCT y), (SELECT MAX(z) FROM u) FROM t",
    ],
)
def test_round_trip_of_tricky_texts(text: str) -> None:
    tree = parse(text)
    assert parse(to_adql(tree)) == tree


def test_rendering_is_readable() -> None:
    tree = parse(
        "select top 10 ra,dec from gaia.source as s where 1=contains(point('ICRS',ra,dec),"
        "circle('ICRS',10,20,0.5)) and phot_g_mean_mag<15 order by phot_g_mean_mag desc"
    )
    assert to_adql(tree) == (
        "SELECT TOP 10 ra, dec FROM gaia.source AS s "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, 20, 0.5)) "
        "AND phot_g_mean_mag < 15 ORDER BY phot_g_mean_mag DESC"
    )


def test_undelimited_reserved_name_is_written_delimited() -> None:
    # Not a tree the parser builds; the closest text still names the same thing.
    assert to_adql(a.ColumnRef(name=a.Identifier(name="select"))) == '"select"'


# ---------------------------------------------------------------------------- robustness

_ADQL_ALPHABET = st.sampled_from(
    [
        *"SELECTFROMWHEREabcxyz0123456789 \n\t'\"().,*+-/<>=!|%_;[]?&^é",
        *("SELECT ", " FROM ", " WHERE ", " AND ", " OR ", " NOT ", "--", "||", " JOIN "),
        *(" ON ", " IN ", "POINT(", "CIRCLE(", "CAST(", " AS ", " UNION ", " TOP ", "1e", ".5"),
    ]
)


def _parses_or_adql_error(text: str) -> None:
    with contextlib.suppress(AdqlError):
        parse(text)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_random_text_never_raises_anything_but_adql_error(text: str) -> None:
    _parses_or_adql_error(text)


@settings(max_examples=500, deadline=None)
@given(st.binary())
def test_random_bytes_decoded_never_raise_anything_but_adql_error(data: bytes) -> None:
    _parses_or_adql_error(data.decode("utf-8", errors="replace"))
    _parses_or_adql_error(data.decode("latin-1"))


@settings(max_examples=500, deadline=None)
@given(st.lists(_ADQL_ALPHABET, max_size=40).map("".join))
@example("SELECT")
@example("SELECT '")
@example('SELECT "')
@example("SELECT x FROM t WHERE POINT(")
def test_adql_like_noise_never_raises_anything_but_adql_error(text: str) -> None:
    _parses_or_adql_error(text)
    _same_verdict_on_both_paths(text)


def _same_verdict_on_both_paths(text: str) -> None:
    """The fast path and lark agree: same tree, or the fast path does not accept what lark
    rejects."""
    try:
        slow = _parser().parse(text)
    except Exception:  # noqa: BLE001 - any lark failure
        with pytest.raises((_GiveUp, AdqlError)):
            _fast_parse(text)
        return
    assert _fast_parse(text) == slow


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategies.random_queries(), st.data())
def test_damaged_queries_never_raise_anything_but_adql_error(
    tree: a.Query, data: st.DataObject
) -> None:
    text = to_adql(tree)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    filler = data.draw(st.sampled_from(["", "(", ")", ",", "'", '"', " SELECT ", "--", "1"]))
    damaged = text[:start] + filler + text[end:]
    _parses_or_adql_error(damaged)
    _same_verdict_on_both_paths(damaged)
    _same_verdict_on_both_paths(text)
