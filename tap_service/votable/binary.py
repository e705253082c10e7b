"""VOTable BINARY2 (and BINARY) streams built column by column with numpy and Arrow.

A binary record is the concatenation of each field's bytes (BINARY2 first puts one NULL-flag
bit per field).  Each run of consecutive fixed-size parts (numbers, booleans, fixed arrays and
strings, the element counts of variable values) is one numpy structured array per batch, with
big-endian fields: assigning a column to it swaps the byte order and interleaves in a single
pass.  Variable-size data (strings, ``*`` arrays) stays in Arrow binary arrays, unless all its
values in the batch have one length (then it is a fixed-size part for that batch); one Arrow
``take`` over all pieces laid end to end puts them in record order, in C.  When every field is
fixed-size the structured array itself is the record stream.

The record stream is base64-encoded in 57-byte groups (76 characters and a newline per line);
the bytes left over after the last whole group are kept for the next batch, so the encoded
stream is the same whether the rows arrive in one batch or in many.  The encoding itself is
pybase64's (SIMD): the standard library's ``binascii`` took about 45% of the writer's time.

Speed (docs/formats.md): NULL masks and booleans come straight from Arrow's bitmaps, and no
buffer proportional to the batch is allocated afresh per batch except the returned ``bytes``
(record arrays and the base64 framing buffer are reused): on this workload, page faults on
fresh multi-megabyte buffers cost more than the encoding itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pybase64 import b64encode

from tap_service.votable.columns import ColumnSpec, batch_slices, conform, string_buffer, truncate
from tap_service.votable.document import Info, votable_head, votable_tail
from tap_service.votable.fields import Field

Bytes = npt.NDArray[np.uint8]


_LINE_INPUT = 57  # bytes of input per base64 line of 76 characters
_LINE_OUTPUT = 76
_LINE_TEXT = np.dtype((np.void, _LINE_OUTPUT))
# Lines base64-encoded per call: the text (78 kB) stays in the CPU cache until it is framed, and
# below glibc's threshold for mapping fresh pages.
_SLAB_LINES = 1024
_SLAB_INPUT = _SLAB_LINES * _LINE_INPUT

_T, _F, _QUESTION = ord("T"), ord("F"), ord("?")

# Prebuilt: Arrow re-converts (slowly) any Python value handed to a compute function.
_FALSE = pa.scalar(False)
_ZERO_LENGTH = pa.scalar(0, pa.int32())
_EMPTY_STRING = pa.scalar("", pa.string())
_EMPTY_BINARY = pa.scalar(b"", pa.binary())

# BINARY (v1) has no NULL flags: integers need an in-band value, declared in VALUES null.
V1_INTEGER_NULLS: dict[str, int] = {
    "unsignedByte": 255,
    "short": -(2**15),
    "int": -(2**31),
    "long": -(2**63),
}


class Base64Lines:
    """Incremental base64 with fixed-length lines; output does not depend on chunking.

    Encodes in slabs of ``_SLAB_LINES`` lines whose text lands in a framing buffer kept from
    one call to the next (its newline column written once): large buffers allocated afresh
    for every batch cost more in page faults than the encoding itself.  Each call returns one
    new ``bytes`` object, the only allocation proportional to the batch.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._frame: Bytes = np.empty((0, _LINE_OUTPUT + 1), dtype=np.uint8)
        self._texts: npt.NDArray[np.void] = self._frame[:, :_LINE_OUTPUT].view(_LINE_TEXT)[:, 0]

    def _lines(self, count: int) -> Bytes:
        if len(self._frame) < count:
            frame = np.empty((max(count, 2 * len(self._frame)), _LINE_OUTPUT + 1), np.uint8)
            frame[:, _LINE_OUTPUT] = ord("\n")
            self._frame = frame
            # The text of each line as one 76-byte item: copied in one piece (2x faster than
            # 76 single bytes per line).
            self._texts = frame[:, :_LINE_OUTPUT].view(_LINE_TEXT)[:, 0]
        return self._frame[:count]

    def feed(self, data: bytes | memoryview) -> bytes:
        view = memoryview(data).cast("B")
        head = b""
        if self._pending:
            # Complete the pending line from the front of the new data instead of
            # concatenating (which would copy the whole batch).
            need = _LINE_INPUT - len(self._pending)
            if len(view) < need:
                self._pending += bytes(view)
                return b""
            head = self._pending + bytes(view[:need])
            view = view[need:]
            self._pending = b""
        usable = len(view) - len(view) % _LINE_INPUT
        self._pending = bytes(view[usable:])
        lines = usable // _LINE_INPUT + (1 if head else 0)
        if lines == 0:
            return b""
        out = self._lines(lines)
        row = 0
        if head:
            out[0, :_LINE_OUTPUT] = np.frombuffer(b64encode(head), np.uint8)
            row = 1
        for start in range(0, usable, _SLAB_INPUT):
            slab = view[start : min(start + _SLAB_INPUT, usable)]
            text = np.frombuffer(b64encode(slab), _LINE_TEXT)
            self._texts[row : row + len(text)] = text
            row += len(text)
        return out.tobytes()

    def flush(self) -> bytes:
        if not self._pending:
            return b""
        tail = b64encode(self._pending) + b"\n"
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


def _drop_split_surrogates(matrix: npt.NDArray[np.generic]) -> None:
    """Zero a high surrogate left in the last unit of a fixed-size UTF-16 value by truncation,
    which would make the whole value undecodable."""
    if matrix.shape[1] < 2:
        return
    last_high = np.asarray(matrix[:, -2], dtype=np.uint8)
    broken = (last_high >= 0xD8) & (last_high <= 0xDB)
    if broken.any():
        matrix[broken, -2:] = 0


def _binary_array(data: Bytes | memoryview, offsets: npt.NDArray[np.int64]) -> pa.Array:
    """An Arrow binary array over existing bytes (offsets relative to ``data``)."""
    offsets32 = (offsets - offsets[0]).astype(np.int32)
    buffers = [None, pa.py_buffer(offsets32), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.binary(), len(offsets) - 1, buffers)


@dataclass
class _Fixed:
    """Values of one fixed-size part for every row; ``nulls`` rows get ``fill`` instead."""

    values: npt.NDArray[np.generic]
    nulls: npt.NDArray[np.bool_] | None = None
    fill: object = 0


Part: TypeAlias = _Fixed | pa.Array


def _raw_numbers(column: pa.Array, dtype: np.dtype[np.generic]) -> npt.NDArray[np.generic]:
    """The values buffer of a numeric Arrow array as numpy (native ``dtype``), without copying
    (NULL slots hold whatever the producer left there; callers overwrite them)."""
    values = column.buffers()[1]
    if values is None:  # an all-NULL array may come without a values buffer
        return np.zeros(len(column), dtype=dtype)
    return np.frombuffer(
        values, dtype=dtype, count=len(column), offset=column.offset * dtype.itemsize
    )


class _Encoder:
    """Encodes one field of every row of a batch into fixed-size parts or variable pieces.

    ``layout`` lists, per part, the big-endian numpy dtype of a fixed-size part or ``None``
    for a variable-size piece; ``encode`` returns the parts in the same order.
    """

    def __init__(self, spec: ColumnSpec, *, masked: bool) -> None:
        self.spec = spec
        datatype = spec.field.datatype
        if masked or spec.kind != "number":
            self.null_number: float | int = float("nan") if spec.is_float else 0
        else:
            self.null_number = float("nan") if spec.is_float else V1_INTEGER_NULLS[datatype]
        self.dtype = spec.numpy_dtype
        self.native = None if self.dtype is None else self.dtype.newbyteorder("=")
        self.layout = self._layout()
        self._null_element: pa.Scalar | None = None
        if spec.is_array:
            self._null_element = pa.scalar(self.null_number, spec.arrow_type.value_type)

    def _layout(self) -> list[np.dtype[np.generic] | None]:
        spec = self.spec
        count = spec.shape.count
        if spec.kind == "boolean":
            return [np.dtype("u1")]
        if spec.kind == "number":
            assert self.dtype is not None
            if not spec.is_array:
                return [self.dtype]
            if count is not None:
                return [np.dtype((self.dtype, (count,)))]
            return [np.dtype(">u4"), None]
        unit = 1 if spec.kind == "char" else 2
        if count is not None:
            return [np.dtype(("u1", (count * unit,)))]
        return [np.dtype(">u4"), None]

    def encode(self, column: pa.Array, nulls: npt.NDArray[np.bool_] | None) -> list[Part]:
        spec = self.spec
        if spec.kind == "boolean":
            return [self._boolean(column, nulls)]
        if spec.kind == "number":
            if spec.is_array:
                return self._array(column)
            assert self.native is not None
            return [_Fixed(_raw_numbers(column, self.native), nulls, self.null_number)]
        return self._string(column, nulls)

    def _boolean(self, column: pa.Array, nulls: npt.NDArray[np.bool_] | None) -> _Fixed:
        # Straight from the values bitmap (what lies under a NULL is overwritten with '?').
        data = column.buffers()[1]
        if data is None:
            return _Fixed(np.full(len(column), _QUESTION, np.uint8), nulls, _QUESTION)
        bits = np.unpackbits(
            np.frombuffer(data, np.uint8), count=column.offset + len(column), bitorder="little"
        )[column.offset :]
        bits *= np.uint8(_T - _F)
        bits += np.uint8(_F)
        return _Fixed(bits, nulls, _QUESTION)

    def _array(self, column: pa.Array) -> list[Part]:
        assert self.dtype is not None
        spec = self.spec
        rows = len(column)
        if spec.shape.bound is not None and rows:
            longest = pc.max(pc.list_value_length(column)).as_py()
            if longest is not None and longest > spec.shape.bound:
                column = pc.list_slice(column, 0, spec.shape.bound)
        lengths = (
            pc.list_value_length(column).fill_null(_ZERO_LENGTH).to_numpy(zero_copy_only=False)
        )
        lengths = lengths.astype(np.int64)
        flat = column.flatten()
        if flat.null_count:
            flat = flat.fill_null(self._null_element)
        values = flat.to_numpy(zero_copy_only=False)
        offsets = _offsets_from_lengths(lengths)
        if spec.shape.count is not None:
            return [_Fixed(_pad_rows(values, offsets, spec.shape.count, self.null_number))]
        data = np.ascontiguousarray(values.astype(self.dtype, copy=False)).view(np.uint8)
        return [_Fixed(lengths), _binary_array(data, offsets * self.dtype.itemsize)]

    def _string(self, column: pa.Array, nulls: npt.NDArray[np.bool_] | None) -> list[Part]:
        spec = self.spec
        column = truncate(_empty_for_null(column, nulls), spec)
        if spec.kind == "char":
            # VOTable 1.4 char is 7-bit ASCII and readers (astropy) decode it as such:
            # non-ASCII characters become '?'; declare text columns unicodeChar to keep them.
            text = np.frombuffer(string_buffer(column), np.uint8)
            if len(text) and text.max() >= 0x80:
                column = pc.replace_substring_regex(column, "[^\\x00-\\x7f]", "?")
            if spec.shape.count is None:
                return [_Fixed(pc.binary_length(column).to_numpy(zero_copy_only=False)), column]
            data = np.frombuffer(string_buffer(column), dtype=np.uint8)
            lengths = pc.binary_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
            return [_Fixed(_pad_rows(data, _offsets_from_lengths(lengths), spec.shape.count, 0))]
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
        offsets = _offsets_from_lengths(units * 2)
        if spec.shape.count is not None:
            matrix = _pad_rows(data, offsets, spec.shape.count * 2, 0)
            _drop_split_surrogates(matrix)
            return [_Fixed(matrix)]
        return [_Fixed(units), _binary_array(data, offsets)]


_Group: TypeAlias = tuple[np.dtype[np.void] | None, list[str]]


def _uniform_width(values: pa.Array) -> int | None:
    """The byte length shared by every value of a binary array, or None if they differ."""
    offsets = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)
    widths = np.diff(offsets)
    first = int(widths[0])
    return first if bool((widths == first).all()) else None


def _empty_for_null(column: pa.Array, nulls: npt.NDArray[np.bool_] | None) -> pa.Array:
    """A string column whose NULLs (``nulls``, its null mask) read as empty strings.  Producers
    usually leave NULL slots empty already; then the same buffers without the validity bitmap
    will do (no copy)."""
    if nulls is None:
        return column
    validity, offsets_buffer, data = column.buffers()
    if validity is not None and offsets_buffer is not None:
        offsets = np.frombuffer(offsets_buffer, np.int32, len(column) + 1, column.offset * 4)
        if not np.diff(offsets)[nulls].any():
            return pa.Array.from_buffers(
                column.type, len(column), [None, offsets_buffer, data], 0, column.offset
            )
    return column.fill_null(_EMPTY_STRING)


class RecordLayout:
    """How the parts of all fields interleave in a record: runs of fixed-size parts become one
    numpy structured array per batch (one pass per column, byte order swapped on assignment),
    variable-size pieces sit between them.

    A variable-size piece whose values all have the same length in a batch (a one-letter band
    name, polygons of one vertex count) is a fixed-size part for that batch: it joins the
    structured array around it, and the pieces left to interleave row by row get fewer.
    """

    def __init__(self, encoders: Sequence[_Encoder], *, masked: bool) -> None:
        self.encoders = list(encoders)
        self.masked = masked
        # Every part in record order: its name and big-endian dtype, or None when variable.
        self._slots: list[tuple[str, np.dtype[np.generic] | None]] = []
        if masked:
            self._slots.append(("nulls", np.dtype(("u1", ((len(encoders) + 7) // 8,)))))
        self.part_names: list[list[str]] = []
        self._variable: list[str] = []
        for index, encoder in enumerate(encoders):
            part_names: list[str] = []
            for number, part in enumerate(encoder.layout):
                name = f"c{index}_{number}"
                self._slots.append((name, part))
                part_names.append(name)
                if part is None:
                    self._variable.append(name)
            self.part_names.append(part_names)
        self._groups: dict[tuple[int | None, ...], list[_Group]] = {}
        self._buffers: dict[np.dtype[np.void], npt.NDArray[np.void]] = {}
        self._orders: dict[tuple[tuple[int, ...], int], pa.Array] = {}
        self._arena: npt.NDArray[np.uint8] = np.empty(0, dtype=np.uint8)
        self._piece_offsets: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._count: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._scratch: npt.NDArray[np.uint8] = np.empty(0, dtype=np.uint8)

    def groups(self, uniform: tuple[int | None, ...]) -> list[_Group]:
        """Runs of fixed-size parts (a structured dtype and its names) and variable pieces (a
        name), given the byte length shared by all values of each variable piece in this
        batch (``None`` where they differ)."""
        cached = self._groups.get(uniform)
        if cached is not None:
            return cached
        width = dict(zip(self._variable, uniform, strict=True))
        groups: list[_Group] = []
        names: list[str] = []
        formats: list[np.dtype[np.generic]] = []
        for name, part in self._slots:
            if part is None and width[name] is None:
                if names:
                    groups.append((np.dtype({"names": names, "formats": formats}), names))
                names, formats = [], []
                groups.append((None, [name]))
                continue
            if part is None:
                part = np.dtype(("u1", (width[name],)))
            names.append(name)
            formats.append(part)
        if names:
            groups.append((np.dtype({"names": names, "formats": formats}), names))
        if len(self._groups) > 32:  # lengths vary little between batches; keep a few layouts
            self._groups.clear()
        self._groups[uniform] = groups
        return groups

    def encode(self, columns: Sequence[pa.Array]) -> bytes | memoryview:
        """The records of one batch.  The result may be a view of a buffer this layout reuses
        for the next call: consume it (base64) before encoding again."""
        rows = len(columns[0]) if columns else 0
        if rows == 0:
            return b""
        null_masks = [null_mask(column) for column in columns]
        fixed: dict[str, _Fixed] = {}
        var: dict[str, pa.Array] = {}
        for column, nulls, encoder, names in zip(
            columns, null_masks, self.encoders, self.part_names, strict=True
        ):
            for part_name, part in zip(names, encoder.encode(column, nulls), strict=True):
                if isinstance(part, _Fixed):
                    fixed[part_name] = part
                else:
                    var[part_name] = part
        uniform = []
        for name in self._variable:
            width = _uniform_width(var[name])
            if width is not None:
                data = np.frombuffer(string_buffer(var[name]), np.uint8)
                fixed[name] = _Fixed(data.reshape(rows, width))
            uniform.append(width)
        groups = self.groups(tuple(uniform))
        dtype, group_names = groups[0]
        if len(groups) == 1 and dtype is not None:
            records = self._records(dtype, rows)
            self._fill(records, group_names, fixed, null_masks)
            return records.view(np.uint8).data
        return self._interleaved(groups, rows, fixed, var, null_masks)

    def _fill(
        self,
        records: npt.NDArray[np.void],
        names: Sequence[str],
        fixed: dict[str, _Fixed],
        null_masks: Sequence[npt.NDArray[np.bool_] | None],
    ) -> None:
        """Assign every fixed-size part of one group (byte order swapped on the way)."""
        for name in names:
            target = records[name]
            if name == "nulls":
                self._null_flags(target, null_masks)
                continue
            part = fixed[name]
            target[...] = part.values.reshape(target.shape)
            if part.nulls is not None:
                if target.ndim > 1:
                    target[part.nulls] = part.fill
                else:
                    np.copyto(target, np.asarray(part.fill), casting="unsafe", where=part.nulls)

    def _interleaved(
        self,
        groups: Sequence[_Group],
        rows: int,
        fixed: dict[str, _Fixed],
        var: dict[str, pa.Array],
        null_masks: Sequence[npt.NDArray[np.bool_] | None],
    ) -> memoryview:
        """Records with variable-size pieces between fixed-size groups.

        Every piece is laid end to end in one reused arena (the structured arrays of the fixed
        groups are views of it, the variable values are copied after them) that one Arrow
        binary array describes without copying; one ``take`` then puts the pieces in record
        order, in C, so its data buffer is the record stream (measured 25% faster than an
        element-wise join of the pieces; the arena saves the ``concat`` copy of the batch).
        """
        fixed_groups = [group for group in groups if group[0] is not None]
        variable = [var[names[0]] for dtype, names in groups if dtype is None]
        starts = []
        var_offsets = []
        total = 0
        for dtype, _names in fixed_groups:
            assert dtype is not None
            starts.append(total)
            total += rows * dtype.itemsize
        for values in variable:
            offsets = np.frombuffer(values.buffers()[1], np.int32, rows + 1, values.offset * 4)
            var_offsets.append(offsets)
            starts.append(total)
            total += int(offsets[-1] - offsets[0])
        if len(self._arena) < total:
            self._arena = np.empty(total + total // 4, dtype=np.uint8)
        arena = self._arena
        pieces = len(starts)
        if len(self._piece_offsets) < pieces * rows + 1:
            self._piece_offsets = np.empty(pieces * rows + 1, dtype=np.int32)
        piece_offsets = self._piece_offsets[: pieces * rows + 1]
        counting = self._counting(rows)
        for number, (dtype, names) in enumerate(fixed_groups):
            assert dtype is not None
            records = np.ndarray((rows,), dtype=dtype, buffer=arena, offset=starts[number])
            self._fill(records, names, fixed, null_masks)
            segment = piece_offsets[number * rows : (number + 1) * rows]
            np.multiply(counting, dtype.itemsize, out=segment)
            segment += starts[number]
        for number, (values, offsets) in enumerate(
            zip(variable, var_offsets, strict=True), start=len(fixed_groups)
        ):
            start = starts[number]
            size = int(offsets[-1] - offsets[0])  # > 0: values of one length are fixed parts
            data = np.frombuffer(values.buffers()[2], np.uint8, size, int(offsets[0]))
            arena[start : start + size] = data
            segment = piece_offsets[number * rows : (number + 1) * rows]
            np.subtract(offsets[:-1], offsets[0] - start, out=segment)
        piece_offsets[-1] = total
        laid = pa.Array.from_buffers(
            pa.binary(),
            pieces * rows,
            [None, pa.py_buffer(piece_offsets), pa.py_buffer(arena[:total])],
        )
        # Where each piece lies in the arena, in record order.
        order: list[int] = []
        fixed_number, var_number = 0, len(fixed_groups)
        for dtype, _names in groups:
            if dtype is None:
                order.append(var_number)
                var_number += 1
            else:
                order.append(fixed_number)
                fixed_number += 1
        # The indices are built here, in range: no bounds check.
        taken = pc.take(laid, self._interleave(tuple(order), rows), boundscheck=False)
        return string_buffer(taken)

    def _counting(self, rows: int) -> npt.NDArray[np.int32]:
        if len(self._count) < rows:
            self._count = np.arange(rows, dtype=np.int32)
        return self._count[:rows]

    def _interleave(self, order: tuple[int, ...], rows: int) -> pa.Array:
        """Indices of the pieces of row 0 (in record order), then of row 1, ...: piece ``p``
        of row ``r`` is at ``p * rows + r`` in the arena."""
        cached = self._orders.get((order, rows))
        if cached is None:
            index = np.arange(rows, dtype=np.int32)[:, None] + np.asarray(order, np.int32) * rows
            cached = pa.array(index.ravel())
            if len(self._orders) > 8:  # batch sizes vary little; keep a few
                self._orders.clear()
            self._orders[(order, rows)] = cached
        return cached

    def _records(self, dtype: np.dtype[np.void], rows: int) -> npt.NDArray[np.void]:
        """A structured array for ``rows`` records of one group, reused from batch to batch
        (every field is assigned before use)."""
        buffer = self._buffers.get(dtype)
        if buffer is None or len(buffer) < rows:
            if len(self._buffers) > 32:
                self._buffers.clear()
            buffer = self._buffers[dtype] = np.empty(rows, dtype=dtype)
        return buffer[:rows]

    def _null_flags(
        self, target: npt.NDArray[np.uint8], null_masks: Sequence[npt.NDArray[np.bool_] | None]
    ) -> None:
        """One bit per field, most significant first (BINARY2): each flag byte is built in a
        contiguous scratch row, then stored into its (strided) place in the records."""
        rows = len(target)
        if len(self._scratch) < 2 * rows:
            self._scratch = np.empty(2 * rows, dtype=np.uint8)
        byte, shifted = self._scratch[:rows], self._scratch[rows : 2 * rows]
        for number in range(target.shape[1]):
            byte[...] = 0
            for index in range(8 * number, min(8 * number + 8, len(null_masks))):
                nulls = null_masks[index]
                if nulls is not None:
                    np.left_shift(nulls.view(np.uint8), 7 - index % 8, out=shifted)
                    byte |= shifted
            target[:, number] = byte


def null_mask(column: pa.Array) -> npt.NDArray[np.bool_] | None:
    """Where ``column`` is NULL, read from its validity bitmap; ``None`` when nothing is."""
    if not column.null_count:
        return None
    validity = column.buffers()[0]
    if validity is None:  # an array of type null has no bitmap, every value is NULL
        return np.ones(len(column), dtype=np.bool_)
    bits = np.unpackbits(
        np.frombuffer(validity, np.uint8), count=column.offset + len(column), bitorder="little"
    )
    nulls: npt.NDArray[np.bool_] = bits[column.offset :] == 0
    return nulls


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
        self._layout = RecordLayout(
            [_Encoder(spec, masked=self._masked) for spec in specs], masked=self._masked
        )
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
        for part in batch_slices(batch, len(self._specs)):
            pairs = zip(part.columns, self._specs, strict=True)
            columns = [conform(column, spec) for column, spec in pairs]
            records = self._layout.encode(columns)
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
