"""Per-column preparation shared by every writer.

A FIELD's declared datatype is the contract with the client, whatever Arrow type the database
happened to produce (an int32 expression declared ``long``, a decimal declared ``double``, an
all-NULL column of Arrow type ``null``).  ``conform`` turns every batch column into one canonical
Arrow type per VOTable datatype, so the encoders only ever meet those types.  Text rendering is
vectorised with Arrow compute kernels: there is no Python code per cell.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from tap_service.votable.fields import Field

Kind = Literal["boolean", "number", "char", "unicodeChar"]

NUMERIC_TYPES: dict[str, tuple[pa.DataType, str]] = {
    "unsignedByte": (pa.uint8(), "u1"),
    "short": (pa.int16(), ">i2"),
    "int": (pa.int32(), ">i4"),
    "long": (pa.int64(), ">i8"),
    "float": (pa.float32(), ">f4"),
    "double": (pa.float64(), ">f8"),
}

SUPPORTED_DATATYPES = ("boolean", *NUMERIC_TYPES, "char", "unicodeChar")

# Regular expression (RE2 syntax) for characters XML 1.0 forbids; Arrow strings are valid UTF-8,
# so surrogates cannot occur.
_ILLEGAL_XML_RE2 = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x{fffe}\\x{ffff}]"


# Arrow converts a Python value passed to a compute function into a scalar on every call, and
# that conversion retries a failing optional import each time: build the constants once.
def _string_scalar(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.string())


# Boolean text by position (False=0, True=1): ``take`` needs no scalar conversion at all.
BOOLEAN_LETTERS = pa.array(["F", "T"], pa.string())
BOOLEAN_WORDS = pa.array(["false", "true"], pa.string())
EMPTY = _string_scalar("")
SPACE = _string_scalar(" ")
NAN_TEXT = _string_scalar("NaN")
ZERO_LENGTH = pa.scalar(0, pa.int32())


class FieldError(ValueError):
    """A Field whose metadata no serialization can honour (unknown datatype, bad arraysize)."""


@dataclass(frozen=True)
class Shape:
    """Parsed VOTable arraysize.

    ``count`` is the number of elements of a fixed-size value, ``None`` when variable;
    ``bound`` the maximum count of a variable value (``"10*"``), ``None`` if unbounded.
    """

    count: int | None
    bound: int | None

    @property
    def variable(self) -> bool:
        return self.count is None


def parse_arraysize(arraysize: str | None) -> Shape:
    """Multi-dimensional sizes (``"2x3"``, ``"2x*"``) flatten to their element count."""
    if arraysize is None:
        return Shape(count=1, bound=None)
    text = arraysize.strip()
    try:
        dims = text.split("x")
        product = 1
        for dim in dims[:-1]:
            product *= int(dim)
        last = dims[-1]
        if last.endswith("*"):
            prefix = last[:-1]
            bound = product * int(prefix) if prefix else None
            return Shape(count=None, bound=bound)
        return Shape(count=product * int(last), bound=None)
    except ValueError:
        raise FieldError(f"invalid arraysize {arraysize!r}") from None


@dataclass(frozen=True)
class ColumnSpec:
    """What the encoders need to know about one Field, computed once per response."""

    field: Field
    kind: Kind
    shape: Shape
    is_array: bool  # numeric values with an arraysize (geometry, vectors)
    arrow_type: pa.DataType  # canonical Arrow type of a conformed column
    numpy_dtype: np.dtype[np.generic] | None  # big-endian element type of numbers

    @property
    def is_float(self) -> bool:
        return self.field.datatype in ("float", "double")


def column_spec(field: Field) -> ColumnSpec:
    datatype = field.datatype
    shape = parse_arraysize(field.arraysize)
    if datatype == "boolean":
        if shape.count != 1:
            raise FieldError(f"field {field.name!r}: boolean arrays are not supported")
        return ColumnSpec(field, "boolean", shape, False, pa.bool_(), None)
    if datatype in NUMERIC_TYPES:
        arrow_type, dtype = NUMERIC_TYPES[datatype]
        is_array = field.arraysize is not None and shape.count != 1
        target = pa.list_(arrow_type) if is_array else arrow_type
        return ColumnSpec(field, "number", shape, is_array, target, np.dtype(dtype))
    if datatype in ("char", "unicodeChar"):
        kind: Kind = "char" if datatype == "char" else "unicodeChar"
        return ColumnSpec(field, kind, shape, False, pa.string(), None)
    raise FieldError(
        f"field {field.name!r}: unsupported datatype {datatype!r}"
        f" (supported: {', '.join(SUPPORTED_DATATYPES)})"
    )


def _timestamp_text(column: pa.Array) -> pa.Array:
    """DALI timestamps: ``YYYY-MM-DDTHH:MM:SS.sss`` in UTC, no zone suffix."""
    unit_type = pa.timestamp("ms")  # tz-aware values are stored as UTC; dropping tz keeps them
    millis = column.cast(unit_type, safe=False)
    return pc.strftime(millis, format="%Y-%m-%dT%H:%M:%S")


def _to_string(column: pa.Array) -> pa.Array:
    arrow_type = column.type
    if pa.types.is_timestamp(arrow_type):
        return _timestamp_text(column)
    if pa.types.is_date(arrow_type):
        return column.cast(pa.string())
    if pa.types.is_dictionary(arrow_type):
        return _to_string(column.dictionary_decode())
    if pa.types.is_boolean(arrow_type):
        return boolean_text(column, BOOLEAN_LETTERS)
    if pa.types.is_floating(arrow_type):
        return float_text(column.cast(pa.float64()) if arrow_type == pa.float16() else column)
    return column.cast(pa.string())


def _cast(column: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast exactly when possible.

    Floats (and decimals) cast to a declared integer type are truncated, as SQL would.  An
    integer that does not fit the declared integer type raises (ArrowInvalid, a ValueError):
    silently wrapping an identifier would be worse than a failed query.
    """
    if column.type == target:
        return column
    source = column.type
    if pa.types.is_decimal(source) and pa.types.is_integer(target):
        column = column.cast(pa.float64())
    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if pa.types.is_integer(source) and pa.types.is_integer(target):
            raise
        return column.cast(target, safe=False)


def conform(column: pa.Array | pa.ChunkedArray, spec: ColumnSpec) -> pa.Array:
    """Bring one batch column to the canonical Arrow type of its Field."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if spec.kind in ("char", "unicodeChar"):
        if column.type == pa.string():
            return column
        if column.type == pa.null():
            return pa.nulls(len(column), pa.string())
        if pa.types.is_large_string(column.type) or pa.types.is_string_view(column.type):
            return column.cast(pa.string())
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            return column.cast(pa.string())
        return _to_string(column)
    if spec.is_array:
        if pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type):
            column = column.cast(pa.list_(column.type.value_type))
        return _cast(column, spec.arrow_type)
    if spec.kind == "number" and pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
    return _cast(column, spec.arrow_type)


def float_text(column: pa.Array) -> pa.Array:
    """Shortest round-trip text of floats; NaN and infinities spelled the VOTable way.

    Arrow formats float32 with single precision, so ``0.1f`` prints as ``0.1``, and doubles
    with the shortest text that reads back to the same bits.
    """
    text = column.cast(pa.string())
    finite = pc.is_finite(column)
    if pc.all(finite).as_py() is not False:  # all finite, or no non-null values
        return text
    # Arrow spells them nan, inf, -inf; no finite number's text contains those letters.
    text = pc.replace_substring(text, "-inf", "-Inf")
    text = pc.replace_substring(text, "inf", "+Inf")
    return pc.replace_substring(text, "nan", "NaN")


def array_text(column: pa.Array, element_null: pa.Scalar) -> pa.Array:
    """Space-separated elements (VOTable TABLEDATA arrays); NULL arrays stay NULL."""
    values = column.flatten()  # honours slicing; drops values hidden under NULL lists
    texts = float_text(values) if pa.types.is_floating(values.type) else values.cast(pa.string())
    texts = texts.fill_null(element_null)
    lengths = pc.list_value_length(column).fill_null(ZERO_LENGTH).to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(column) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    lists = pa.ListArray.from_arrays(pa.array(offsets), texts, mask=column.is_null())
    return pc.binary_join(lists, SPACE)


def boolean_text(column: pa.Array, spellings: pa.Array) -> pa.Array:
    return spellings.take(column.cast(pa.int8()))


def text(column: pa.Array, spec: ColumnSpec, *, booleans: pa.Array = BOOLEAN_LETTERS) -> pa.Array:
    """A conformed column as strings (NULL stays NULL), used by TABLEDATA, CSV and TSV."""
    if spec.kind == "boolean":
        return boolean_text(column, booleans)
    if spec.kind == "number":
        if spec.is_array:
            return array_text(column, NAN_TEXT if spec.is_float else EMPTY)
        if spec.is_float:
            return float_text(column)
        return column.cast(pa.string())
    return column


def truncate(column: pa.Array, spec: ColumnSpec) -> pa.Array:
    """Cut strings to the declared maximum length (fixed ``n`` or bounded ``n*``).

    unicodeChar lengths count UTF-16 code units, so a character outside the BMP counts twice
    and is dropped whole when it would not fit.
    """
    limit = spec.shape.count if spec.shape.count is not None else spec.shape.bound
    if limit is None:
        return column
    longest = pc.max(pc.utf8_length(column)).as_py()
    if longest is None or (longest <= limit and spec.kind == "char"):
        return column
    if spec.kind == "unicodeChar" and bool(
        np.any(np.frombuffer(string_buffer(column), np.uint8) >= 0xF0)
    ):
        return pa.array(
            [None if value is None else utf16_prefix(value, limit) for value in column.to_pylist()],
            pa.string(),
        )
    if longest <= limit:
        return column
    return pc.utf8_slice_codeunits(column, 0, limit)


def utf16_prefix(value: str, units: int) -> str:
    """The longest prefix of ``value`` that fits in ``units`` UTF-16 code units."""
    encoded = value.encode("utf-16-be")[: 2 * units]
    if len(encoded) >= 2 and 0xD8 <= encoded[-2] <= 0xDB:  # a pair cut in half
        encoded = encoded[:-2]
    return encoded.decode("utf-16-be")


def fit_array(column: pa.Array, spec: ColumnSpec) -> pa.Array:
    """Make numeric arrays honour the declared size: cut to the bound of ``n*``; cut or pad
    (with NULL elements) to exactly ``n``.  NULL arrays stay NULL."""
    if not spec.is_array or len(column) == 0:
        return column
    lengths = pc.list_value_length(column)
    count, bound = spec.shape.count, spec.shape.bound
    if count is not None:
        extremes = pc.min_max(lengths).as_py()
        if extremes["min"] in (None, count) and extremes["max"] in (None, count):
            return column
        fixed = pc.list_slice(column, 0, count, return_fixed_size_list=True)
        return fixed.cast(pa.list_(column.type.value_type))
    longest = pc.max(lengths).as_py()
    if bound is not None and longest is not None and longest > bound:
        return pc.list_slice(column, 0, bound)
    return column


def _xml_suspect_bytes() -> npt.NDArray[np.bool_]:
    table = np.zeros(256, dtype=np.bool_)
    table[:0x20] = True  # control characters; CR is escaped, tab and LF pass (below)
    table[[ord("&"), ord("<"), ord(">"), 0xEF]] = True  # 0xEF leads U+FFFE and U+FFFF
    table[[ord("\t"), ord("\n")]] = False
    return table


# Bytes that may need escaping or replacing in XML text: one lookup per byte of the data
# buffer clears most text columns far faster than the two regular-expression scans below.
_XML_SUSPECT = _xml_suspect_bytes()


def xml_escape(column: pa.Array) -> pa.Array:
    """Escape ``& < >`` and CR, and replace characters illegal in XML 1.0 (with U+FFFD)."""
    data = np.frombuffer(string_buffer(column), np.uint8)
    if not _XML_SUSPECT[data].any():
        return column
    if pc.any(pc.match_substring_regex(column, "[&<>\r]")).as_py():
        column = pc.replace_substring(column, "&", "&amp;")
        column = pc.replace_substring(column, "<", "&lt;")
        column = pc.replace_substring(column, ">", "&gt;")
        # XML parsers turn a literal CR (and CRLF) into LF; a reference keeps it.
        column = pc.replace_substring(column, "\r", "&#13;")
    if pc.any(pc.match_substring_regex(column, _ILLEGAL_XML_RE2)).as_py():
        column = pc.replace_substring_regex(column, _ILLEGAL_XML_RE2, "\ufffd")
    return column


# Work unit inside a batch: bounds the temporaries (and keeps Arrow's 32-bit string offsets far
# from overflowing) whatever batch size or row width the database produces.
SLICE_ROWS = 65536
SLICE_BYTES = 64 << 20


def batch_slices(batch: pa.RecordBatch, columns: int) -> Iterator[pa.RecordBatch]:
    """Split a batch into work units; check that it has one column per Field."""
    if batch.num_columns != columns:
        raise ValueError(f"batch has {batch.num_columns} columns, the writer {columns} fields")
    rows = batch.num_rows
    if rows == 0:
        return
    step = SLICE_ROWS
    size = batch.get_total_buffer_size()
    if size > SLICE_BYTES:
        step = max(1, min(step, rows * SLICE_BYTES // size))
    for start in range(0, rows, step):
        yield batch.slice(start, step)


class RowJoiner:
    """Joins string columns and literal text element-wise into one string per row.

    Adjacent literals are merged (``"</TD><TD>"``) so the whole row is built in a single Arrow
    pass; their scalars are cached because converting a Python value is slow in Arrow.
    """

    def __init__(self) -> None:
        self._scalars: dict[str, pa.Scalar] = {}

    def _scalar(self, value: str) -> pa.Scalar:
        cached = self._scalars.get(value)
        if cached is None:
            cached = self._scalars[value] = pa.scalar(value, pa.string())
        return cached

    def join(self, parts: Sequence[pa.Array | str]) -> pa.Array:
        merged: list[pa.Array | pa.Scalar] = []
        literal: list[str] = []
        for part in parts:
            if isinstance(part, str):
                literal.append(part)
                continue
            if literal:
                merged.append(self._scalar("".join(literal)))
                literal = []
            merged.append(part)
        if literal:
            merged.append(self._scalar("".join(literal)))
        return pc.binary_join_element_wise(*merged, EMPTY)


def string_buffer(column: pa.Array) -> memoryview:
    """The bytes of all values of a string/binary array, back to back, without copying.

    Arrow stores variable-length values contiguously, so joining every row of a batch is just
    the slice of the data buffer between the first and last offset.
    """
    if len(column) == 0:
        return memoryview(b"")
    offsets_buffer = column.buffers()[1]
    data_buffer = column.buffers()[2]
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)
    start = int(offsets[column.offset])
    stop = int(offsets[column.offset + len(column)])
    if data_buffer is None:
        return memoryview(b"")
    return memoryview(data_buffer)[start:stop]


def nan_of(dtype: np.dtype[np.generic]) -> float | int:
    """The NULL filler for numbers inside binary records (NaN for floats, 0 otherwise)."""
    return math.nan if dtype.kind == "f" else 0


class RowAssembler:
    """Rows from pieces (string arrays and literal text) with one Arrow ``take`` per run.

    The pieces of a run of rows are laid end to end in one reused arena (literal text repeated
    once per row, kept from run to run while the literals stay the same; the values copied after
    them) that one Arrow binary array describes without copying.  Taking piece after piece, row
    after row, leaves the rows contiguous in the result's data buffer: ~40% less time than
    an element-wise join of ~60 pieces.  Runs of ``RUN_ROWS`` rows bound the arena, the offsets
    and the take's result, whatever the batch size.
    """

    RUN_ROWS = 4096

    def __init__(self) -> None:
        self._arena: npt.NDArray[np.uint8] = np.empty(0, dtype=np.uint8)
        self._offsets: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._literal_key: tuple[tuple[str, ...], int] | None = None
        self._literal_bytes = 0
        self._counting: npt.NDArray[np.int32] = np.arange(self.RUN_ROWS, dtype=np.int32)
        self._orders: dict[tuple[tuple[bool, ...], int], pa.Array] = {}

    def rows(self, parts: Sequence[pa.Array | str], rows: int) -> bytes:
        merged: list[pa.Array | str] = []
        for part in parts:
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            else:
                merged.append(part)
        literals = tuple(part for part in merged if isinstance(part, str))
        kinds = tuple(isinstance(part, str) for part in merged)
        runs = []
        for start in range(0, rows, self.RUN_ROWS):
            count = min(self.RUN_ROWS, rows - start)
            arrays = [part.slice(start, count) for part in merged if not isinstance(part, str)]
            runs.append(self._run(literals, arrays, kinds, count))
        return b"".join(string_buffer(run) for run in runs)

    def _run(
        self,
        literals: tuple[str, ...],
        arrays: Sequence[pa.Array],
        kinds: tuple[bool, ...],
        rows: int,
    ) -> pa.Array:
        value_offsets = [
            np.frombuffer(array.buffers()[1], np.int32, rows + 1, array.offset * 4)
            for array in arrays
        ]
        value_bytes = sum(int(offsets[-1] - offsets[0]) for offsets in value_offsets)
        literal_bytes = sum(len(text.encode()) for text in literals) * rows
        total = literal_bytes + value_bytes
        pieces = len(literals) + len(arrays)
        if len(self._arena) < total:
            self._arena = np.empty(total + total // 2, dtype=np.uint8)
            self._literal_key = None
        if len(self._offsets) < pieces * rows + 1:
            self._offsets = np.empty(pieces * rows + 1, dtype=np.int32)
            self._literal_key = None
        arena, offsets_out = self._arena, self._offsets[: pieces * rows + 1]
        counting = self._counting[:rows]
        if self._literal_key != (literals, rows):
            # Literal pieces first: each is the same text in every row, kept for the next run.
            position = 0
            for number, literal in enumerate(literals):
                encoded = np.frombuffer(literal.encode(), np.uint8)
                width = len(encoded)
                arena[position : position + width * rows].reshape(rows, width)[...] = encoded
                segment = offsets_out[number * rows : (number + 1) * rows]
                np.multiply(counting, width, out=segment)
                segment += position
                position += width * rows
            self._literal_key = (literals, rows)
        position = literal_bytes
        for number, (array, offsets) in enumerate(
            zip(arrays, value_offsets, strict=True), start=len(literals)
        ):
            size = int(offsets[-1] - offsets[0])
            if size:
                data = np.frombuffer(array.buffers()[2], np.uint8, size, int(offsets[0]))
                arena[position : position + size] = data
            segment = offsets_out[number * rows : (number + 1) * rows]
            np.subtract(offsets[:-1], offsets[0] - position, out=segment)
            position += size
        offsets_out[-1] = total
        laid = pa.Array.from_buffers(
            pa.string(),
            pieces * rows,
            [None, pa.py_buffer(offsets_out), pa.py_buffer(arena[:total])],
        )
        return pc.take(laid, self._order(kinds, rows), boundscheck=False)  # indices in range

    def _order(self, kinds: tuple[bool, ...], rows: int) -> pa.Array:
        """For each row, the index of each of its pieces in the arena: literals come first
        (``kinds`` marks them), the value arrays after them."""
        cached = self._orders.get((kinds, rows))
        if cached is None:
            literal_count = sum(kinds)
            place, literal, value = [], 0, literal_count
            for is_literal in kinds:
                if is_literal:
                    place.append(literal)
                    literal += 1
                else:
                    place.append(value)
                    value += 1
            index = np.arange(rows, dtype=np.int32)[:, None] + np.asarray(place, np.int32) * rows
            cached = pa.array(index.ravel())
            if len(self._orders) > 8:
                self._orders.clear()
            self._orders[(kinds, rows)] = cached
        return cached
