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


# --------------------------------------------------------------------------- Qserv's rules

_FORBIDDEN_WORDS = {
    "UNION": "set operations",
    "INTERSECT": "set operations",
    "EXCEPT": "set operations",
    "WITH": "WITH",
    "OFFSET": "OFFSET",
    "CAST": "CAST",
    "BINARY": "BINARY (UNHANDLED in Qserv's parser)",
    "COLLATE": "COLLATE (UNHANDLED in Qserv's parser)",
    "NATURAL": "NATURAL JOIN",
    "LEFT": "outer joins",
    "RIGHT": "outer joins",
    "FULL": "outer joins",
    "OUTER": "outer joins",
}


def qserv_violations(sql: str) -> list[str]:
    """What in ``sql`` Qserv's documented restrictions forbid (empty: acceptable).

    Sources: Qserv user guide ("Restrictions"), ``qana/QservRestrictorPlugin.cc`` (restrictor
    detection: a ``scisql_s2Pt*`` function compared with ``=`` in the top-level AND of WHERE),
    ``ccontrol/ParseListener.cc`` (UNHANDLED atoms), DESIGN.md's list.
    """
    tokens = [t for t in tokenize(sql) if t.kind != "space"]
    words = [t.value.upper() if t.kind == "word" else t.value for t in tokens]
    problems: list[str] = []
    if words.count("SELECT") != 1 or words[0] != "SELECT":
        problems.append("sub-queries")
    for i, word in enumerate(words):
        if tokens[i].kind == "word" and word in _FORBIDDEN_WORDS:
            problems.append(_FORBIDDEN_WORDS[word])
        if word == "COUNT" and words[i + 1 : i + 3] == ["(", "DISTINCT"]:
            problems.append("COUNT(DISTINCT ...)")
        if word == "|" and i + 1 < len(words) and words[i + 1] == "|":
            problems.append("|| (logical OR in MySQL)")
    if "ORDER" in words:
        order = words[words.index("ORDER") + 2 :]
        order = order[: order.index("LIMIT")] if "LIMIT" in order else order
        if "(" in order:
            problems.append("functions in ORDER BY")
    if "WHERE" in words:
        start = words.index("WHERE") + 1
        end = len(words)
        depth = 0
        conjuncts: list[list[str]] = [[]]
        for j in range(start, len(words)):
            w = words[j]
            if w == "(":
                depth += 1
            elif w == ")":
                depth -= 1
            if depth == 0 and tokens[j].kind == "word" and w in ("GROUP", "ORDER", "LIMIT"):
                end = j
                break
            if depth == 0 and w == "AND" and tokens[j].kind == "word":
                conjuncts.append([])
                continue
            conjuncts[-1].append(w)
        del end
        restrictors = [
            k
            for k, c in enumerate(conjuncts)
            if c and c[0].lower().startswith("scisql_s2pt") and c[-2:] == ["=", "1"]
        ]
        if len(restrictors) > 1:
            problems.append("more than one spatial restrictor (Qserv then restricts nothing)")
        if restrictors and restrictors[0] != 0:
            problems.append("spatial restrictor not first in WHERE")
        for k in restrictors:
            call = conjuncts[k]
            args = call[call.index("(") + 1 : -3]
            # point arguments are columns; the region's must be literals
            region = _split_args(args)[2:]
            if any(not _literal(a) for a in region):
                problems.append("spatial restrictor with non-literal region")
    return problems


def _split_args(args: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    depth = 0
    for a in args:
        if a == "(":
            depth += 1
        elif a == ")":
            depth -= 1
        if a == "," and depth == 0:
            out.append([])
        else:
            out[-1].append(a)
    return out


def _literal(arg: list[str]) -> bool:
    text = "".join(arg)
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_the_rule_checker_catches_what_qserv_refuses() -> None:
    assert qserv_violations("SELECT `a`.`x` FROM `d`.`a` AS `a` ORDER BY ABS(`x`)")
    assert qserv_violations("SELECT 1 FROM `d`.`a` AS `a` WHERE `x` IN (SELECT 1)")
    assert qserv_violations(
        "SELECT 1 FROM `d`.`a` AS `a` WHERE `x` = 1 "
        "AND scisql_s2PtInCircle(`ra`, `dec`, 1, 2, 3) = 1"
    )
    assert qserv_violations(
        "SELECT 1 FROM `d`.`a` AS `a` WHERE scisql_s2PtInCircle(`ra`, `dec`, `r`, 2, 3) = 1"
    )
    assert not qserv_violations(
        "SELECT 1 FROM `d`.`a` AS `a` WHERE scisql_s2PtInCircle(`ra`, `dec`, 1, -2, 3) = 1 "
        "AND `x` = 1 ORDER BY `x` LIMIT 3"
    )
