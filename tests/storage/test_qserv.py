"""The Qserv backend's SQL handling, without a server: lexer, table references, padding, routing."""

from __future__ import annotations

import pytest

from tap_service.exceptions import QueryError
from tap_service.storage.qserv import (
    MySQLBackend,
    RoutingBackend,
    join_tokens,
    pad_cpoly,
    table_references,
    tokenize,
)
from tests.adql.conftest import make_catalog, translate

CATALOG = make_catalog("demo")


def _routing() -> RoutingBackend:
    catalog = MySQLBackend("mysql+pymysql://root@127.0.0.1:1/cat_db")
    tap_schema = MySQLBackend("mysql+pymysql://root@127.0.0.1:1/ts_db")
    return RoutingBackend(catalog, tap_schema, databases={"demo": "demo_physical"})


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'it''s', 'back\\\\slash\\'', `we``ird` FROM `a`.`b` AS `c`",
        "SELECT 1.5e-3, .5, 3. FROM `x`.`y` AS `y` WHERE `y`.`z` <> -2",
        'SELECT schema_name FROM "TAP_SCHEMA"."schemas"',
    ],
)
def test_tokens_join_back_to_the_same_text(sql: str) -> None:
    assert join_tokens(tokenize(sql)) == sql


def test_table_references_are_found_only_in_from_clauses() -> None:
    sql = translate(
        "SELECT s.id, b.rank FROM demo.sky AS s, demo.bands AS b WHERE s.band = b.band "
        "AND s.name = 'demo.sky'",
        "qserv",
        CATALOG,
    )
    tokens = tokenize(sql)
    refs = [(tokens[a].value, tokens[b].value) for a, b in table_references(tokens)]
    assert refs == [("demo", "sky"), ("demo", "bands")]


def test_a_string_literal_never_becomes_a_table_reference() -> None:
    sql = "SELECT `t`.`a` AS `a` FROM `demo`.`sky` AS `t` WHERE `t`.`a` = ', `TAP_SCHEMA`.`x`'"
    side, physical = _routing().route(sql)
    assert side.params.database == "cat_db"
    assert physical.endswith("WHERE `t`.`a` = ', `TAP_SCHEMA`.`x`'")
    assert "FROM `demo_physical`.`sky`" in physical


def test_tap_schema_queries_go_to_the_tap_schema_database() -> None:
    routing = _routing()
    side, physical = routing.route('SELECT schema_name FROM "TAP_SCHEMA"."schemas"')
    assert side is routing.tap_schema
    assert physical == "SELECT schema_name FROM `ts_db`.`schemas`"


def test_mixing_tap_schema_and_catalog_tables_is_refused() -> None:
    sql = (
        "SELECT `t`.`table_name` AS `table_name` FROM `TAP_SCHEMA`.`tables` AS `t` "
        "JOIN `demo`.`sky` AS `s` ON `s`.`name` = `t`.`table_name`"
    )
    with pytest.raises(QueryError, match="TAP_SCHEMA"):
        _routing().route(sql)


def test_cpoly_calls_are_padded_to_the_stand_in_arity() -> None:
    sql = translate(
        "SELECT id FROM demo.sky WHERE CONTAINS(POINT(ra, dec), "
        "POLYGON(10, 10, 14, 10, 12, 11, 14, 12, 10, 12)) = 1",
        "qserv",
        CATALOG,
    )
    padded = join_tokens(pad_cpoly(tokenize(sql), 20))
    assert padded.count("scisql_s2PtInCPoly(") == 2
    for call in padded.split("scisql_s2PtInCPoly(")[1:]:
        args = call[: call.index(")")].split(",")
        assert len(args) == 42
    with pytest.raises(QueryError):
        pad_cpoly(tokenize(sql), 3)
