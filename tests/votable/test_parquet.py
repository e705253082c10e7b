"""VOParquet: pyarrow reads back every sample value; the footer holds a valid DATA-less VOTable
(IVOA VOParquet 1.0 Note) whose FIELDs match the columns and whose QUERY_STATUS says how the
query ended."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy import units

from tap_service.votable import Field, Info, make_writer
from tap_service.votable.parquet import CONTENT_KEY, ROW_GROUP_ROWS, VERSION_KEY
from tests.votable.samples import (
    EXPECTED,
    FIELDS,
    N_ROWS,
    NAMES,
    cell,
    parse_votable,
    random_batch,
    render,
    same,
    sample_batch,
)

ARROW_TYPES = {
    "objectId": pa.int64(),
    "ra": pa.float64(),
    "flux": pa.float32(),
    "flag": pa.bool_(),
    "small": pa.int16(),
    "count": pa.int32(),
    "byte": pa.uint8(),
    "band": pa.string(),
    "label": pa.string(),
    "pt": pa.list_(pa.float64()),
    "obs_time": pa.string(),
    "empty": pa.int32(),
}


def read(document: bytes) -> tuple[pa.Table, Any]:
    """The table, and the embedded VOTable parsed strictly by astropy."""
    table = pq.read_table(io.BytesIO(document))
    metadata = pq.read_metadata(io.BytesIO(document)).metadata
    assert metadata[VERSION_KEY.encode()] == b"1.0"
    votable = parse_votable(metadata[CONTENT_KEY.encode()])
    return table, votable


def statuses(votable: Any) -> list[tuple[str, str]]:
    resource = votable.resources[0]
    return [
        (info.value, info.content or "") for info in resource.infos if info.name == "QUERY_STATUS"
    ]


def test_media_type_and_aliases() -> None:
    for name in ("parquet", "PARQUET", "application/vnd.apache.parquet"):
        assert make_writer(name, FIELDS).media_type == "application/vnd.apache.parquet"


def test_every_sample_value_round_trips() -> None:
    document = render("parquet", [sample_batch()])
    assert document[:4] == b"PAR1"
    assert document[-4:] == b"PAR1"
    table, _votable = read(document)
    assert table.column_names == NAMES
    for name, arrow_type in ARROW_TYPES.items():
        assert table.schema.field(name).type == arrow_type, name
    for name in NAMES:
        actual = table.column(name).to_pylist()
        expected = EXPECTED[name]
        if name == "flux":
            actual = [np.float32(v) for v in actual]
        assert len(actual) == N_ROWS
        assert same(actual, expected), (name, actual, expected)


def test_footer_votable_describes_the_columns() -> None:
    document = render("parquet", [sample_batch()], infos=[Info("QUERY", "SELECT 1")])
    table, votable = read(document)
    meta = votable.get_first_table()
    assert meta.name == "results"
    assert [f.name for f in meta.fields] == table.column_names
    for field, declared in zip(meta.fields, FIELDS, strict=True):
        assert field.datatype == declared.datatype
        assert field.unit == (units.Unit(declared.unit) if declared.unit else None)
        assert field.ucd == declared.ucd
        assert field.xtype == declared.xtype
    assert meta.array.size == 0  # no DATA
    assert statuses(votable) == [("OK", "")]
    infos = {info.name: info.value for info in votable.resources[0].infos}
    assert infos["QUERY"] == "SELECT 1"


def test_overflow_and_error_are_in_the_footer() -> None:
    _, votable = read(render("parquet", [sample_batch()], overflow=True))
    assert statuses(votable) == [("OK", ""), ("OVERFLOW", "")]
    error = Info("QUERY_STATUS", "ERROR", "connection lost after 5 rows")
    table, votable = read(render("parquet", [sample_batch()], infos_after=[error]))
    assert table.num_rows == N_ROWS  # the rows sent are still a readable file
    assert statuses(votable) == [("OK", ""), ("ERROR", "connection lost after 5 rows")]


def test_resource_meta_follows_the_results() -> None:
    meta = (
        b'<RESOURCE type="meta" utype="adhoc:service" name="links">'
        b'<PARAM name="standardID" datatype="char" arraysize="*" '
        b'value="ivo://ivoa.net/std/DataLink#links-1.1"/></RESOURCE>\n'
    )
    _, votable = read(render("parquet", [sample_batch()], resource_meta=meta))
    assert [r.type for r in votable.resources] == ["results", "meta"]


@pytest.mark.parametrize("batches", [0, 1])
def test_empty_results(batches: int) -> None:
    empty = sample_batch().slice(0, 0)
    table, votable = read(render("parquet", [empty] * batches))
    assert table.num_rows == 0
    assert table.column_names == NAMES
    assert [f.name for f in votable.get_first_table().fields] == NAMES


def test_one_row_and_begin_end_only() -> None:
    table, _ = read(render("parquet", [sample_batch().slice(1, 1)]))
    assert table.num_rows == 1
    assert table.column("objectId").to_pylist() == [None]
    writer = make_writer("parquet", FIELDS)
    table, _ = read(writer.begin() + writer.end())
    assert table.num_rows == 0


def test_streams_row_groups_with_bounded_buffer() -> None:
    """Bytes leave once a row group is full, long before the end; random rows read back."""
    fields = [Field(name="n", datatype="long"), Field(name="x", datatype="double")]
    writer = make_writer("parquet", fields)
    chunks = [writer.begin()]
    rows = 0
    sizes = []
    source = []
    for seed in range(12):
        n = np.arange(rows, rows + 30000, dtype=np.int64)
        x = np.random.default_rng(seed).standard_normal(30000)
        source.append((n, x))
        chunks.append(writer.write_batch(pa.record_batch([n, x], names=["n", "x"])))
        sizes.append(len(chunks[-1]))
        rows += 30000
    chunks.append(writer.end())
    # A row group leaves as soon as ROW_GROUP_ROWS rows are pending (here every third batch).
    assert sum(1 for size in sizes if size) >= rows // (ROW_GROUP_ROWS + 30000)
    assert sum(sizes) > len(b"".join(chunks)) * 0.7
    document = b"".join(chunks)
    table = pq.read_table(io.BytesIO(document))
    assert table.column("n").to_numpy().tolist() == list(range(rows))
    expected = np.concatenate([x for _, x in source])
    assert table.column("x").to_numpy().tobytes() == expected.tobytes()
    assert pq.ParquetFile(io.BytesIO(document)).metadata.num_row_groups > 1


def test_random_rows_match_binary2() -> None:
    """Parquet and BINARY2 agree cell by cell on random rows of every datatype."""
    batch = random_batch(500, seed=7)
    table, _ = read(render("parquet", [batch]))
    votable = parse_votable(render("votable", [batch])).get_first_table().array
    for name in NAMES:
        values = table.column(name).to_pylist()
        for row in range(batch.num_rows):
            expected = cell(votable[name], row)
            actual = values[row]
            if name in ("band", "code", "short_text") and actual is not None:
                actual = "".join(
                    c if ord(c) < 128 else "?" for c in actual
                )  # BINARY2 char is ASCII
            if expected == "" and actual is None and name not in ("pt", "region"):
                continue  # BINARY2 strings cannot hold NULL
            if name == "flux" and actual is not None:
                actual = np.float32(actual)
            if name in ("pt", "region") and actual is None:
                actual = expected if expected in (None, []) or all(np.isnan(expected)) else actual
            assert same(actual, expected), (name, row, actual, expected)
