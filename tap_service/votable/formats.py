"""RESPONSEFORMAT names, the writer protocol, and the one factory the service calls.

DALI/TAP values are matched case-insensitively, with MIME parameters parsed (``;header=present``,
``;serialization=TABLEDATA``).  VOTable responses carry the ``serialization`` parameter that the
VOTable standard (section "MIME Type") defines, so a client knows what it got without parsing
the document; clients that compare only the type/subtype (pyvo, STILTS) read past it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from tap_service.votable.binary import BinaryWriter
from tap_service.votable.columns import column_spec
from tap_service.votable.delimited import DelimitedWriter
from tap_service.votable.document import Info
from tap_service.votable.fields import Field
from tap_service.votable.parquet import PARQUET_MIME, ParquetWriter
from tap_service.votable.tabledata import TableDataWriter

VOTABLE_MIME = "application/x-votable+xml"
TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"


class ResultWriter(Protocol):
    """Turns a stream of Arrow batches into one document; each call returns the next bytes."""

    media_type: str

    def begin(self) -> bytes: ...

    def write_batch(self, batch: pa.RecordBatch) -> bytes: ...

    def end(self, *, overflow: bool = False, infos_after: Sequence[Info] = ()) -> bytes: ...


@dataclass(frozen=True)
class FormatInfo:
    """One output format as advertised in /capabilities (TAPRegExt outputFormat)."""

    mime: str  # what the service answers with, and accepts as RESPONSEFORMAT
    aliases: tuple[str, ...]  # other accepted RESPONSEFORMAT values (case-insensitive)
    serialization: str | None  # VOTable serialization, None for non-VOTable formats
    description: str
    ivo_id: str | None = None  # TAPRegExt standard key, where one exists


_FORMATS: tuple[FormatInfo, ...] = (
    FormatInfo(
        f"{VOTABLE_MIME};serialization=BINARY2",
        ("votable", VOTABLE_MIME, "text/xml", "votable/b2"),
        "BINARY2",
        "VOTable 1.4, BINARY2 serialization (the default)",
        f"{TAPREGEXT}#output-votable-binary2",
    ),
    FormatInfo(
        f"{VOTABLE_MIME};serialization=TABLEDATA",
        ("votable/td",),
        "TABLEDATA",
        "VOTable 1.4, TABLEDATA (XML) serialization",
        f"{TAPREGEXT}#output-votable-td",
    ),
    FormatInfo(
        f"{VOTABLE_MIME};serialization=BINARY",
        ("votable/b",),
        "BINARY",
        "VOTable 1.4, BINARY serialization (NULLs as in-band values, see VALUES null)",
        f"{TAPREGEXT}#output-votable-binary",
    ),
    FormatInfo("text/csv;header=present", ("csv", "text/csv"), None, "CSV (RFC 4180) with header"),
    FormatInfo(
        "text/tab-separated-values",
        ("tsv",),
        None,
        "Tab-separated values with header; \\t \\n \\r \\\\ escaped",
    ),
    FormatInfo(
        PARQUET_MIME,
        ("parquet",),
        None,
        "VOParquet: Parquet with the VOTable metadata in the footer (IVOA VOParquet 1.0 Note)",
    ),
)


class UnknownFormatError(ValueError):
    """RESPONSEFORMAT names no format this service writes (DALI: a UsageFault)."""

    def __init__(self, response_format: str, accepted: Sequence[str]) -> None:
        self.response_format = response_format
        self.accepted = list(accepted)
        super().__init__(
            f"unsupported RESPONSEFORMAT {response_format!r}; accepted: {', '.join(self.accepted)}"
        )


def supported_formats() -> list[FormatInfo]:
    return list(_FORMATS)


def accepted_format_names() -> list[str]:
    names: list[str] = []
    for fmt in _FORMATS:
        names.append(fmt.mime)
        names.extend(fmt.aliases)
    return names


def _parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    base, *params = value.split(";")
    parsed: dict[str, str] = {}
    for param in params:
        key, sep, val = param.partition("=")
        if not sep:
            continue
        parsed[key.strip().lower()] = val.strip().strip('"').strip().lower()
    return base.strip().lower(), parsed


@dataclass(frozen=True)
class _Choice:
    kind: str  # BINARY2, TABLEDATA, BINARY, CSV, TSV, PARQUET
    header: bool = True


_VOTABLE_BASES = {"votable", VOTABLE_MIME, "text/xml", "application/xml", "application/x-votable"}
_SHORT_FORMS = {
    "votable/b2": "BINARY2",
    "votable/td": "TABLEDATA",
    "votable/b": "BINARY",
}


def resolve_format(response_format: str | None) -> _Choice:
    """Map a RESPONSEFORMAT value to a serialization; raise UnknownFormatError otherwise."""
    if response_format is None or not response_format.strip():
        return _Choice("BINARY2")
    base, params = _parse_media_type(response_format)
    if base in _SHORT_FORMS and not params:
        return _Choice(_SHORT_FORMS[base])
    if base in _VOTABLE_BASES:
        serialization = params.get("serialization", "binary2").upper()
        if serialization in ("BINARY2", "TABLEDATA", "BINARY"):
            return _Choice(serialization)
    elif base in ("csv", "text/csv"):
        header = params.get("header", "present")
        if header in ("present", "absent"):
            return _Choice("CSV", header=header == "present")
    elif base in ("tsv", "text/tab-separated-values"):
        return _Choice("TSV")
    elif base in ("parquet", PARQUET_MIME, "application/x-parquet", "application/parquet"):
        return _Choice("PARQUET")
    raise UnknownFormatError(response_format, accepted_format_names())


def make_writer(
    response_format: str | None,
    fields: Sequence[Field],
    *,
    infos: Sequence[Info] = (),
    resource_meta: bytes = b"",
    table_name: str | None = None,
) -> ResultWriter:
    """A fresh writer for one response; raises UnknownFormatError or FieldError (bad Field)."""
    choice = resolve_format(response_format)
    specs = [column_spec(field) for field in fields]
    if choice.kind in ("BINARY2", "BINARY"):
        return BinaryWriter(
            fields,
            specs,
            version=2 if choice.kind == "BINARY2" else 1,
            media_type=f"{VOTABLE_MIME};serialization={choice.kind}",
            infos=infos,
            resource_meta=resource_meta,
            table_name=table_name,
        )
    if choice.kind == "TABLEDATA":
        return TableDataWriter(
            fields,
            specs,
            media_type=f"{VOTABLE_MIME};serialization=TABLEDATA",
            infos=infos,
            resource_meta=resource_meta,
            table_name=table_name,
        )
    if choice.kind == "PARQUET":
        return ParquetWriter(
            fields, specs, infos=infos, resource_meta=resource_meta, table_name=table_name
        )
    if choice.kind == "CSV":
        media_type = "text/csv;header=present" if choice.header else "text/csv;header=absent"
        return DelimitedWriter(
            fields, specs, tab=False, header=choice.header, media_type=media_type
        )
    return DelimitedWriter(
        fields, specs, tab=True, header=True, media_type="text/tab-separated-values"
    )
