"""VOTable TABLEDATA: rows as XML, rendered column by column with Arrow string kernels.

Each column becomes an array of cell texts; the ``<TR>`` rows are assembled from them and the
tags between them by one Arrow ``take`` per run of rows (``RowAssembler``), which leaves them
contiguous in the result's data buffer.  NULL cells (and empty strings, which TABLEDATA
cannot tell apart from NULL) are written ``<TD/>``: for columns that have any, the opening and
closing tags are picked per row (Arrow ``take``) instead of literals, so no pass over the
finished rows is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from tap_service.votable.columns import (
    EMPTY,
    ColumnSpec,
    RowAssembler,
    batch_slices,
    conform,
    fit_array,
    text,
    truncate,
    xml_escape,
)
from tap_service.votable.document import Info, votable_head, votable_tail
from tap_service.votable.fields import Field


def _values(column: pa.Array, spec: ColumnSpec, null_array: pa.Scalar | None) -> pa.Array:
    """Cell text; NULL becomes empty, and the empty cells are written ``<TD/>`` afterwards.

    A NULL fixed-size float array is written as NaNs instead: readers (STILTS votlint) reject
    an empty cell where a fixed number of values is declared.
    """
    values = text(fit_array(column, spec), spec)
    if spec.kind in ("char", "unicodeChar"):
        values = xml_escape(truncate(values, spec))
    if not values.null_count:
        return values
    return values.fill_null(null_array if null_array is not None else EMPTY)


def _null_array_text(spec: ColumnSpec) -> pa.Scalar | None:
    if spec.is_array and spec.is_float and spec.shape.count is not None:
        return pa.scalar(" ".join(["NaN"] * spec.shape.count), pa.string())
    return None


# Cell tags by position: 0 = a value, 1 = an empty cell (written <TD/>).
_OPEN = pa.array(["<TD>", "<TD/"], pa.string())
_CLOSE = pa.array(["</TD>", ">"], pa.string())


def _empty_cells(column: pa.Array, values: pa.Array, spec: ColumnSpec) -> pa.Array | None:
    """Positions (0/1) of the cells with no text, or None when there are none.

    Numbers never format as empty text, so a numeric column without NULLs needs no check.
    """
    if spec.kind not in ("char", "unicodeChar") and not spec.is_array and not column.null_count:
        return None
    empty = pc.equal(pc.binary_length(values), 0)
    if not pc.any(empty).as_py():
        return None
    return empty.cast(pa.int8())


class TableDataWriter:
    """Streams a TAP result as VOTable TABLEDATA.

    Strings longer than a fixed or bounded arraysize are truncated (TABLEDATA permits shorter
    ones, so they are not padded); characters XML 1.0 forbids become U+FFFD.
    """

    def __init__(
        self,
        fields: Sequence[Field],
        specs: Sequence[ColumnSpec],
        *,
        media_type: str,
        infos: Sequence[Info],
        resource_meta: bytes,
        table_name: str | None,
    ) -> None:
        self.media_type = media_type
        self._fields = list(fields)
        self._specs = list(specs)
        self._infos = list(infos)
        self._resource_meta = resource_meta
        self._table_name = table_name
        self._assembler = RowAssembler()
        self._null_arrays = [_null_array_text(spec) for spec in self._specs]

    def begin(self) -> bytes:
        return votable_head(
            self._fields,
            infos=self._infos,
            table_name=self._table_name,
            data_open="<DATA><TABLEDATA>\n",
        )

    def write_batch(self, batch: pa.RecordBatch) -> bytes:
        out = []
        for part in batch_slices(batch, len(self._specs)):
            if not self._specs:
                out.append(b"<TR></TR>\n" * part.num_rows)
                continue
            parts: list[pa.Array | str] = ["<TR>"]
            for index, spec in enumerate(self._specs):
                column = conform(part.column(index), spec)
                values = _values(column, spec, self._null_arrays[index])
                empty = _empty_cells(column, values, spec)
                if empty is None:
                    parts += ["<TD>", values, "</TD>"]
                else:
                    # Empty cells (NULL, "", []) become <TD/>: the tags are picked per row.
                    parts += [_OPEN.take(empty), values, _CLOSE.take(empty)]
            parts.append("</TR>\n")
            out.append(self._assembler.rows(parts, part.num_rows))
        return b"".join(out)

    def end(self, *, overflow: bool = False, infos_after: Sequence[Info] = ()) -> bytes:
        return votable_tail(
            data_close="</TABLEDATA></DATA>\n",
            overflow=overflow,
            infos_after=infos_after,
            resource_meta=self._resource_meta,
        )
