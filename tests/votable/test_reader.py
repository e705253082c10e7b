"""The upload reader against astropy's writer (the reference), in every serialization."""

from __future__ import annotations

import base64
import io
import struct

import numpy as np
import pytest
from astropy.io.votable import from_table
from astropy.table import MaskedColumn, Table

from tap_service.votable.reader import VOTableReadError, read_votable


def written(table: Table, serialization: str) -> bytes:
    buffer = io.BytesIO()
    from_table(table).to_xml(buffer, tabledata_format=serialization)
    return buffer.getvalue()


def pieces(data: bytes, size: int = 97) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


SAMPLE = Table(
    {
        "id": np.array([1, 2**62 + 3, -5], dtype=np.int64),
        "small": np.array([1, -2, 3], dtype=np.int16),
        "ra": np.array([0.5, 359.25, 12.0]),
        "mag": MaskedColumn(np.array([20.5, 0, 21.0], dtype=np.float32), mask=[False, True, False]),
        "flag": np.array([True, False, True]),
        "name": np.array(["alpha", "b", "ünïcode"]),
        "pos": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
    }
)
SAMPLE["ra"].unit = "deg"
SAMPLE["ra"].meta["ucd"] = "pos.eq.ra"


@pytest.mark.parametrize("serialization", ["tabledata", "binary", "binary2"])
def test_reads_what_astropy_writes(serialization: str) -> None:
    result = read_votable(pieces(written(SAMPLE, serialization)))
    names = [f.name for f in result.fields]
    assert names == list(SAMPLE.colnames)
    types = {f.name: (f.datatype, f.arraysize) for f in result.fields}
    assert types["id"] == ("long", None)
    assert types["small"] == ("short", None)
    assert types["flag"] == ("boolean", None)  # astropy writes bit
    assert types["pos"] == ("double", "2")
    assert result.fields[2].unit == "deg"
    columns = dict(zip(names, result.table.columns, strict=True))
    assert columns["id"].to_pylist() == [1, 2**62 + 3, -5]
    assert columns["small"].to_pylist() == [1, -2, 3]
    assert columns["ra"].to_pylist() == [0.5, 359.25, 12.0]
    assert columns["mag"].to_pylist() == [20.5, None, 21.0]
    assert columns["flag"].to_pylist() == [True, False, True]
    assert columns["name"].to_pylist() == ["alpha", "b", "ünïcode"]
    assert columns["pos"].to_pylist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert result.table.column_names == [f"c{i}" for i in range(len(names))]


def test_binary2_null_mask_and_variable_arrays() -> None:
    # FIELDs: int n; double[*] v; char[*] s.  Row 1 all set, row 2 n and s NULL.
    rows = b"".join(
        [
            b"\x00" + struct.pack(">i", 7) + struct.pack(">i", 2) + struct.pack(">2d", 1, 2)
            + struct.pack(">i", 2) + b"hi",
            b"\xa0" + struct.pack(">i", 0) + struct.pack(">i", 0) + struct.pack(">i", 0),
        ]
    )  # fmt: skip
    document = (
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
        '<FIELD name="n" datatype="int"/><FIELD name="v" datatype="double" arraysize="*"/>'
        '<FIELD name="s" datatype="char" arraysize="*"/>'
        "<DATA><BINARY2><STREAM encoding='base64'>"
        + base64.b64encode(rows).decode()
        + "</STREAM></BINARY2></DATA></TABLE></RESOURCE></VOTABLE>"
    ).encode()
    table = read_votable([document]).table
    assert table.to_pydict() == {"c0": [7, None], "c1": [[1.0, 2.0], []], "c2": ["hi", None]}


def test_fixed_size_binary_decodes_like_tabledata() -> None:
    """BINARY2 rows of fixed size take numpy's path; the answer is TABLEDATA's."""
    rng = np.random.default_rng(3)
    table = Table(
        {
            "i": MaskedColumn(rng.integers(-5, 5, 50, dtype=np.int32), mask=rng.random(50) < 0.2),
            "d": rng.normal(size=50),
            "b": rng.random(50) < 0.5,
            "u": np.array([f"x{i % 7}Ā" for i in range(50)]),
            "v": rng.normal(size=(50, 3)),
        }
    )
    fast = read_votable([written(table, "binary2")]).table
    reference = read_votable([written(table, "tabledata")]).table
    assert fast.to_pydict() == reference.to_pydict()
    assert fast.column("c0").null_count == int(table["i"].mask.sum()) > 0


def test_tabledata_null_value_and_arraysize_one() -> None:
    document = (
        b"<VOTABLE><RESOURCE><TABLE>"
        b'<FIELD name="a" datatype="int"><VALUES null="-99"/></FIELD>'
        b'<FIELD name="c" datatype="char" arraysize="1"/>'
        b"<DATA><TABLEDATA><TR><TD>-99</TD><TD>x</TD></TR><TR><TD>0x10</TD><TD/></TR>"
        b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    )
    result = read_votable([document])
    assert result.fields[1].arraysize is None  # "1" is deprecated and means the same
    assert result.table.to_pydict() == {"c0": [None, 16], "c1": ["x", None]}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"", "empty"),
        (b"<html><body/></html>", "not a VOTable"),
        (b"<VOTABLE><RESOURCE/></VOTABLE>", "holds no TABLE"),
        (b"<VOTABLE><RESOURCE><TABLE><DATA><TABLEDATA/></DATA></TABLE></RESOURCE></VOTABLE>",
         "no FIELDs"),
        (b'<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="floatComplex"/></TABLE>'
         b"</RESOURCE></VOTABLE>", "not supported"),
        (b'<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><TABLEDATA>'
         b"<TR><TD>x</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>", "not a int"),
        (b'<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><TABLEDATA>'
         b"<TR><TD>1</TD><TD>2</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>",
         "2 cells for 1 FIELDs"),
        (b'<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><BINARY2>'
         b'<STREAM encoding="base64">AAAA</STREAM></BINARY2></DATA></TABLE></RESOURCE>'
         b"</VOTABLE>", "ends inside"),
        (b'<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><BINARY>'
         b'<STREAM href="http://elsewhere/x"/></BINARY></DATA></TABLE></RESOURCE></VOTABLE>',
         "href"),
        (b'<VOTABLE><RESOURCE><TABLE><FIELD name="a" datatype="int"/><DATA><FITS/></DATA>'
         b"</TABLE></RESOURCE></VOTABLE>", "FITS"),
        (b"<VOTABLE><RESOURCE><TABLE><FIELD", "not well-formed"),
    ],
    ids=["empty", "html", "no-table", "no-fields", "complex", "bad-int", "cells", "short",
         "href", "fits", "truncated"],
)  # fmt: skip
def test_refusals_say_why(document: bytes, message: str) -> None:
    with pytest.raises(VOTableReadError, match=message):
        read_votable([document])


def test_limits_stop_the_read() -> None:
    data = written(Table({"x": np.arange(100)}), "tabledata")
    with pytest.raises(VOTableReadError, match="more than 10 rows"):
        read_votable(pieces(data), max_rows=10)
    wide = written(Table({f"c{i}": [1] for i in range(5)}), "binary2")
    with pytest.raises(VOTableReadError, match="more than 3 columns"):
        read_votable([wide], max_columns=3)
