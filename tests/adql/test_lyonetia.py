"""The IVOA lyonetia ADQL corpus through parse + check, without a catalog.

Every distinct query must come out as the corpus says (valid: accepted; invalid: rejected by
the parser or the checker), except the entries of ``tests/data/lyonetia_exceptions.yaml``,
which must come out the other way: the exception list is exact, so fixing a behaviour forces
removing its entry.  The corpus is GPL test data kept outside the repository and read here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from tap_service.adql import AdqlError, AdqlNameError, CheckedQuery, ast, check, parse
from tap_service.adql.catalog import SimpleCatalog
from tap_service.adql.functions import parse_udf_signature
from tests.adql.catalogs import CATALOG, DACHS_CATALOG
from tests.adql.lyonetia import CorpusQuery, queries

EXCEPTIONS = Path(__file__).resolve().parents[1] / "data" / "lyonetia_exceptions.yaml"


def _key(case: CorpusQuery) -> tuple[str, str]:
    return (case.file, case.uuid)


def _load_exceptions() -> dict[tuple[str, str], dict[str, str]]:
    entries = yaml.safe_load(EXCEPTIONS.read_text(encoding="utf-8"))
    return {(e["file"], e["uuid"]): e for e in entries}


CASES = list(queries())
EXCEPTED = _load_exceptions()


def _accepted(case: CorpusQuery) -> tuple[bool, str]:
    """Whether parse + check accept the query, and the error when they do not."""
    functions = [parse_udf_signature(u) for u in case.udfs] if case.udfs else None
    try:
        checked = check(parse(case.adql), None, text=case.adql, functions=functions)
    except AdqlError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    _assert_resolved(checked)
    assert checked.text == case.adql
    return True, ""


def _assert_resolved(checked: CheckedQuery) -> None:
    """What the dialects rely on, even without a catalog: everything bound and typed."""
    for node in ast.walk(checked.query):
        if isinstance(node, ast.ColumnRef | ast.TableRef):
            assert node.binding is not None, node
        if isinstance(node, ast.Expr):
            assert node.type_ is not None, node
        if isinstance(node, ast.SelectItem):
            assert node.alias is not None, node
        if isinstance(node, ast.Star):
            assert len(node.qualifier) == 1, "only stars over unknown tables stay"


def _case_id(case: CorpusQuery) -> str:
    return f"{case.test_id}:{'valid' if case.valid else 'invalid'}"


def test_corpus_counts() -> None:
    """The README's counts: a changed corpus must be looked at, not silently absorbed."""
    counts = Counter(c.valid for c in CASES)
    assert counts[True] == 356
    assert counts[False] == 72


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_query(case: CorpusQuery) -> None:
    accepted, error = _accepted(case)
    if _key(case) in EXCEPTED:
        assert accepted != case.valid, (
            f"{_key(case)} now behaves as the corpus says; remove it from {EXCEPTIONS.name}"
        )
    elif case.valid:
        assert accepted, f"valid query rejected: {error}\n{case.adql}"
    else:
        assert not accepted, f"invalid query accepted ({case.description}):\n{case.adql}"


def test_exception_entries_are_well_formed() -> None:
    keys = {_key(c): c for c in CASES}
    for key, entry in EXCEPTED.items():
        assert key in keys, f"{key} is not a distinct corpus query"
        expected = "valid" if keys[key].valid else "invalid"
        assert entry["corpus_says"] == expected, key
        assert len(entry["reason"]) > 20, key


def test_declared_udfs_make_unknown_functions_errors() -> None:
    """The one invalid UDF query is rejected because its file declares the UDFs it may use."""
    rejected = [c for c in CASES if c.udfs and not c.valid and "my_undefined_function" in c.adql]
    assert len(rejected) == 1
    accepted, error = _accepted(rejected[0])
    assert not accepted
    assert "my_undefined_function" in error


# --------------------------------------------------------------------------- with a catalog

# DaCHS's "metadata inference samples" are meant to be checked against the tables its tests
# define (tests/adql/catalogs.py rebuilds them).  With that catalog the checker must accept
# them all, except where a query names something those tables do not have.
METADATA_REJECTED = {
    "f0904614-4cf9-11e6-bf5d-ebbe7e1e6fb5": "column x and table foo exist nowhere",
    "1095dfb4-4cfa-11e6-bf5d-ebbe7e1e6fb5": "misc.* after 'misc AS foo' (the alias hides it)",
    "45429eac-4cfd-11e6-9064-032db3af9290": "spatial.dist after 'spatial AS a'",
    "d65405ea-4cfb-11e6-9064-032db3af9290": (
        'delimited "Inch""ing" is case-sensitive and the column is inch"ing'
    ),
    "50cf9e14-4cfd-11e6-9064-032db3af9290": "dist is in both spatial and spatial2: ambiguous",
    "e91ce10e-4cfd-11e6-9064-032db3af9290": "HAVING avg(dist): dist in spatial and spatial2",
}
METADATA_SAMPLES = [
    c for c in CASES if c.valid and c.description.startswith("metadata inference samples")
]


@pytest.mark.parametrize("case", METADATA_SAMPLES, ids=[_case_id(c) for c in METADATA_SAMPLES])
def test_metadata_samples_with_the_dachs_tables(case: CorpusQuery) -> None:
    if case.uuid in METADATA_REJECTED:
        with pytest.raises(AdqlNameError):
            check(parse(case.adql), DACHS_CATALOG)
        return
    checked = check(parse(case.adql), DACHS_CATALOG)
    assert not any(isinstance(n, ast.Star) for n in ast.walk(checked.query))
    for column in checked.columns:
        assert column.datatype is not None, (column, case.adql)
    assert len({c.name.lower() for c in checked.columns}) == len(checked.columns)


def test_metadata_samples_are_all_there() -> None:
    assert len(METADATA_SAMPLES) > 60
    assert {c.uuid for c in METADATA_SAMPLES} >= set(METADATA_REJECTED)


@pytest.mark.parametrize("catalog", [CATALOG, DACHS_CATALOG], ids=["rubin-like", "dachs"])
def test_any_catalog_yields_adql_errors_only(catalog: SimpleCatalog) -> None:
    """Checking every parseable corpus query against unrelated catalogs: most fail, all of
    them with an ``AdqlError`` (the service turns those into 400s; anything else is a 500)."""
    outcomes: Counter[str] = Counter()
    for case in CASES:
        try:
            tree = parse(case.adql)
        except AdqlError:
            continue
        try:
            check(tree, catalog)
            outcomes["accepted"] += 1
        except AdqlNameError:
            outcomes["name error"] += 1
        except AdqlError:
            outcomes["other error"] += 1
    assert sum(outcomes.values()) > 350
    assert outcomes["name error"] > 250
