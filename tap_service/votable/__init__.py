"""Streaming TAP result documents: VOTable BINARY2/BINARY/TABLEDATA, CSV, TSV, DALI errors.

Pure library (numpy and pyarrow only): the service hands Arrow record batches in, bytes come out.
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
