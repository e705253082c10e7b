"""The XML around the rows: VOTable head and tail, INFO elements, DALI error documents.

Everything here is built once per response, so plain string formatting is fine; the
per-row work lives in the serialization modules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tap_service.votable.fields import Field

VOTABLE_VERSION = "1.4"
# VOTable 1.4 kept the 1.3 namespace on purpose (the schema change was backward compatible).
VOTABLE_NAMESPACE = "http://www.ivoa.net/xml/VOTable/v1.3"
VOTABLE_SCHEMA_LOCATION = "http://www.ivoa.net/xml/VOTable/votable-1.4.xsd"

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
VOTABLE_OPEN = (
    f'<VOTABLE version="{VOTABLE_VERSION}" xmlns="{VOTABLE_NAMESPACE}"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    f' xsi:schemaLocation="{VOTABLE_NAMESPACE} {VOTABLE_SCHEMA_LOCATION}">\n'
)

# Characters XML 1.0 cannot carry even as character references.  Replacing them (rather than
# dropping them) keeps the loss visible to whoever reads the value.
ILLEGAL_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
ILLEGAL_XML_REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class Info:
    """A VOTable INFO element (query text, QUERY_STATUS, provenance...)."""

    name: str
    value: str
    content: str | None = None


def xml_text(text: str) -> str:
    """Escape element content, replacing characters no XML 1.0 document may contain."""
    text = ILLEGAL_XML_CHARS.sub(ILLEGAL_XML_REPLACEMENT, text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xml_attr(text: str) -> str:
    """Escape an attribute value; whitespace controls become references so parsers keep them.

    Attribute-value normalisation would otherwise turn a newline in, say, the query text of an
    INFO into a space.
    """
    return (
        xml_text(text)
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )


def _attrs(pairs: Iterable[tuple[str, str | None]]) -> str:
    return "".join(f' {key}="{xml_attr(value)}"' for key, value in pairs if value is not None)


def info_element(info: Info, indent: str = "") -> str:
    attrs = _attrs((("name", info.name), ("value", info.value)))
    if info.content is None:
        return f"{indent}<INFO{attrs}/>\n"
    return f"{indent}<INFO{attrs}>{xml_text(info.content)}</INFO>\n"


def field_element(field: Field, null_value: str | None = None) -> str:
    """Render one FIELD; ``null_value`` declares the in-band NULL used by BINARY (v1)."""
    attrs = _attrs(
        (
            ("name", field.name),
            ("ID", field.id),
            ("datatype", field.datatype),
            ("arraysize", field.arraysize),
            ("xtype", field.xtype),
            ("unit", field.unit),
            ("ucd", field.ucd),
            ("utype", field.utype),
        )
    )
    children = []
    if field.description is not None:
        children.append(f"<DESCRIPTION>{xml_text(field.description)}</DESCRIPTION>")
    if null_value is not None:
        children.append(f'<VALUES null="{xml_attr(null_value)}"/>')
    if not children:
        return f"<FIELD{attrs}/>\n"
    return f"<FIELD{attrs}>{''.join(children)}</FIELD>\n"


def votable_head(
    fields: Sequence[Field],
    *,
    infos: Sequence[Info],
    table_name: str | None,
    data_open: str,
    null_values: Sequence[str | None] | None = None,
) -> bytes:
    """Everything from the XML declaration to the opening tags of the serialization."""
    parts = [XML_DECLARATION, VOTABLE_OPEN, '<RESOURCE type="results">\n']
    parts.append(info_element(Info("QUERY_STATUS", "OK")))
    parts.extend(info_element(info) for info in infos)
    parts.append(f"<TABLE{_attrs((('name', table_name),))}>\n")
    for index, field in enumerate(fields):
        parts.append(field_element(field, null_values[index] if null_values else None))
    parts.append(data_open)
    return "".join(parts).encode("utf-8")


def votable_tail(
    *,
    data_close: str,
    overflow: bool,
    infos_after: Sequence[Info],
    resource_meta: bytes,
) -> bytes:
    """Close the table; DALI puts the OVERFLOW status after the TABLE, inside the RESOURCE."""
    parts = [data_close, "</TABLE>\n"]
    if overflow:
        parts.append(info_element(Info("QUERY_STATUS", "OVERFLOW")))
    parts.extend(info_element(info) for info in infos_after)
    parts.append("</RESOURCE>\n")
    head = "".join(parts).encode("utf-8")
    return head + resource_meta + b"</VOTABLE>\n"


def error_document(message: str, *, infos: Sequence[Info] = ()) -> bytes:
    """A DALI error VOTable: the message is the content of the QUERY_STATUS=ERROR INFO."""
    parts = [XML_DECLARATION, VOTABLE_OPEN, '<RESOURCE type="results">\n']
    parts.append(info_element(Info("QUERY_STATUS", "ERROR", message)))
    parts.extend(info_element(info) for info in infos)
    parts.append("</RESOURCE>\n</VOTABLE>\n")
    return "".join(parts).encode("utf-8")
