"""A query that fails after rows have left still ends every format in a defined way:
VOTables get a trailing QUERY_STATUS=ERROR INFO, CSV/TSV a marker line, Parquet its footer."""

from __future__ import annotations

import csv
import io

import pyarrow.parquet as pq
import pytest
from astropy.io import ascii as astropy_ascii

from tap_service.votable import Info
from tap_service.votable.delimited import ERROR_MARKER
from tap_service.votable.parquet import CONTENT_KEY
from tests.votable.samples import N_ROWS, NAMES, parse_votable, render, sample_batch

MESSAGE = 'The database failed while sending rows: lost connection, "x" <y> & z\nsecond line'
ERROR = Info("QUERY_STATUS", "ERROR", MESSAGE)


def _statuses(votable: object) -> list[tuple[str, str | None]]:
    resource = votable.resources[0]  # type: ignore[attr-defined]
    return [(i.value, i.content) for i in resource.infos if i.name == "QUERY_STATUS"]


@pytest.mark.parametrize("response_format", ["votable", "votable/td", "votable/b"])
def test_votable_trailing_error_info(response_format: str) -> None:
    document = render(response_format, [sample_batch()], infos_after=[ERROR])
    votable = parse_votable(document)  # well-formed, schema-valid, rows intact
    assert len(votable.get_first_table().array) == N_ROWS
    assert _statuses(votable) == [("OK", None), ("ERROR", MESSAGE)]


def test_csv_error_marker_line() -> None:
    document = render("csv", [sample_batch()], infos_after=[ERROR]).decode("utf-8")
    rows = list(csv.reader(io.StringIO(document, newline="")))
    assert rows[0] == NAMES
    assert len(rows) == 1 + N_ROWS + 1
    assert rows[-1] == [f"{ERROR_MARKER} {' '.join(MESSAGE.split())}"]
    assert document.endswith("\r\n")
    # astropy pads the short row: the marker lands in the first column, which turns to text.
    table = astropy_ascii.read(document, format="csv")
    assert str(table[NAMES[0]][-1]).startswith(ERROR_MARKER)


def test_tsv_error_marker_line() -> None:
    document = render("tsv", [sample_batch()], infos_after=[ERROR]).decode("utf-8")
    last = document.split("\n")[-2]
    assert last.startswith(ERROR_MARKER)
    assert "\t" not in last
    assert "lost connection" in last


@pytest.mark.parametrize("response_format", ["csv", "tsv"])
def test_no_marker_without_error(response_format: str) -> None:
    plain = render(response_format, [sample_batch()])
    assert render(response_format, [sample_batch()], overflow=True) == plain
    assert ERROR_MARKER.encode() not in plain


def test_parquet_error_in_footer() -> None:
    document = render("parquet", [sample_batch()], infos_after=[ERROR])
    assert pq.read_table(io.BytesIO(document)).num_rows == N_ROWS
    content = pq.read_metadata(io.BytesIO(document)).metadata[CONTENT_KEY.encode()]
    assert _statuses(parse_votable(content)) == [("OK", None), ("ERROR", MESSAGE)]
