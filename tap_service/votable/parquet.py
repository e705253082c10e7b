"""VOParquet: Parquet with the result's VOTable metadata in the file footer.

Follows the IVOA Note "Parquet in the VO" (VOParquet 1.0): the file-level key-value metadata
holds ``IVOA.VOTable-Parquet.version`` = ``1.0`` and ``IVOA.VOTable-Parquet.content``, a
schema-valid VOTable whose first TABLE has no DATA and one FIELD per Parquet column, in order.

Choices a client may notice:

* Columns carry the Arrow type of their FIELD's declared datatype (``long`` is INT64,
  ``unsignedByte`` UINT_8, ``float`` FLOAT, numeric arrays LIST, ``char``/``unicodeChar``
  UTF-8 strings), so the VOTable and the Parquet types agree; DALI timestamps are strings as
  in the other formats.  NULL is a Parquet NULL everywhere (the strings too).
* Strings and arrays are cut to a declared ``n``/``n*`` arraysize as in TABLEDATA.
* Parquet's footer is written last, so the embedded VOTable knows how the query ended: the
  ``QUERY_STATUS`` INFO is ``OK`` before the TABLE, followed by ``OVERFLOW`` or ``ERROR``
  (with the message) after it when MAXREC was reached or the query failed while streaming.
  A failure after the first bytes still yields a complete, readable file of the rows sent.
* Rows are gathered into row groups of up to ``ROW_GROUP_ROWS`` rows (or ``ROW_GROUP_BYTES``
  of Arrow data), compressed with Snappy; memory is bounded by one row group.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from tap_service.votable.columns import ColumnSpec, batch_slices, conform, fit_array, truncate
from tap_service.votable.document import Info, votable_head, votable_tail
from tap_service.votable.fields import Field

PARQUET_MIME = "application/vnd.apache.parquet"
VERSION_KEY = "IVOA.VOTable-Parquet.version"
CONTENT_KEY = "IVOA.VOTable-Parquet.content"
VOPARQUET_VERSION = "1.0"

ROW_GROUP_ROWS = 65536
ROW_GROUP_BYTES = 16 << 20
COMPRESSION = "snappy"


class _Drain:
    """A write-only file object whose bytes are collected and handed out chunk by chunk."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def _column_name(field: Field, index: int, seen: set[str]) -> str:
    """Parquet needs no unique names, but Arrow readers build dicts from them: keep them unique."""
    name = field.name or f"col{index}"
    if name in seen:
        name = f"{name}_{index}"
    seen.add(name)
    return name


class ParquetWriter:
    """Streams a TAP result as VOParquet (see the module docstring)."""

    def __init__(
        self,
        fields: Sequence[Field],
        specs: Sequence[ColumnSpec],
        *,
        infos: Sequence[Info],
        resource_meta: bytes,
        table_name: str | None,
    ) -> None:
        self.media_type = PARQUET_MIME
        self._fields = list(fields)
        self._specs = list(specs)
        self._infos = list(infos)
        self._resource_meta = resource_meta
        self._table_name = table_name
        seen: set[str] = set()
        self._schema = pa.schema(
            [
                pa.field(_column_name(field, index, seen), spec.arrow_type)
                for index, (field, spec) in enumerate(zip(fields, specs, strict=True))
            ]
        )
        self._sink = _Drain()
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0

    def begin(self) -> bytes:
        self._writer = pq.ParquetWriter(
            self._sink,
            self._schema,
            compression=COMPRESSION,
            # Dictionaries pay off for repetitive text (bands, flags as strings); on measured
            # values (fluxes, coordinates) they are tried, overflow and are thrown away.
            use_dictionary=[
                field.name
                for field, spec in zip(self._schema, self._specs, strict=True)
                if spec.kind in ("char", "unicodeChar")
            ],
            store_schema=True,
            write_statistics=False,
        )
        return self._sink.take()

    def _conform(self, column: pa.Array, spec: ColumnSpec) -> pa.Array:
        column = conform(column, spec)
        if spec.kind in ("char", "unicodeChar"):
            return truncate(column, spec)
        return fit_array(column, spec)

    def write_batch(self, batch: pa.RecordBatch) -> bytes:
        for part in batch_slices(batch, len(self._specs)):
            columns = [
                self._conform(part.column(index), spec) for index, spec in enumerate(self._specs)
            ]
            conformed = pa.RecordBatch.from_arrays(columns, schema=self._schema)
            self._pending.append(conformed)
            self._pending_rows += conformed.num_rows
            self._pending_bytes += conformed.get_total_buffer_size()
            if self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_BYTES:
                self._flush_rows()
        return self._sink.take()

    def _flush_rows(self) -> None:
        if not self._pending:
            return
        assert self._writer is not None, "begin() must come first"
        table = pa.Table.from_batches(self._pending, schema=self._schema)
        self._pending = []
        self._pending_rows = self._pending_bytes = 0
        self._writer.write_table(table, row_group_size=table.num_rows)

    def metadata_votable(
        self, *, overflow: bool = False, infos_after: Sequence[Info] = ()
    ) -> bytes:
        """The DATA-less VOTable stored in the footer."""
        head = votable_head(
            self._fields, infos=self._infos, table_name=self._table_name, data_open=""
        )
        return head + votable_tail(
            data_close="",
            overflow=overflow,
            infos_after=infos_after,
            resource_meta=self._resource_meta,
        )

    def end(self, *, overflow: bool = False, infos_after: Sequence[Info] = ()) -> bytes:
        if self._writer is None:
            self.begin()
        assert self._writer is not None
        self._flush_rows()
        content = self.metadata_votable(overflow=overflow, infos_after=infos_after)
        self._writer.add_key_value_metadata(
            {VERSION_KEY: VOPARQUET_VERSION, CONTENT_KEY: content.decode("utf-8")}
        )
        self._writer.close()
        return self._sink.take()
