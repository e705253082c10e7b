"""VOTable TABLEDATA: rows as XML, rendered column by column with Arrow string kernels.

Each column becomes an array of complete cells (``<TD>text</TD>``, or ``<TD/>`` for NULL);
one element-wise join per batch then builds the ``<TR>`` rows, and the rows of the batch are
already contiguous in the join's data buffer.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from tap_service.votable.columns import (
    EMPTY,
    ColumnSpec,
    RowJoiner,
    conform,
    string_buffer,
    text,
    truncate,
    xml_escape,
)
from tap_service.votable.document import Info, votable_head, votable_tail
from tap_service.votable.fields import Field

SLICE_ROWS = 65536

_TD, _TD_END, _TD_NULL = pa.scalar("<TD>"), pa.scalar("</TD>"), pa.scalar("<TD/>")


def _cells(column: pa.Array, spec: ColumnSpec) -> list[pa.Array | str]:
    """A column's share of the row: bare values between literal tags when it has no NULLs
    (the common case, joined in the row pass), else complete ``<TD>`` cells."""
    values = text(column, spec)
    if spec.kind in ("char", "unicodeChar"):
        values = xml_escape(truncate(values, spec))
    if not values.null_count:
        return ["<TD>", values, "</TD>"]
    cells = pc.binary_join_element_wise(_TD, values, _TD_END, EMPTY)
    return [cells.fill_null(_TD_NULL)]


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
        self._joiner = RowJoiner()

    def begin(self) -> bytes:
        return votable_head(
            self._fields,
            infos=self._infos,
            table_name=self._table_name,
            data_open="<DATA><TABLEDATA>\n",
        )

    def write_batch(self, batch: pa.RecordBatch) -> bytes:
        out = []
        for start in range(0, batch.num_rows, SLICE_ROWS):
            part = batch.slice(start, SLICE_ROWS)
            if not self._specs:
                out.append(b"<TR></TR>\n" * part.num_rows)
                continue
            parts: list[pa.Array | str] = ["<TR>"]
            for index, spec in enumerate(self._specs):
                parts.extend(_cells(conform(part.column(index), spec), spec))
            parts.append("</TR>\n")
            out.append(bytes(string_buffer(self._joiner.join(parts))))
        return b"".join(out)

    def end(self, *, overflow: bool = False, infos_after: Sequence[Info] = ()) -> bytes:
        return votable_tail(
            data_close="</TABLEDATA></DATA>\n",
            overflow=overflow,
            infos_after=infos_after,
            resource_meta=self._resource_meta,
        )
