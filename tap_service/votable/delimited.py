"""CSV (RFC 4180) and TSV results, rendered column by column with Arrow string kernels.

Choices a client cannot read from the output itself:

* NULL is an empty field; an empty string is written ``""`` in CSV so the two stay distinct
  (TSV cannot distinguish them).
* Booleans are ``true``/``false``; floats use the shortest text that reads back exactly, with
  ``NaN``, ``+Inf``, ``-Inf``; 64-bit integers are printed exactly.
* Arrays (DALI point, circle, polygon) are their numbers separated by single spaces, so a CSV
  field never needs quoting for them.
* CSV lines end with CRLF as RFC 4180 says; quoting only where needed (comma, quote, CR, LF).
* TSV has no quoting: backslash, tab, newline and carriage return inside values are written
  ``\\\\``, ``\\t``, ``\\n``, ``\\r``.
* Strings are written in full: the declared arraysize is VOTable metadata, not carried here.
* A query that fails after rows have been sent ends with one more line: a single field
  starting ``QUERY_STATUS=ERROR:`` followed by the message (``ERROR_MARKER``; quoted or
  escaped like any value).  Readers that check field counts reject the document, others
  (astropy) read a last row whose first column holds the marker; people and scripts find the
  reason on the last line.  ``OVERFLOW`` (MAXREC reached) is not marked, as a
  marker would read as a data row: a result with exactly MAXREC rows may have been cut.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from tap_service.votable.columns import (
    BOOLEAN_WORDS,
    EMPTY,
    ColumnSpec,
    RowJoiner,
    batch_slices,
    conform,
    string_buffer,
    text,
)
from tap_service.votable.document import Info
from tap_service.votable.fields import Field

ERROR_MARKER = "QUERY_STATUS=ERROR:"
_QUOTE = pa.scalar('"')
_CSV_SPECIAL = re.compile(r'[,"\r\n]')
_TSV_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


def csv_quote(value: str) -> str:
    if value == "" or _CSV_SPECIAL.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def tsv_escape(value: str) -> str:
    for raw, escaped in _TSV_ESCAPES:
        value = value.replace(raw, escaped)
    return value


def _csv_strings(values: pa.Array) -> pa.Array:
    needs = pc.or_(pc.match_substring_regex(values, '[,"\r\n]'), pc.equal(values, EMPTY))
    if not pc.any(needs).as_py():
        return values
    doubled = pc.replace_substring(values, '"', '""')
    quoted = pc.binary_join_element_wise(_QUOTE, doubled, _QUOTE, EMPTY)
    return pc.if_else(needs, quoted, values)


def _tsv_strings(values: pa.Array) -> pa.Array:
    if not pc.any(pc.match_substring_regex(values, "[\\\\\t\n\r]")).as_py():
        return values
    for raw, escaped in _TSV_ESCAPES:
        values = pc.replace_substring(values, raw, escaped)
    return values


class DelimitedWriter:
    """Streams a TAP result as CSV or TSV; ``end`` adds the error marker line, if any."""

    def __init__(
        self,
        fields: Sequence[Field],
        specs: Sequence[ColumnSpec],
        *,
        tab: bool,
        header: bool,
        media_type: str,
    ) -> None:
        self.media_type = media_type
        self._fields = list(fields)
        self._specs = list(specs)
        self._tab = tab
        self._header = header
        self._separator = "\t" if tab else ","
        self._newline = "\n" if tab else "\r\n"
        self._joiner = RowJoiner()

    def begin(self) -> bytes:
        if not self._header:
            return b""
        quote = tsv_escape if self._tab else csv_quote
        names = self._separator.join(quote(field.name) for field in self._fields)
        return (names + self._newline).encode("utf-8")

    def _column(self, column: pa.Array, spec: ColumnSpec) -> pa.Array:
        values = text(column, spec, booleans=BOOLEAN_WORDS)
        if spec.kind in ("char", "unicodeChar"):
            values = _tsv_strings(values) if self._tab else _csv_strings(values)
        return values.fill_null(EMPTY) if values.null_count else values

    def write_batch(self, batch: pa.RecordBatch) -> bytes:
        out = []
        for part in batch_slices(batch, len(self._specs)):
            if not self._specs:
                out.append(self._newline.encode() * part.num_rows)
                continue
            parts: list[pa.Array | str] = []
            for index, spec in enumerate(self._specs):
                if index:
                    parts.append(self._separator)
                parts.append(self._column(conform(part.column(index), spec), spec))
            parts.append(self._newline)
            out.append(bytes(string_buffer(self._joiner.join(parts))))
        return b"".join(out)

    def end(self, *, overflow: bool = False, infos_after: Sequence[Info] = ()) -> bytes:
        errors = [
            info for info in infos_after if info.name == "QUERY_STATUS" and info.value == "ERROR"
        ]
        if not errors:
            return b""
        message = " ".join((errors[0].content or "the query failed").split())
        marker = f"{ERROR_MARKER} {message}"
        line = tsv_escape(marker) if self._tab else csv_quote(marker)
        return (line + self._newline).encode("utf-8")
