"""A result-size budget cuts results at a row boundary and marks OVERFLOW (embedded and Qserv)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from astropy.io.votable import parse

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.config import Config
from tap_service.services.demo_catalog import build_demo_catalog
from tap_service.services.query import BUDGET_PIECE_ROWS, QueryRequest, QueryService
from tap_service.services.tapschema import TapSchemaService
from tap_service.storage.embedded import EmbeddedDatabase

QUERY = "SELECT forcedSourceId, objectId, psfFlux FROM dp02_dc2_catalogs.ForcedSource"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    data_dir = tmp_path_factory.mktemp("budget")
    with EmbeddedDatabase(data_dir, setup_statements=setup_statements()) as writer:
        build_demo_catalog(writer, n_objects=5000, n_forced_per_object=20, seed=11)
    reader = EmbeddedDatabase(data_dir, read_only=True, setup_statements=setup_statements())
    yield reader
    reader.close()


def run(db: EmbeddedDatabase, budget: int | None, fmt: str, query: str = QUERY) -> bytes:
    config = Config(data_dir=Path("unused"), result_bytes_limit=budget, maxrec_default=10**7)
    service = QueryService(config, db, TapSchemaService(db))
    prepared = service.prepare(QueryRequest(query=query, lang="ADQL", response_format=fmt))
    return b"".join(service.stream(prepared))


def status(document: bytes) -> list[str]:
    votable = parse(io.BytesIO(document))
    return [info.value for info in votable.resources[0].infos if info.name == "QUERY_STATUS"]


@pytest.mark.parametrize("fmt", ["votable", "votable/td"])
def test_budget_cuts_at_a_row_boundary_and_marks_overflow(db: EmbeddedDatabase, fmt: str) -> None:
    full = run(db, None, fmt)
    budget = 300_000
    cut = run(db, budget, fmt)
    assert len(full) > 4 * budget
    table = parse(io.BytesIO(cut)).get_first_table().to_table()
    assert "OVERFLOW" in status(cut)
    assert 0 < len(table) < 100_000
    # Cut once the budget is reached, within one piece of rows beyond it.
    bytes_per_row = len(full) / 100_000
    assert budget <= len(cut) <= budget + (BUDGET_PIECE_ROWS + 50) * bytes_per_row + 4096
    # Complete rows, the first ones of the same result.
    whole = parse(io.BytesIO(full)).get_first_table().to_table()
    assert list(table["forcedSourceId"]) == list(whole["forcedSourceId"][: len(table)])


def test_csv_is_cut_at_a_line(db: EmbeddedDatabase) -> None:
    cut = run(db, 100_000, "csv").decode()
    lines = cut.rstrip("\r\n").split("\r\n")
    assert lines[0] == "forcedSourceId,objectId,psfFlux"
    assert all(len(line.split(",")) == 3 for line in lines[1:])
    assert 100_000 <= len(cut) < 200_000


def test_a_result_under_the_budget_is_untouched(db: EmbeddedDatabase) -> None:
    small = "SELECT TOP 10 objectId FROM dp02_dc2_catalogs.Object ORDER BY objectId"
    assert run(db, 10_000_000, "votable", small) == run(db, None, "votable", small)
    assert status(run(db, 10_000_000, "votable", small)) == ["OK"]
