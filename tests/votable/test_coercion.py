"""The declared datatype wins over the Arrow type the database produced."""

from __future__ import annotations

import datetime
import decimal

import numpy as np
import pyarrow as pa
import pytest

from tap_service.votable import Field
from tests.votable.samples import parse_votable, render

FORMATS = ["votable", "votable/td", "votable/b"]


def _round_trip(response_format: str, field: Field, column: pa.Array) -> list[object]:
    batch = pa.record_batch([column], names=[field.name])
    table = parse_votable(render(response_format, [batch], [field])).get_first_table().array
    values = table[field.name]
    out: list[object] = []
    for row in range(len(values)):
        value = values[row]
        if value is np.ma.masked:
            out.append(None)
        elif isinstance(value, np.ma.MaskedArray):
            mask = np.ma.getmaskarray(value)
            out.append([None if m else v for v, m in zip(value.data.tolist(), mask, strict=True)])
        elif np.ma.is_masked(value):
            out.append(None)
        elif isinstance(value, np.ndarray):
            out.append(value.tolist())
        elif isinstance(value, np.generic):
            out.append(value.item())
        else:
            out.append(value)
    return out


@pytest.mark.parametrize("response_format", FORMATS)
@pytest.mark.parametrize(
    ("field", "column", "expected"),
    [
        (Field(name="x", datatype="long"), pa.array([1, None, -5], pa.int32()), [1, None, -5]),
        (Field(name="x", datatype="long"), pa.array([2**62], pa.uint64()), [2**62]),
        (Field(name="x", datatype="int"), pa.array([7, 8], pa.int64()), [7, 8]),
        (Field(name="x", datatype="short"), pa.array([3], pa.int8()), [3]),
        (Field(name="x", datatype="unsignedByte"), pa.array([200], pa.int16()), [200]),
        (
            Field(name="x", datatype="double"),
            pa.array([decimal.Decimal("1.25"), None], pa.decimal128(10, 2)),
            [1.25, None],
        ),
        (Field(name="x", datatype="double"), pa.array([3], pa.int64()), [3.0]),
        (Field(name="x", datatype="float"), pa.array([0.5], pa.float64()), [0.5]),
        (
            Field(name="x", datatype="boolean"),
            pa.array([1, 0, None], pa.int8()),
            [True, False, None],
        ),
        (Field(name="x", datatype="long"), pa.nulls(2), [None, None]),
        (Field(name="x", datatype="double"), pa.nulls(1), [None]),
        (Field(name="x", datatype="boolean"), pa.nulls(1), [None]),
    ],
)
def test_numeric_casts(
    response_format: str, field: Field, column: pa.Array, expected: list[object]
) -> None:
    assert _round_trip(response_format, field, column) == expected


@pytest.mark.parametrize("response_format", FORMATS)
def test_string_sources(response_format: str) -> None:
    field = Field(name="s", datatype="char", arraysize="*")
    sources = [
        pa.array(["a", "b"], pa.large_string()),
        pa.array(["a", "b"]).dictionary_encode(),
        pa.array([b"a", b"b"], pa.binary()),
    ]
    for column in sources:
        assert _round_trip(response_format, field, column) == ["a", "b"]
    numbers = _round_trip(response_format, field, pa.array([12, 3000000000000], pa.int64()))
    assert numbers == ["12", "3000000000000"]


@pytest.mark.parametrize("response_format", FORMATS)
def test_dates_and_timestamps(response_format: str) -> None:
    field = Field(name="t", datatype="char", arraysize="*", xtype="timestamp")
    date = pa.array([datetime.date(2024, 2, 29)], pa.date32())
    assert _round_trip(response_format, field, date) == ["2024-02-29"]
    zoned = pa.array(
        [datetime.datetime(2024, 1, 1, 12, 0, 0, 500000, tzinfo=datetime.UTC)],
        pa.timestamp("us", tz="UTC"),
    )
    assert _round_trip(response_format, field, zoned) == ["2024-01-01T12:00:00.500"]
    new_york = pa.array([0], pa.timestamp("s", tz="America/New_York"))
    assert _round_trip(response_format, field, new_york) == ["1970-01-01T00:00:00.000"]
    nanos = pa.array([1_700_000_000_123_456_789], pa.timestamp("ns"))
    assert _round_trip(response_format, field, nanos) == ["2023-11-14T22:13:20.123"]


@pytest.mark.parametrize("response_format", FORMATS)
def test_list_sources(response_format: str) -> None:
    point = Field(name="p", datatype="double", arraysize="2", xtype="point")
    fixed = pa.array([[1.0, 2.0]], pa.list_(pa.float64(), 2))
    assert _round_trip(response_format, point, fixed) == [[1.0, 2.0]]
    large = pa.array([[1, 2]], pa.large_list(pa.int64()))
    assert _round_trip(response_format, point, large) == [[1.0, 2.0]]
    circle = Field(name="c", datatype="double", arraysize="3", xtype="circle")
    assert _round_trip(response_format, circle, pa.array([[1.0, 2.0, 0.5]])) == [[1.0, 2.0, 0.5]]


@pytest.mark.parametrize("response_format", FORMATS)
def test_integer_arrays(response_format: str) -> None:
    field = Field(name="v", datatype="int", arraysize="*")
    column = pa.array([[1, -2, 2**31 - 1], [], [5]], pa.list_(pa.int64()))
    assert _round_trip(response_format, field, column) == [[1, -2, 2**31 - 1], [], [5]]


@pytest.mark.parametrize("response_format", FORMATS)
def test_bounded_arrays_and_strings_truncate(response_format: str) -> None:
    field = Field(name="v", datatype="double", arraysize="3*")
    column = pa.array([[1.0, 2.0, 3.0, 4.0], [1.0]])
    assert _round_trip(response_format, field, column) == [[1.0, 2.0, 3.0], [1.0]]
    text = Field(name="u", datatype="unicodeChar", arraysize="2*")
    # the astral character needs two UTF-16 units: it cannot fit after "a"
    assert _round_trip(response_format, text, pa.array(["a😀b", "xyz", "😀"])) == ["a", "xy", "😀"]
    fixed = Field(name="f", datatype="unicodeChar", arraysize="3")
    values = _round_trip(response_format, fixed, pa.array(["ab😀", "😀😀", None]))
    assert values == ["ab", "😀", ""]


@pytest.mark.parametrize("response_format", ["votable", "votable/b"])
def test_binary_char_is_ascii(response_format: str) -> None:
    field = Field(name="s", datatype="char", arraysize="*")
    assert _round_trip(response_format, field, pa.array(["naïve"])) == ["na?ve"]


def test_scalar_char_is_one_character() -> None:
    field = Field(name="c", datatype="char")
    for response_format in FORMATS:
        assert _round_trip(response_format, field, pa.array(["xyz", "q"])) == ["x", "q"]


@pytest.mark.parametrize("response_format", FORMATS)
def test_fixed_arrays_are_cut_or_padded(response_format: str) -> None:
    field = Field(name="p", datatype="double", arraysize="2", xtype="point")
    column = pa.array([[1.0, 2.0, 3.0], [4.0], None])
    values = _round_trip(response_format, field, column)
    assert values[0] == [1.0, 2.0]
    assert values[2] is None or values[2] == [None, None]
    assert values[1] == [4.0, None]  # padded with a NULL (NaN) element


def test_integer_overflow_is_an_error_not_a_wrap() -> None:
    field = Field(name="id", datatype="long")
    batch = pa.record_batch([pa.array([2**63 + 5], pa.uint64())], names=["id"])
    with pytest.raises(ValueError, match=r"overflow|out of bounds|not in range"):
        render("votable", [batch], [field])


def test_float_to_integer_truncates() -> None:
    field = Field(name="n", datatype="int")
    column = pa.array([1.9, -2.5, None])
    assert _round_trip("votable", field, column) == [1, -2, None]
