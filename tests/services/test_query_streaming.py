"""Sync results stream: the first bytes leave before the database has produced the last row.

The backend is the real embedded database, wrapped so the test can see how many batches the
database had handed over when the document's first row bytes came out.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from astropy.io.votable import parse_single_table

from tap_service.adql.dialects.embedded import setup_statements
from tap_service.config import Config
from tap_service.services.demo_catalog import build_demo_catalog
from tap_service.services.query import QueryRequest, QueryService
from tap_service.services.tapschema import TapSchemaService
from tap_service.storage.embedded import EmbeddedDatabase

ROWS = 1_000_000


class CountingBackend:
    """The real database, counting the batches it has produced so far."""

    def __init__(self, db: EmbeddedDatabase) -> None:
        self.db = db
        self.dialect = "embedded"
        self.produced = 0
        self.finished = False

    def stream(
        self, sql: str, *, batch_rows: int = 65536, timeout: float | None = None
    ) -> Iterator[pa.RecordBatch]:
        for batch in self.db.stream(sql, batch_rows=batch_rows, timeout=timeout):
            self.produced += 1
            yield batch
        self.finished = True

    def ping(self) -> None:
        self.db.ping()


@pytest.fixture(scope="module")
def million_row_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    data_dir = tmp_path_factory.mktemp("stream")
    db = EmbeddedDatabase(data_dir, setup_statements=setup_statements())
    build_demo_catalog(db, n_objects=ROWS // 20, n_forced_per_object=20, seed=7)
    db.close()
    reader = EmbeddedDatabase(data_dir, read_only=True, setup_statements=setup_statements())
    yield reader
    reader.close()


@pytest.mark.slow
def test_first_bytes_leave_before_the_last_row_is_read(million_row_db: EmbeddedDatabase) -> None:
    backend = CountingBackend(million_row_db)
    config = Config(data_dir=Path("unused"), batch_rows=10_000, maxrec_limit=2 * ROWS)
    service = QueryService(config, backend, TapSchemaService(backend))
    prepared = service.prepare(
        QueryRequest(
            query="SELECT forcedSourceId, objectId, psfFlux FROM dp02_dc2_catalogs.ForcedSource",
            lang="ADQL",
            maxrec=str(ROWS),
        )
    )
    backend.produced, backend.finished = 0, False  # forget the TAP_SCHEMA reads of prepare()
    document = service.stream(prepared)
    head = next(document)
    first_rows = next(document)
    assert head.startswith(b"<?xml")
    assert first_rows, "the first batch of rows produced no bytes"
    # Rows are out, yet the database has handed over only the first batches.
    assert not backend.finished
    assert backend.produced <= 3, backend.produced
    rest = b"".join(document)
    assert backend.produced >= ROWS // 10_000
    table = parse_single_table(io.BytesIO(head + first_rows + rest)).to_table()
    assert len(table) == ROWS
