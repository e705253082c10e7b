"""The IVOA lyonetia ADQL corpus through parse + check, without a catalog.

Every distinct query must come out as the corpus says (valid: accepted; invalid: rejected by
the parser or the checker), except the entries of ``tests/data/lyonetia_exceptions.yaml``,
which must come out the other way: the exception list is exact, so fixing a behaviour forces
removing its entry.  The corpus is GPL test data kept outside the repository and read here.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tap_service.adql import AdqlError, check, parse
from tap_service.adql.functions import parse_udf_signature

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "adql-corpus" / "lyonetia-index.jsonl"
EXCEPTIONS = Path(__file__).resolve().parents[1] / "data" / "lyonetia_exceptions.yaml"

pytestmark = pytest.mark.skipif(not CORPUS.exists(), reason=f"corpus not found at {CORPUS}")


@dataclass(frozen=True)
class Case:
    file: str
    uuid: str
    valid: bool
    adql: str
    udfs: tuple[str, ...]
    description: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.file, self.uuid)


def _load_cases() -> list[Case]:
    if not CORPUS.exists():
        return []
    cases = []
    with CORPUS.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            if row["duplicate_of"] is not None:
                continue
            cases.append(
                Case(
                    file=row["file"],
                    uuid=row["uuid"],
                    valid=row["valid"],
                    adql=row["adql"],
                    udfs=tuple(row["udfs"]),
                    description=row["description"],
                )
            )
    return cases


def _load_exceptions() -> dict[tuple[str, str], dict[str, str]]:
    entries = yaml.safe_load(EXCEPTIONS.read_text(encoding="utf-8"))
    return {(e["file"], e["uuid"]): e for e in entries}


CASES = _load_cases()
EXCEPTED = _load_exceptions()


def _accepted(case: Case) -> tuple[bool, str]:
    """Whether parse + check accept the query, and the error when they do not."""
    functions = [parse_udf_signature(u) for u in case.udfs] if case.udfs else None
    try:
        checked = check(parse(case.adql), None, text=case.adql, functions=functions)
    except AdqlError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    assert checked.text == case.adql
    return True, ""


def _case_id(case: Case) -> str:
    return f"{case.file}:{case.uuid[:8]}:{'valid' if case.valid else 'invalid'}"


def test_corpus_counts() -> None:
    """The README's counts: a changed corpus must be looked at, not silently absorbed."""
    counts = Counter(c.valid for c in CASES)
    assert counts[True] == 356
    assert counts[False] == 72


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_query(case: Case) -> None:
    accepted, error = _accepted(case)
    if case.key in EXCEPTED:
        assert accepted != case.valid, (
            f"{case.key} now behaves as the corpus says; remove it from {EXCEPTIONS.name}"
        )
    elif case.valid:
        assert accepted, f"valid query rejected: {error}\n{case.adql}"
    else:
        assert not accepted, f"invalid query accepted ({case.description}):\n{case.adql}"


def test_exception_entries_are_well_formed() -> None:
    keys = {c.key: c for c in CASES}
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
