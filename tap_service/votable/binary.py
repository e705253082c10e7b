"""VOTable BINARY2 (and BINARY) streams built column by column with numpy and Arrow.

A binary record is the concatenation of each field's bytes (BINARY2 first puts one NULL-flag
bit per field).  Fixed-size fields are written into one ``(rows, width)`` byte matrix per run
of consecutive fixed fields; variable-size fields (strings, ``*`` arrays) become Arrow binary
arrays; Arrow's ``binary_join_element_wise`` then interleaves the pieces row by row in C.  When
every field is fixed-size the matrix itself is the record stream.

The record stream is base64-encoded in 57-byte groups (76 characters and a newline per line);
the bytes left over after the last whole group are kept for the next batch, so the encoded
stream is the same whether the rows arrive in one batch or in many.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from tap_service.votable.columns import ColumnSpec, conform, string_buffer, truncate
from tap_service.votable.document import Info, votable_head, votable_tail
from tap_service.votable.fields import Field

Bytes = npt.NDArray[np.uint8]

# Rows per internal slice: keeps the Arrow join below 2 GiB offsets and the temporary
# matrices in cache-friendly sizes, whatever batch size the database hands over.
SLICE_ROWS = 32768

_LINE_INPUT = 57  # bytes of input per base64 line of 76 characters
_LINE_OUTPUT = 76

_T, _F, _QUESTION = ord("T"), ord("F"), ord("?")

# BINARY (v1) has no NULL flags: integers need an in-band value, declared in VALUES null.
V1_INTEGER_NULLS: dict[str, int] = {
    "unsignedByte": 255,
    "short": -(2**15),
    "int": -(2**31),
    "long": -(2**63),
}


class Base64Lines:
    """Incremental base64 with fixed-length lines; output does not depend on chunking."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes | memoryview) -> bytes:
        if self._pending:
            data = self._pending + bytes(data)
        usable = len(data) - len(data) % _LINE_INPUT
        self._pending = bytes(data[usable:])
        if usable == 0:
            return b""
        encoded = binascii.b2a_base64(data[:usable], newline=False)
        lines = np.frombuffer(encoded, dtype=np.uint8).reshape(-1, _LINE_OUTPUT)
        out = np.empty((lines.shape[0], _LINE_OUTPUT + 1), dtype=np.uint8)
        out[:, :_LINE_OUTPUT] = lines
        out[:, _LINE_OUTPUT] = ord("\n")
        return out.tobytes()

    def flush(self) -> bytes:
        if not self._pending:
            return b""
        tail = binascii.b2a_base64(self._pending, newline=True)
        self._pending = b""
        return tail


def _offsets_from_lengths(lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _pad_rows(
    flat: npt.NDArray[np.generic],
    offsets: npt.NDArray[np.int64],
    width: int,
    fill: object,
) -> npt.NDArray[np.generic]:
    """Row ``i`` holds ``flat[offsets[i]:offsets[i+1]]``; return a ``(rows, width)`` matrix,
    truncating longer rows and padding shorter ones with ``fill``."""
    rows = len(offsets) - 1
    lengths = np.diff(offsets)
    if rows and np.all(lengths == width):
        start = int(offsets[0])
        return flat[start : start + rows * width].reshape(rows, width)
    out = np.full((rows, width), fill, dtype=flat.dtype)
    kept = np.minimum(lengths, width)
    total = int(kept.sum())
    if total:
        row_index = np.repeat(np.arange(rows), kept)
        kept_starts = _offsets_from_lengths(kept)[:-1]
        position = np.arange(total) - np.repeat(kept_starts, kept)
        out[row_index, position] = flat[np.repeat(offsets[:-1], kept) + position]
    return out


def _utf16_prefix(value: str, units: int) -> bytes:
    """At most ``units`` UTF-16 code units, never ending inside a surrogate pair."""
    encoded = value.encode("utf-16-be")[: 2 * units]
    if len(encoded) >= 2 and 0xD8 <= encoded[-2] <= 0xDB:
        encoded = encoded[:-2]
    return encoded


def _drop_split_surrogates(matrix: npt.NDArray[np.generic]) -> None:
    """Zero a high surrogate left in the last unit of a fixed-size UTF-16 value by truncation,
    which would make the whole value undecodable."""
    if matrix.shape[1] < 2:
        return
    last_high = matrix[:, -2]
    broken = (last_high >= 0xD8) & (last_high <= 0xDB)
    if broken.any():
        matrix[broken, -2:] = 0


def _binary_array(data: Bytes | memoryview, offsets: npt.NDArray[np.int64]) -> pa.Array:
    """An Arrow binary array over existing bytes (offsets relative to ``data``)."""
    offsets32 = (offsets - offsets[0]).astype(np.int32)
    buffers = [None, pa.py_buffer(offsets32), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.binary(), len(offsets) - 1, buffers)


def _as_bytes_matrix(values: npt.NDArray[np.generic], rows: int) -> Bytes:
    return np.ascontiguousarray(values).view(np.uint8).reshape(rows, -1)


class _Encoder:
    """Encodes one field of every row of a batch into fixed blocks or variable pieces."""

    def __init__(self, spec: ColumnSpec, *, masked: bool) -> None:
        self.spec = spec
        dtype = spec.numpy_dtype
        datatype = spec.field.datatype
        if masked or spec.kind != "number":
            self.null_number: float | int = float("nan") if spec.is_float else 0
        else:
            self.null_number = float("nan") if spec.is_float else V1_INTEGER_NULLS[datatype]
        self.dtype = dtype

    def encode(self, column: pa.Array) -> list[Bytes | pa.Array]:
        spec = self.spec
        if spec.kind == "boolean":
            return [self._boolean(column)]
        if spec.kind == "number":
            return self._array(column) if spec.is_array else [self._number(column)]
        return self._string(column)

    def _number(self, column: pa.Array) -> Bytes:
        assert self.dtype is not None
        if column.null_count:
            column = column.fill_null(pa.scalar(self.null_number, column.type))
        values = column.to_numpy(zero_copy_only=False)
        return _as_bytes_matrix(values.astype(self.dtype, copy=False), len(column))

    def _boolean(self, column: pa.Array) -> Bytes:
        values = column.fill_null(False).to_numpy(zero_copy_only=False)
        out = np.where(values, np.uint8(_T), np.uint8(_F))
        if column.null_count:
            out[column.is_null().to_numpy(zero_copy_only=False)] = _QUESTION
        return out.reshape(-1, 1)

    def _array(self, column: pa.Array) -> list[Bytes | pa.Array]:
        assert self.dtype is not None
        spec = self.spec
        rows = len(column)
        if spec.shape.bound is not None and rows:
            longest = pc.max(pc.list_value_length(column)).as_py()
            if longest is not None and longest > spec.shape.bound:
                column = pc.list_slice(column, 0, spec.shape.bound)
        lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False)
        lengths = lengths.astype(np.int64)
        flat = column.flatten()
        if flat.null_count:
            flat = flat.fill_null(pa.scalar(self.null_number, flat.type))
        values = flat.to_numpy(zero_copy_only=False).astype(self.dtype, copy=False)
        offsets = _offsets_from_lengths(lengths)
        if spec.shape.count is not None:
            matrix = _pad_rows(values, offsets, spec.shape.count, self.null_number)
            return [_as_bytes_matrix(matrix, rows)]
        counts = _as_bytes_matrix(lengths.astype(">u4"), rows)
        data = np.ascontiguousarray(values).view(np.uint8)
        return [counts, _binary_array(data, offsets * self.dtype.itemsize)]

    def _string(self, column: pa.Array) -> list[Bytes | pa.Array]:
        spec = self.spec
        column = truncate(column.fill_null("") if column.null_count else column, spec)
        if spec.kind == "char":
            # VOTable 1.4 char is 7-bit ASCII and readers (astropy) decode it as such:
            # non-ASCII characters become '?'; declare text columns unicodeChar to keep them.
            if not pc.all(pc.string_is_ascii(column)).as_py() and len(column):
                column = pc.replace_substring_regex(column, "[^\\x00-\\x7f]", "?")
            data = np.frombuffer(string_buffer(column), dtype=np.uint8)
            lengths = pc.binary_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
            offsets = _offsets_from_lengths(lengths)
            unit = 1
        else:
            utf8 = string_buffer(column)
            encoded = bytes(utf8).decode("utf-8").encode("utf-16-be")
            data = np.frombuffer(encoded, dtype=np.uint8)
            units = pc.utf8_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
            raw = np.frombuffer(utf8, dtype=np.uint8)
            four_byte = raw >= 0xF0  # lead bytes of characters outside the BMP
            if four_byte.any():
                per_byte = _offsets_from_lengths(four_byte.astype(np.int64))
                char_offsets = _offsets_from_lengths(
                    pc.binary_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
                )
                units = units + np.diff(per_byte[char_offsets])
            bound = spec.shape.bound
            if bound is not None and len(units) and int(units.max()) > bound:
                # Characters outside the BMP take two units, so the character-based truncation
                # above can still exceed the bound (rare: redo this column in Python).
                rows = [_utf16_prefix(value, bound) for value in column.to_pylist()]
                data = np.frombuffer(b"".join(rows), dtype=np.uint8)
                units = np.array([len(row) // 2 for row in rows], dtype=np.int64)
            offsets = _offsets_from_lengths(units * 2)
            lengths = units
            unit = 2
        if spec.shape.count is not None:
            matrix = _pad_rows(data, offsets, spec.shape.count * unit, 0)
            if unit == 2:
                _drop_split_surrogates(matrix)
            return [_as_bytes_matrix(matrix, len(column))]
        counts = _as_bytes_matrix(lengths.astype(">u4"), len(column))
        return [counts, _binary_array(data, offsets)]


def encode_records(
    columns: Sequence[pa.Array], encoders: Sequence[_Encoder], *, masked: bool
) -> bytes | memoryview:
    """Binary records of conformed columns, rows in order."""
    rows = len(columns[0]) if columns else 0
    pending: list[Bytes] = []
    pieces: list[Bytes | pa.Array] = []
    if masked:
        nulls = np.zeros((rows, len(columns)), dtype=np.bool_)
        for index, column in enumerate(columns):
            if column.null_count:
                nulls[:, index] = column.is_null().to_numpy(zero_copy_only=False)
        pending.append(np.packbits(nulls, axis=1, bitorder="big"))
    for column, encoder in zip(columns, encoders, strict=True):
        for part in encoder.encode(column):
            if isinstance(part, np.ndarray):
                pending.append(part)
            else:
                if pending:
                    pieces.append(
                        np.concatenate(pending, axis=1) if len(pending) > 1 else pending[0]
                    )
                    pending = []
                pieces.append(part)
    if pending:
        pieces.append(np.concatenate(pending, axis=1) if len(pending) > 1 else pending[0])
    if not pieces or rows == 0:
        return b""
    if len(pieces) == 1 and isinstance(pieces[0], np.ndarray):
        return np.ascontiguousarray(pieces[0]).tobytes()
    arrays = []
    for piece in pieces:
        if isinstance(piece, np.ndarray):
            matrix = np.ascontiguousarray(piece)
            width = matrix.shape[1]
            offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int64)
            arrays.append(_binary_array(matrix.reshape(-1), offsets))
        else:
            arrays.append(piece)
    joined = pc.binary_join_element_wise(*arrays, pa.scalar(b"", pa.binary()))
    return string_buffer(joined)


class BinaryWriter:
    """Streams a TAP result as VOTable BINARY2 (``version=2``) or BINARY (``version=1``).

    BINARY (v1) has no NULL flags: NULL floats become NaN, integers the value declared in the
    FIELD's VALUES null, booleans ``?``, strings and variable arrays empty (a NULL string and an
    empty string cannot be told apart), fixed-size arrays NaN/NULL-value filled.
    """

    def __init__(
        self,
        fields: Sequence[Field],
        specs: Sequence[ColumnSpec],
        *,
        version: int,
        media_type: str,
        infos: Sequence[Info],
        resource_meta: bytes,
        table_name: str | None,
    ) -> None:
        self.media_type = media_type
        self._fields = list(fields)
        self._specs = list(specs)
        self._masked = version == 2
        self._element = "BINARY2" if self._masked else "BINARY"
        self._encoders = [_Encoder(spec, masked=self._masked) for spec in specs]
        self._infos = list(infos)
        self._resource_meta = resource_meta
        self._table_name = table_name
        self._base64 = Base64Lines()

    def _null_values(self) -> list[str | None] | None:
        if self._masked:
            return None
        return [
            str(V1_INTEGER_NULLS[spec.field.datatype])
            if spec.field.datatype in V1_INTEGER_NULLS
            else None
            for spec in self._specs
        ]

    def begin(self) -> bytes:
        return votable_head(
            self._fields,
            infos=self._infos,
            table_name=self._table_name,
            data_open=f'<DATA><{self._element}>\n<STREAM encoding="base64">\n',
            null_values=self._null_values(),
        )

    def write_batch(self, batch: pa.RecordBatch) -> bytes:
        out = []
        for start in range(0, batch.num_rows, SLICE_ROWS):
            part = batch.slice(start, SLICE_ROWS)
            columns = [conform(part.column(index), spec) for index, spec in enumerate(self._specs)]
            records = encode_records(columns, self._encoders, masked=self._masked)
            out.append(self._base64.feed(records))
        return b"".join(out)

    def end(self, *, overflow: bool = False, infos_after: Sequence[Info] = ()) -> bytes:
        stream_tail = self._base64.flush()
        return stream_tail + votable_tail(
            data_close=f"</STREAM>\n</{self._element}></DATA>\n",
            overflow=overflow,
            infos_after=infos_after,
            resource_meta=self._resource_meta,
        )
