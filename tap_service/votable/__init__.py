"""Streaming TAP result documents: VOTable BINARY2/BINARY/TABLEDATA, CSV, TSV, VOParquet,
DALI errors.

Pure library (numpy and pyarrow only): the service hands Arrow record batches in, bytes come out,
and memory stays bounded by the batch whatever the row count.

Choices a client may notice (details in each module):

* VOTable 1.4 (namespace ``http://www.ivoa.net/xml/VOTable/v1.3``, which 1.4 kept); results in
  ``RESOURCE type="results"``, ``QUERY_STATUS=OK`` before the table, ``OVERFLOW`` after it.
* Media types carry the VOTable ``serialization`` parameter
  (``application/x-votable+xml;serialization=BINARY2``); CSV is ``text/csv;header=present``.
* The Field's datatype wins over the Arrow type; 64-bit integers never pass through a float.
* BINARY2 flags NULLs in its per-row mask.  BINARY (v1) has no mask: NULL integers take the
  value declared in ``VALUES null`` (the type's minimum; 255 for unsignedByte), floats NaN,
  booleans ``?``, strings empty — so a real value equal to the NULL value reads back as NULL.
* ``char`` is 7-bit ASCII in binary serializations (non-ASCII becomes ``?``, as readers such as
  astropy decode ASCII); text with other characters should be declared ``unicodeChar``
  (UTF-16BE).  TABLEDATA and CSV keep every character.
* Timestamps are ISO 8601 ``YYYY-MM-DDTHH:MM:SS.sss`` (UTC, milliseconds), dates ``YYYY-MM-DD``.
* Arrays (DALI point/circle/polygon) are space-separated numbers in TABLEDATA and CSV.
* A failure after rows have left ends VOTables with a trailing ``QUERY_STATUS=ERROR`` INFO,
  VOParquet with that INFO in its footer VOTable, CSV/TSV with a ``QUERY_STATUS=ERROR:`` line.
"""

from tap_service.votable.columns import FieldError
from tap_service.votable.document import Info, error_document
from tap_service.votable.fields import Field
from tap_service.votable.formats import (
    FormatInfo,
    ResultWriter,
    UnknownFormatError,
    make_writer,
    resolve_format,
    supported_formats,
)

__all__ = [
    "Field",
    "FieldError",
    "FormatInfo",
    "Info",
    "ResultWriter",
    "UnknownFormatError",
    "error_document",
    "make_writer",
    "resolve_format",
    "supported_formats",
]
