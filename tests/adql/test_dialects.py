"""ADQL → SQL translation, as tables (tests/data/adql_to_sql_*.yaml) plus the rules behind them.

Each table row is ADQL in and either the exact SQL or the exact refusal out.  After a deliberate
change, regenerate with ``TAP_UPDATE_GOLDEN=1`` and review the diff like code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from tap_service.adql import AdqlError, AdqlUnsupportedError, ast, check, parse, to_sql
from tap_service.adql.catalog import ColumnInfo, SimpleCatalog, TableInfo
from tap_service.adql.dialects.embedded import setup_statements
from tap_service.adql.rewrite import fold_constants, unit_factor
from tap_service.adql.types import DOUBLE, LONG
from tests.adql.conftest import (
    CATALOG,
    GOLDEN_SCHEMA,
    SCHEMA,
    pad_cpoly_for_mariadb,
    translate,
)

DATA = Path(__file__).resolve().parents[1] / "data"
UPDATE = os.environ.get("TAP_UPDATE_GOLDEN") == "1"


def _outcome(adql: str, dialect: str) -> dict[str, str]:
    try:
        return {"sql": translate(adql, dialect)}
    except AdqlError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _load(dialect: str) -> tuple[Path, str, list[dict[str, Any]]]:
    path = DATA / f"adql_to_sql_{dialect}.yaml"
    text = path.read_text()
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    return path, header, yaml.safe_load(text)


def _cases(dialect: str) -> list[Any]:
    _, _, rows = _load(dialect)
    return [pytest.param(row, id=row["name"]) for row in rows]


@pytest.fixture(scope="module", autouse=True)
def _update_golden() -> None:
    if not UPDATE:
        return
    for dialect in ("qserv", "embedded"):
        path, header, rows = _load(dialect)
        new = [{"name": r["name"], "adql": r["adql"], **_outcome(r["adql"], dialect)} for r in rows]
        path.write_text(
            header + yaml.safe_dump(new, sort_keys=False, width=100_000, allow_unicode=True)
        )


@pytest.mark.parametrize("row", _cases("qserv"))
def test_qserv_table(row: dict[str, str]) -> None:
    expected = {k: row[k] for k in ("sql", "error") if k in row}
    assert _outcome(row["adql"], "qserv") == expected


@pytest.mark.parametrize("row", _cases("embedded"))
def test_embedded_table(row: dict[str, str]) -> None:
    expected = {k: row[k] for k in ("sql", "error") if k in row}
    assert _outcome(row["adql"], "embedded") == expected


def test_tables_are_large_enough_and_cover_the_refusals() -> None:
    _, _, qserv = _load("qserv")
    _, _, embedded = _load("embedded")
    assert len(qserv) >= 80
    assert len(embedded) >= 80
    refusals = " ".join(r.get("error", "") for r in qserv)
    for what in (
        "subqueries",
        "UNION, EXCEPT and INTERSECT",
        "WITH",
        "OFFSET",
        "OUTER JOIN",
        "CAST",
        "COUNT(DISTINCT",
        "only columns in ORDER BY",
        "appear in the select list",
        "NATURAL JOIN",
        "geometry values",
        "CONTAINS of circle and circle",
        "INTERSECTS of circle and circle",
    ):
        assert what in refusals, what
    assert all("(line " in r["error"] for r in qserv if "error" in r)


def test_every_embedded_table_query_runs_in_duckdb(duck: Any) -> None:
    """The golden SQL is not only stable but valid: DuckDB prepares every statement."""
    _, _, rows = _load("embedded")
    for row in rows:
        if "sql" in row:
            sql = row["sql"].replace(f'"{GOLDEN_SCHEMA}".', f'"{SCHEMA}".')
            duck.execute("EXPLAIN " + sql)


# --------------------------------------------------------------------------- Qserv rules


def _restrictors(sql: str) -> list[str]:
    return re.findall(r"scisql_s2PtIn\w+\([^)]*\) = 1", sql)


def test_exactly_one_restrictor_first_in_where() -> None:
    sql = translate(
        "SELECT id FROM demo.sky WHERE mag < 20 AND CONTAINS(POINT(ra, dec), "
        "CIRCLE(1, 2, 0.1)) = 1 AND CONTAINS(POINT(ra, dec), CIRCLE(1, 2.1, 0.1)) = 1",
        "qserv",
    )
    where = sql.split(" WHERE ", 1)[1]
    assert where.startswith("scisql_s2PtInCircle(`sky`.`ra`, `sky`.`dec`, 1, 2, 0.1) = 1 AND ")
    assert len(_restrictors(sql)) == 1


@pytest.mark.parametrize(
    "condition",
    [
        "CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3)) = 0",
        "0 = CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3))",
        "CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3)) <> 1",
        "CONTAINS(POINT(ra, dec), BOX(1, 2, 3, 4)) = 0",
    ],
)
def test_negated_region_never_restricts(condition: str) -> None:
    sql = translate(f"SELECT id FROM demo.sky WHERE {condition}", "qserv")
    assert _restrictors(sql) == []
    assert sql.endswith(") <> 1")


def test_computed_point_is_not_a_restrictor() -> None:
    sql = translate(
        "SELECT id FROM demo.sky WHERE CONTAINS(POINT(ra + 1, dec), CIRCLE(1, 2, 3)) = 1",
        "qserv",
    )
    assert _restrictors(sql) == []
    assert "<> 0" in sql


def test_refusal_carries_position() -> None:
    with pytest.raises(AdqlUnsupportedError) as info:
        translate("SELECT id\nFROM demo.sky\nORDER BY id\nOFFSET 5", "qserv")
    assert info.value.line == 1
    assert "OFFSET" in info.value.message


def test_unknown_dialect() -> None:
    checked = check(parse("SELECT id FROM demo.sky"), CATALOG)
    with pytest.raises(AdqlUnsupportedError, match="unknown SQL dialect"):
        to_sql(checked, "oracle")


def test_pad_cpoly_for_mariadb() -> None:
    sql = (
        "x scisql_s2PtInCPoly(`a`.`ra`, f(1, 2), 1, 2, 3, 4, 5, 6) = 1 AND "
        "scisql_s2PtInCPoly(a, b, 1, 2, 3, 4, 5, 6, 7, 8)"
    )
    padded = pad_cpoly_for_mariadb(sql)
    calls = re.findall(r"scisql_s2PtInCPoly\((.*?)\)(?: = 1|$)", padded)
    assert len(calls) == 2
    assert padded.count("NULL") == (40 - 6) + (40 - 8)
    assert "f(1, 2), 1, 2, 3, 4, 5, 6, NULL" in padded


# --------------------------------------------------------------------------- rewrite


def _select_expr(text: str) -> ast.Expr:
    checked = check(parse(f"SELECT {text} AS x FROM demo.bands"), CATALOG)
    folded = fold_constants(checked.query)
    body = folded.body
    assert isinstance(body, ast.SelectQuery)
    item = body.items[0]
    assert isinstance(item, ast.SelectItem)
    return item.expr


@pytest.mark.parametrize(
    ("text", "value", "type_"),
    [
        ("5/3600.", 5 / 3600, DOUBLE),
        ("2 + 3 * 4", 14, LONG),
        ("-(-5)", 5, None),
        ("LOG(EXP(2))", 2.0, DOUBLE),
        ("LOG10(1000)", 3.0, DOUBLE),
        ("ROUND(2.5)", 2.0, DOUBLE),
        ("ROUND(3.5)", 4.0, DOUBLE),
        ("TRUNCATE(-2.567, 2)", -2.56, DOUBLE),
        ("MOD(-7, 3)", -1, LONG),
        ("POWER(2, 0.5)", 2**0.5, DOUBLE),
        ("DEGREES(PI())", 180.0, DOUBLE),
        ("1/4", 0.25, DOUBLE),
    ],
)
def test_constant_folding(text: str, value: float, type_: Any) -> None:
    expr = _select_expr(text)
    assert isinstance(expr, ast.NumericLiteral)
    assert expr.value == pytest.approx(value, rel=1e-15)
    if type_ is not None:
        assert expr.type_ == type_


@pytest.mark.parametrize("text", ["1/0", "SQRT(-1)", "LOG(0)", "RAND()", "ACOS(2)"])
def test_not_folded(text: str) -> None:
    assert not isinstance(_select_expr(text), ast.NumericLiteral)


def test_folded_circle_reaches_qserv_as_literals() -> None:
    sql = translate(
        "SELECT id FROM demo.sky WHERE CONTAINS(POINT('ICRS', ra, dec), "
        "CIRCLE('ICRS', 60 + 2, -(37), 5/3600.)) = 1",
        "qserv",
    )
    assert "scisql_s2PtInCircle(`sky`.`ra`, `sky`.`dec`, 62, -37, 0.001388888888888889) = 1" in sql


def test_unit_factors() -> None:
    assert unit_factor("deg", "arcsec") == pytest.approx(3600)
    assert unit_factor("mas/yr", "arcsec/yr") == pytest.approx(1e-3)
    assert unit_factor("deg", "m") is None
    assert unit_factor("furlong", "m") is None


# --------------------------------------------------------------------------- DuckDB macros


def test_setup_statements_are_idempotent() -> None:
    con = duckdb.connect()
    for _ in range(2):
        for stmt in setup_statements():
            con.execute(stmt)
    row = con.execute(
        "SELECT adql_distance(0, 0, 90, 0), adql_pt_in_circle(1, 1, 0, 0, 1.5), "
        "adql_pt_in_circle(1, 1, 0, 0, 1.4), adql_pt_in_circle(0, 0, 0, 0, -1), "
        "adql_pt_in_cpoly(12, 11, [10, 10, 14, 10, 14, 12, 10, 12]::DOUBLE[]), "
        "adql_pt_in_cpoly(12, 11, [10, 10, 10, 12, 14, 12, 14, 10]::DOUBLE[]), "
        "adql_pt_in_cpoly(192, -11, [10, 10, 10, 12, 14, 12, 14, 10]::DOUBLE[]), "
        "adql_truncate(-2.567::DOUBLE, 2)"
    ).fetchone()
    assert row is not None
    assert row[0] == pytest.approx(90.0)
    assert row[1:7] == (True, False, False, True, True, False)
    assert row[7] == pytest.approx(-2.56)


def test_adql_package_stays_pure() -> None:
    """No database, web or configuration imports inside tap_service/adql."""
    root = Path(__file__).resolve().parents[2] / "tap_service" / "adql"
    forbidden = re.compile(
        r"^\s*(from|import)\s+(duckdb|pymysql|sqlalchemy|fastapi|starlette|"
        r"tap_service\.(storage|services|handlers|config|factory))",
        re.MULTILINE,
    )
    for path in root.rglob("*.py"):
        assert not forbidden.search(path.read_text()), path


def test_lyonetia_corpus_translates_or_refuses_cleanly() -> None:
    """Every valid corpus query the checker accepts renders, or is refused with AdqlError."""
    from tests.adql import lyonetia

    if not lyonetia.INDEX.is_file():
        pytest.skip(f"corpus not found at {lyonetia.INDEX}")
    rendered = 0
    for q in lyonetia.queries(valid=True):
        try:
            checked = check(parse(q.adql), None)
        except AdqlError:
            continue
        for dialect in ("qserv", "embedded"):
            try:
                to_sql(checked, dialect)
                rendered += 1
            except AdqlError:
                pass
    assert rendered > 400


def test_identifiers_are_quoted_and_escaped(duck: Any) -> None:
    odd = TableInfo(
        schema="odd",
        name="Mixed Case",
        physical_schema='we"ird`schema',
        columns=(
            ColumnInfo(name='Quote"Name', datatype="int"),
            ColumnInfo(name="back`tick", datatype="int"),
            ColumnInfo(name="select", datatype="int"),
        ),
    )
    catalog = SimpleCatalog(table_list=(odd,))
    adql = 'SELECT "Quote""Name", "back`tick", "select" FROM odd."Mixed Case" AS "x y"'
    checked = check(parse(adql), catalog)
    assert to_sql(checked, "qserv") == (
        'SELECT `x y`.`Quote"Name` AS `Quote"Name`, `x y`.`back``tick` AS `back``tick`, '
        '`x y`.`select` AS `select` FROM `we"ird``schema`.`Mixed Case` AS `x y`'
    )
    sql = to_sql(checked, "embedded")
    assert sql == (
        'SELECT "x y"."Quote""Name" AS "Quote""Name", "x y"."back`tick" AS "back`tick", '
        '"x y"."select" AS "select" FROM "we""ird`schema"."Mixed Case" AS "x y"'
    )
    duck.execute('CREATE SCHEMA IF NOT EXISTS "we""ird`schema"')
    duck.execute(
        'CREATE OR REPLACE TABLE "we""ird`schema"."Mixed Case" '
        '("Quote""Name" INTEGER, "back`tick" INTEGER, "select" INTEGER)'
    )
    duck.execute('INSERT INTO "we""ird`schema"."Mixed Case" VALUES (1, 2, 3)')
    assert duck.execute(sql).fetchall() == [(1, 2, 3)]
