"""Property tests: arbitrary text and numbers survive every format they can survive."""

from __future__ import annotations

import csv
import io
import math
import re

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_service.votable import Field
from tests.votable.samples import parse_votable, render

TEXT = st.lists(st.one_of(st.none(), st.text(max_size=20)), min_size=1, max_size=20)
ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _strings(response_format: str, values: list[str | None], datatype: str) -> list[str]:
    field = Field(name="s", datatype=datatype, arraysize="*")
    batch = pa.record_batch([pa.array(values, pa.string())], names=["s"])
    table = parse_votable(render(response_format, [batch], [field])).get_first_table().array
    return [str(value) for value in table["s"]]


@settings(max_examples=60, deadline=None)
@given(TEXT)
def test_unicode_text_exact_in_binary2(values: list[str | None]) -> None:
    values = [None if v is None else ILLEGAL_XML.sub("", v) for v in values]  # no surrogates
    expected = ["" if v is None else v for v in values]
    assert _strings("votable", values, "unicodeChar") == expected


@settings(max_examples=60, deadline=None)
@given(TEXT)
def test_text_in_tabledata(values: list[str | None]) -> None:
    parsed = _strings("votable/td", values, "unicodeChar")
    # XML-illegal characters become U+FFFD; astropy strips a TD's surrounding whitespace.
    expected = [ILLEGAL_XML.sub("\ufffd", v).strip() if v is not None else "" for v in values]
    assert [p.strip() for p in parsed] == expected


@settings(max_examples=60, deadline=None)
@given(TEXT)
def test_text_in_csv(values: list[str | None]) -> None:
    field = Field(name="s", datatype="unicodeChar", arraysize="*")
    values = [None if v is None else ILLEGAL_XML.sub("", v) for v in values]
    batch = pa.record_batch([pa.array(values, pa.string())], names=["s"])
    document = render("csv", [batch], [field]).decode("utf-8")
    rows = list(csv.reader(io.StringIO(document, newline="")))
    assert rows[0] == ["s"]
    parsed = [row[0] if row else "" for row in rows[1:]]
    assert parsed == ["" if v is None else v for v in values]
    for value, line in zip(values, rows[1:], strict=True):
        if value is None:
            assert line == []  # NULL: an empty line
        else:
            assert line == [value]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=30))
def test_doubles_bit_exact(values: list[float]) -> None:
    field = Field(name="d", datatype="double")
    batch = pa.record_batch([pa.array(values, pa.float64())], names=["d"])
    expected = np.array(values, dtype=np.float64)
    for response_format in ("votable", "votable/td"):
        table = parse_votable(render(response_format, [batch], [field])).get_first_table().array
        parsed = np.ma.getdata(table["d"])
        finite = np.isfinite(expected)
        assert parsed[finite].tobytes() == expected[finite].tobytes()
        assert np.array_equal(np.isnan(parsed), np.isnan(expected))
        assert np.array_equal(np.isposinf(parsed), np.isposinf(expected))
    rows = render("csv", [batch], [field]).decode().split("\r\n")[1:-1]
    for text, value in zip(rows, values, strict=True):
        if math.isnan(value):
            assert text == "NaN"
        else:
            assert float(text) == value
            assert math.copysign(1.0, float(text)) == math.copysign(1.0, value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1))
def test_floats_exact_and_short(values: list[float]) -> None:
    field = Field(name="f", datatype="float")
    array = np.array(values, dtype=np.float32)
    batch = pa.record_batch([pa.array(array)], names=["f"])
    rows = render("csv", [batch], [field]).decode().split("\r\n")[1:-1]
    assert np.array([np.float32(text) for text in rows]).tobytes() == array.tobytes()
    # float32 precision (at most 9 significant digits), not float64's 17.
    assert all(significant_digits(text) <= 9 for text in rows), rows


def significant_digits(text: str) -> int:
    mantissa = text.lstrip("+-").split("e")[0].replace(".", "")
    return len(mantissa.strip("0")) or 1
