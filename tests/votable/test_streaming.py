"""Streaming properties: output independent of batch boundaries, exact BINARY2 bytes."""

from __future__ import annotations

import base64
import itertools
import math
import re
import struct
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_service.votable import Field, make_writer
from tap_service.votable.binary import Base64Lines
from tests.votable.samples import N_ROWS, parse_votable, random_batch, render, sample_batch

ALL_FORMATS = ["votable", "votable/td", "votable/b", "csv", "tsv"]
RANDOM = random_batch(400, seed=1234)


def _split(batch: pa.RecordBatch, cuts: list[int]) -> list[pa.RecordBatch]:
    edges = [0, *sorted(set(cuts)), batch.num_rows]
    return [batch.slice(a, b - a) for a, b in itertools.pairwise(edges)]


@pytest.mark.parametrize("response_format", ALL_FORMATS)
@pytest.mark.parametrize("size", [1, 2, 3, 19, 57, 100])
def test_batch_boundaries_do_not_change_output(response_format: str, size: int) -> None:
    whole = render(response_format, [RANDOM])
    pieces = _split(RANDOM, list(range(size, RANDOM.num_rows, size)))
    assert render(response_format, pieces) == whole


@settings(max_examples=40, deadline=None)
@given(
    response_format=st.sampled_from(ALL_FORMATS),
    cuts=st.lists(st.integers(0, RANDOM.num_rows), max_size=12),
)
def test_random_batch_boundaries(response_format: str, cuts: list[int]) -> None:
    """Includes empty batches (repeated or edge cuts) between non-empty ones."""
    edges = [0, *sorted(cuts), RANDOM.num_rows]
    pieces = [RANDOM.slice(a, b - a) for a, b in itertools.pairwise(edges)]
    assert render(response_format, pieces) == render(response_format, [RANDOM])


@pytest.mark.parametrize("response_format", ["votable", "votable/td", "votable/b"])
def test_random_rows_parse(response_format: str) -> None:
    table = parse_votable(render(response_format, [RANDOM])).get_first_table().array
    assert len(table) == RANDOM.num_rows
    ids = RANDOM.column(0)
    valid = ids.is_valid().to_numpy(zero_copy_only=False)
    assert np.array_equal(np.asarray(table["objectId"])[valid], ids.drop_null().to_numpy())
    labels = RANDOM.column(8).fill_null("").to_pylist()
    parsed = list(table["label"])
    if response_format == "votable/td":  # astropy strips surrounding whitespace of a TD
        labels = [label.strip() for label in labels]
        parsed = [label.strip() for label in parsed]
    assert parsed == labels


def test_large_batch_is_sliced_transparently() -> None:
    rows = 70_000  # more than two internal slices
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 2**63 - 1, rows, dtype=np.int64)
    words = pa.array([f"w{i % 97}" for i in range(rows)])
    fields = [Field(name="id", datatype="long"), Field(name="w", datatype="char", arraysize="*")]
    batch = pa.record_batch([pa.array(ids), words], names=["id", "w"])
    for response_format in ("votable", "votable/td", "csv"):
        whole = render(response_format, [batch], fields)
        assert render(response_format, _split(batch, [1, 33_000, 69_999]), fields) == whole
    table = parse_votable(render("votable", [batch], fields)).get_first_table().array
    assert np.array_equal(np.asarray(table["id"]), ids)
    assert list(table["w"][-3:]) == words.to_pylist()[-3:]


def _stream_bytes(document: bytes) -> bytes:
    match = re.search(rb'<STREAM encoding="base64">(.*)</STREAM>', document, re.S)
    assert match is not None
    text = match.group(1)
    assert all(len(line) <= 76 for line in text.split(b"\n"))
    return base64.b64decode(b"".join(text.split()))


def test_binary2_exact_bytes() -> None:
    fields = [
        Field(name="a", datatype="long"),
        Field(name="d", datatype="double"),
        Field(name="s", datatype="char", arraysize="*"),
        Field(name="b", datatype="boolean"),
        Field(name="i", datatype="int"),
        Field(name="u", datatype="unicodeChar", arraysize="*"),
        Field(name="c", datatype="char", arraysize="3"),
        Field(name="p", datatype="double", arraysize="2"),
        Field(name="v", datatype="float", arraysize="*"),
    ]
    batch = pa.record_batch(
        [
            pa.array([2**60 + 1, None]),
            pa.array([0.5, math.nan]),
            pa.array(["hi", None]),
            pa.array([True, None]),
            pa.array([None, -7], pa.int32()),
            pa.array(["é😀", None]),
            pa.array(["abcd", "z"]),
            pa.array([[1.0, 2.0], None]),
            pa.array([[1.5, None, 3.0], None], pa.list_(pa.float32())),
        ],
        names=list("adsbiucpv"),
    )
    nan = struct.pack(">d", math.nan)
    row1 = (
        bytes([0b00001000, 0b00000000])  # only i (field 5) NULL
        + struct.pack(">q", 2**60 + 1)
        + struct.pack(">d", 0.5)
        + struct.pack(">I", 2)
        + b"hi"
        + b"T"
        + b"\0\0\0\0"  # NULL int: flagged, value bytes present
        + struct.pack(">I", 3)  # UTF-16 code units: é, then a surrogate pair
        + "é😀".encode("utf-16-be")
        + b"abc"  # fixed char[3], truncated
        + struct.pack(">2d", 1.0, 2.0)
        + struct.pack(">I", 3)
        + struct.pack(">f", 1.5)
        + struct.pack(">f", math.nan)  # NULL element inside an array
        + struct.pack(">f", 3.0)
    )
    row2 = (
        bytes([0b10110101, 0b10000000])  # a, s, b, u, p, v NULL; NaN d is not NULL
        + b"\0" * 8
        + nan
        + struct.pack(">I", 0)
        + b"?"
        + struct.pack(">i", -7)
        + struct.pack(">I", 0)
        + b"z\0\0"  # padded with NUL
        + nan * 2  # NULL fixed array: NaN filled and flagged
        + struct.pack(">I", 0)
    )
    assert _stream_bytes(render("votable", [batch], fields)) == row1 + row2


def test_binary2_null_array_flags() -> None:
    """A NULL fixed-size array sets the flag bit (checked above); here its neighbours do not."""
    batch = sample_batch()
    document = render("votable", [batch])
    table = parse_votable(document).get_first_table().array
    assert bool(np.all(table["pt"].mask[1]))
    assert not bool(np.any(table["pt"].mask[0]))
    assert len(table) == N_ROWS


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_base64_lines_concatenate(chunks: list[bytes]) -> None:
    encoder = Base64Lines()
    out = b"".join(encoder.feed(chunk) for chunk in chunks) + encoder.flush()
    data = b"".join(chunks)
    assert base64.b64decode(b"".join(out.split())) == data
    assert out == base64.encodebytes(data)  # the standard MIME line layout


def test_writer_state_is_per_response() -> None:
    fields = [Field(name="a", datatype="long")]
    batch = pa.record_batch([pa.array([1, 2, 3])], names=["a"])
    first = make_writer(None, fields)
    second = make_writer(None, fields)
    one = first.begin() + first.write_batch(batch)
    two = second.begin() + second.write_batch(batch)
    assert one + first.end() == two + second.end()


def test_wide_rows_are_sliced_by_bytes() -> None:
    """70 rows of ~1 MB: more than SLICE_BYTES, so the batch is cut into smaller work units."""
    fields = [Field(name="blob", datatype="char", arraysize="*"), Field(name="n", datatype="int")]
    big = ["x" * 1_000_000 + str(i) for i in range(70)]
    batch = pa.record_batch([pa.array(big), pa.array(range(70), pa.int32())], names=["blob", "n"])
    for response_format in ("votable", "votable/td", "csv"):
        whole = render(response_format, [batch], fields)
        assert whole == render(response_format, _split(batch, [1, 77]), fields)
    records = _stream_bytes(render("votable", [batch], fields))
    assert len(records) == sum(1 + 4 + len(value) + 4 for value in big)
    assert records.startswith(b"\0" + struct.pack(">I", len(big[0])) + b"xxx")
    assert records.endswith(big[-1].encode() + struct.pack(">i", 69))


def test_batch_must_match_fields() -> None:
    writer = make_writer(None, [Field(name="a", datatype="long")])
    batch = pa.record_batch([pa.array([1]), pa.array([2])], names=["a", "b"])
    with pytest.raises(ValueError, match="2 columns"):
        writer.write_batch(batch)


def _dirty(values: list[Any], arrow_type: pa.DataType, junk: Any, lead: int) -> pa.Array:
    """``values`` with NULLs, but the slots under the NULLs hold ``junk`` (producers may leave
    anything there) and the array is a slice starting ``lead`` values into its buffers."""
    filled = [junk] * lead + [junk if value is None else value for value in values]
    valid = pa.array([True] * lead + [value is not None for value in values], pa.bool_())
    buffers = pa.array(filled, arrow_type).buffers()
    dirty = pa.Array.from_buffers(arrow_type, len(filled), [valid.buffers()[1], *buffers[1:]])
    return dirty.slice(lead)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.none(), st.text(alphabet="abcxyz ", max_size=6)),
            st.one_of(st.none(), st.booleans()),
            st.one_of(st.none(), st.floats(allow_nan=False)),
            st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
        ),
        min_size=1,
        max_size=40,
    ),
    lead=st.integers(0, 20),
)
def test_binary_ignores_what_lies_under_nulls(rows: list[tuple[Any, ...]], lead: int) -> None:
    """The binary encoders read validity and boolean bitmaps directly and reuse string buffers
    whose NULL slots are empty: sliced arrays with junk under their NULLs must encode exactly
    like clean ones, and read back through astropy as the values (or masked)."""
    fields = [
        Field(name="s", datatype="char", arraysize="*"),
        Field(name="b", datatype="boolean"),
        Field(name="d", datatype="double"),
        Field(name="i", datatype="int"),
    ]
    types = [pa.string(), pa.bool_(), pa.float64(), pa.int32()]
    junk = ["junk!", True, 42.5, 7]
    columns = list(zip(*rows, strict=True))
    clean = pa.record_batch(
        [pa.array(list(c), t) for c, t in zip(columns, types, strict=True)], names=list("sbdi")
    )
    dirty = pa.record_batch(
        [_dirty(list(c), t, j, lead) for c, t, j in zip(columns, types, junk, strict=True)],
        names=list("sbdi"),
    )
    for response_format in ("votable", "votable/b"):
        expected = render(response_format, [clean], fields)
        assert render(response_format, [dirty], fields) == expected
    table = parse_votable(render("votable", [dirty], fields)).get_first_table().array
    for name, column in zip("sbdi", columns, strict=True):
        for row, value in enumerate(column):
            got = table[name][row]
            if value is None:
                assert (name == "s" and got == "") or bool(np.ma.getmaskarray(table[name])[row])
            else:
                assert got == value, (name, row, got, value)


def _tabledata_rows(document: bytes) -> bytes:
    found = re.search(rb"<TABLEDATA>\n(.*)</TABLEDATA>", document, re.S)
    assert found is not None
    return found.group(1)


def test_tabledata_rows_across_runs_and_batches() -> None:
    """Rows assembled in runs of RowAssembler.RUN_ROWS: a run whose text cells are all empty,
    a last partial run, and batches whose cell tags change (empty cells or none)."""
    fields = [Field(name="n", datatype="int"), Field(name="s", datatype="char", arraysize="*")]
    rows = 10_000
    first = [None if 4096 <= i < 8192 else f"v{i % 7}" for i in range(rows)]
    second = [f"w{i % 3}" for i in range(5)]
    batches = [
        pa.record_batch([pa.array(range(rows), pa.int32()), pa.array(first)], names=["n", "s"]),
        pa.record_batch([pa.array(range(5), pa.int32()), pa.array(second)], names=["n", "s"]),
    ]
    expected = "".join(
        f"<TR><TD>{n}</TD><TD/></TR>\n" if s is None else f"<TR><TD>{n}</TD><TD>{s}</TD></TR>\n"
        for batch_values in (first, second)
        for n, s in enumerate(batch_values)
    )
    assert _tabledata_rows(render("votable/td", batches, fields)) == expected.encode()
