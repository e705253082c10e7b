"""CSV (RFC 4180) and TSV output read back with the csv module and astropy."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pyarrow as pa
from astropy.io import ascii as astropy_ascii

from tap_service.votable import Field
from tests.votable.samples import (
    BIG_ID,
    FIELDS,
    N_ROWS,
    NAMES,
    random_batch,
    render,
    sample_batch,
)


def _csv_rows(document: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(document.decode("utf-8"), newline="")))


def test_csv_header_and_values() -> None:
    document = render("csv", [sample_batch()])
    rows = _csv_rows(document)
    assert rows[0] == NAMES
    assert len(rows) == N_ROWS + 1
    first = dict(zip(NAMES, rows[1], strict=True))
    assert first["objectId"] == str(BIG_ID)
    assert first["ra"] == "0.1"
    assert first["flux"] == "0.1"  # float32 printed at float32 precision
    assert first["flag"] == "true"
    assert first["band"] == "r"
    assert first["label"] == "Ærø 😀"
    assert first["code"] == "abcdefg"  # arraysize is VOTable metadata: CSV keeps the whole value
    assert first["pt"] == "10 -20.5"
    assert first["region"] == "1 2 3 4 5 6"
    assert first["obs_time"] == "2023-05-17T12:34:56.789"
    assert first["empty"] == ""
    second = dict(zip(NAMES, rows[2], strict=True))
    assert second["objectId"] == ""  # NULL
    assert second["band"] == ""
    third = dict(zip(NAMES, rows[3], strict=True))
    assert third["ra"] == "NaN"
    assert third["objectId"] == str(-(2**63))
    fourth = dict(zip(NAMES, rows[4], strict=True))
    assert fourth["band"] == "a<b>&\"c'"
    assert fourth["ra"] == "+Inf"
    fifth = dict(zip(NAMES, rows[5], strict=True))
    assert fifth["band"] == "x,y\nz"
    assert fifth["label"] == "tab\there"


def test_csv_null_and_empty_string_differ() -> None:
    fields = [Field(name="s", datatype="char", arraysize="*")]
    batch = pa.record_batch([pa.array(["", None, "x"])], names=["s"])
    document = render("csv", [batch], fields)
    assert document == b's\r\n""\r\n\r\nx\r\n'


def test_csv_quoting_is_rfc4180() -> None:
    fields = [Field(name='na,"me', datatype="char", arraysize="*"), Field(name="n", datatype="int")]
    values = ['he said "hi"', "a,b", "line\r\nbreak", "plain", " spaced "]
    batch = pa.record_batch([pa.array(values), pa.array([1, 2, 3, 4, 5])], names=["s", "n"])
    document = render("csv", [batch], fields)
    assert document.startswith(b'"na,""me",n\r\n"he said ""hi""",1\r\n"a,b",2\r\n')
    assert b" spaced ,5\r\n" in document
    rows = _csv_rows(document)
    assert rows[0] == ['na,"me', "n"]
    assert [row[0] for row in rows[1:]] == values


def test_csv_header_absent() -> None:
    fields = [Field(name="n", datatype="int")]
    batch = pa.record_batch([pa.array([1, 2], pa.int32())], names=["n"])
    assert render("text/csv;header=absent", [batch], fields) == b"1\r\n2\r\n"


def test_csv_empty_result_is_header_only() -> None:
    assert render("csv", [sample_batch().slice(0, 0)]) == (",".join(NAMES) + "\r\n").encode()


def test_csv_numbers_round_trip_exactly() -> None:
    rng = np.random.default_rng(11)
    doubles = rng.standard_normal(3000) * 10.0 ** rng.integers(-300, 300, 3000)
    floats = rng.standard_normal(3000).astype(np.float32) * np.float32(1e-20)
    ids = rng.integers(2**53, 2**63 - 1, 3000, dtype=np.int64)
    fields = [
        Field(name="d", datatype="double"),
        Field(name="f", datatype="float"),
        Field(name="id", datatype="long"),
    ]
    batch = pa.record_batch(
        [pa.array(doubles), pa.array(floats), pa.array(ids)], names=["d", "f", "id"]
    )
    rows = _csv_rows(render("csv", [batch], fields))[1:]
    assert np.array([float(r[0]) for r in rows]).tobytes() == doubles.tobytes()
    assert np.array([np.float32(r[1]) for r in rows]).tobytes() == floats.tobytes()
    assert [int(r[2]) for r in rows] == ids.tolist()
    # float32 text is as short as float32 allows, not the float64 expansion
    assert max(len(r[1]) for r in rows) <= 16


def test_csv_read_by_astropy() -> None:
    batch = random_batch(200, seed=5)
    keep = ["objectId", "ra", "flag", "count", "band"]
    fields = [f for f in FIELDS if f.name in keep]
    sub = pa.record_batch([batch.column(NAMES.index(n)) for n in keep], names=keep)
    table = astropy_ascii.read(render("csv", [sub], fields).decode(), format="csv")
    assert table.colnames == keep
    ids = sub.column(0)
    for row, value in enumerate(ids.to_pylist()):
        if value is None:
            assert np.ma.is_masked(table["objectId"][row])
        else:
            assert int(table["objectId"][row]) == value
    ras = sub.column(1).to_pylist()
    for row, value in enumerate(ras):
        if value is not None:
            assert float(table["ra"][row]) == value


def _tsv_unescape(value: str) -> str:
    out, chars = [], iter(value)
    for char in chars:
        if char == "\\":
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[next(chars)])
        else:
            out.append(char)
    return "".join(out)


def test_tsv_escapes_and_round_trips() -> None:
    batch = random_batch(300, seed=9)
    document = render("tsv", [batch])
    lines = document.decode("utf-8").split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert lines[0].split("\t") == NAMES
    assert len(lines) == 301
    band = NAMES.index("band")
    objectid = NAMES.index("objectId")
    flux = NAMES.index("flux")
    for row, line in enumerate(lines[1:]):
        cells = line.split("\t")
        assert len(cells) == len(NAMES)
        expected_band = batch.column(band)[row].as_py()
        assert _tsv_unescape(cells[band]) == (expected_band or "")
        expected_id = batch.column(objectid)[row].as_py()
        assert cells[objectid] == ("" if expected_id is None else str(expected_id))
        expected_flux = batch.column(flux)[row].as_py()
        if expected_flux is not None:
            assert np.float32(cells[flux]) == np.float32(expected_flux)


def test_tsv_text_forms() -> None:
    fields = [Field(name="s", datatype="char", arraysize="*"), Field(name="b", datatype="boolean")]
    batch = pa.record_batch(
        [pa.array(["a\tb\\c\nd\re", None]), pa.array([False, None])], names=["s", "b"]
    )
    assert render("tsv", [batch], fields) == b"s\tb\na\\tb\\\\c\\nd\\re\tfalse\n\t\n"


def test_nan_is_not_null_in_text() -> None:
    fields = [Field(name="d", datatype="double")]
    batch = pa.record_batch([pa.array([math.nan, None, -math.inf])], names=["d"])
    assert render("csv", [batch], fields) == b"d\r\nNaN\r\n\r\n-Inf\r\n"
