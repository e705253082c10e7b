"""The parser against the IVOA lyonetia corpus: syntax only (names and types are the checker's).

Every distinct valid query must parse, and print back to text that parses to the same tree.
Invalid queries are split in two: those the grammar rejects, and those that are syntactically
fine and need the checker (listed below with the reason); both halves are asserted so the list
cannot go stale.
"""

from __future__ import annotations

import pytest

from tap_service.adql import AdqlSyntaxError, parse
from tap_service.adql.ast import walk
from tap_service.adql.unparse import to_adql
from tests.adql.lyonetia import CorpusQuery, queries

VALID = list(queries(valid=True))
INVALID = list(queries(valid=False))

# Invalid queries whose syntax is correct: what makes them invalid is decided after parsing.
NEEDS_CHECKER: dict[str, str] = {
    "7cdd05fa-59b3-11ec-beef-28d2445a8967": "|| applied to a POINT (type check)",
    "84d8bcea-59b3-11ec-beef-28d2445a8967": "|| applied to a POINT (type check)",
    "3a38115a-4509-11e6-8c55-592ac18c5eb7": "TAN2 is no ADQL function and no declared UDF",
    "29c75d48-e525-4e92-af3f-c5e8f3e5f26c": "my_undefined_function is not a declared UDF",
    "d4c3a72c-4458-11e6-96e2-28b2bdcff70b": (
        "INNER JOIN without ON/USING: the corpus contradicts itself (the DaCHS cases accept"
        " 'JOIN t2', 'LEFT OUTER JOIN t2' and 'INNER JOIN (t2 JOIN t3)' without a condition),"
        " so the grammar accepts joins without a condition; a checker rule must decide"
    ),
}


def _ids(items: list[CorpusQuery]) -> list[str]:
    return [q.test_id for q in items]


def test_corpus_size() -> None:
    assert len(VALID) == 356
    assert len(INVALID) == 72


@pytest.mark.parametrize("query", VALID, ids=_ids(VALID))
def test_valid_query_parses_and_round_trips(query: CorpusQuery) -> None:
    tree = parse(query.adql)
    assert parse(to_adql(tree)) == tree


@pytest.mark.parametrize("query", INVALID, ids=_ids(INVALID))
def test_invalid_query(query: CorpusQuery) -> None:
    if query.uuid in NEEDS_CHECKER:
        parse(query.adql)  # syntactically fine; the checker rejects it
    else:
        with pytest.raises(AdqlSyntaxError) as info:
            parse(query.adql)
        assert info.value.message.startswith("Syntax error")


def test_every_node_has_a_position() -> None:
    for query in VALID:
        for node in walk(parse(query.adql)):
            assert node.pos is not None, (query.test_id, node)


def test_needs_checker_entries_are_in_the_corpus() -> None:
    assert set(NEEDS_CHECKER) <= {q.uuid for q in INVALID}
