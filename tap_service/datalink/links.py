"""DataLink 1.1 ``{links}`` documents: one row per link, or one error row per failed ID.

The table has the columns DataLink 1.1 requires, in its order, with its UCDs; service
descriptors (``RESOURCE type="meta" utype="adhoc:service"``) follow the results and are
referenced from ``service_def``.  Rows are written with the shared TABLEDATA writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from tap_service.votable import Field, Info, make_writer

LINKS_MEDIA_TYPE = "application/x-votable+xml;content=datalink"

LINK_FIELDS = (
    Field(name="ID", datatype="char", arraysize="*", ucd="meta.id;meta.main"),
    Field(name="access_url", datatype="char", arraysize="*", ucd="meta.ref.url"),
    Field(name="service_def", datatype="char", arraysize="*", ucd="meta.ref"),
    Field(name="error_message", datatype="char", arraysize="*", ucd="meta.code.error"),
    Field(name="description", datatype="char", arraysize="*", ucd="meta.note"),
    Field(name="semantics", datatype="char", arraysize="*", ucd="meta.code"),
    Field(name="content_type", datatype="char", arraysize="*", ucd="meta.code.mime"),
    Field(name="content_length", datatype="long", unit="byte", ucd="phys.size;meta.file"),
    Field(name="content_qualifier", datatype="char", arraysize="*", ucd="meta.code.class"),
    Field(name="local_semantics", datatype="char", arraysize="*", ucd="meta.code"),
    Field(name="link_auth", datatype="char", arraysize="*", ucd="meta.code"),
    Field(name="link_authorized", datatype="boolean", ucd="meta.code"),
)


@dataclass(frozen=True, kw_only=True)
class LinkRow:
    """One row: exactly one of access_url, service_def, error_message is set."""

    id: str
    semantics: str
    access_url: str | None = None
    service_def: str | None = None
    error_message: str | None = None
    description: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    content_qualifier: str | None = None
    local_semantics: str | None = None
    link_auth: str | None = None
    link_authorized: bool | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.access_url, self.service_def, self.error_message) if v]
        if len(given) != 1:
            raise ValueError("a link has exactly one of access_url, service_def, error_message")


def error_row(id_: str, fault: str, message: str) -> LinkRow:
    """A per-ID error row: ``error_message`` starts with the DALI fault name."""
    return LinkRow(id=id_, semantics="#this", error_message=f"{fault}: {message}")


def links_document(
    rows: Sequence[LinkRow], *, descriptors: bytes = b"", infos: Sequence[Info] = ()
) -> bytes:
    """The whole ``{links}`` VOTable (TABLEDATA), service descriptors after the results."""
    names = [f.name for f in LINK_FIELDS]
    columns: dict[str, pa.Array] = {}
    for name in names:
        values = [getattr(row, "id" if name == "ID" else name) for row in rows]
        if name == "content_length":
            columns[name] = pa.array(values, type=pa.int64())
        elif name == "link_authorized":
            columns[name] = pa.array(values, type=pa.bool_())
        else:
            columns[name] = pa.array(values, type=pa.string())
    writer = make_writer(
        "votable/td",
        LINK_FIELDS,
        infos=[Info(name="standardID", value="ivo://ivoa.net/std/DataLink#links-1.1"), *infos],
        resource_meta=descriptors,
    )
    parts = [writer.begin()]
    if rows:
        parts.append(writer.write_batch(pa.RecordBatch.from_pydict(columns)))
    parts.append(writer.end())
    return b"".join(parts)
