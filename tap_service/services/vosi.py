"""VOSI documents: availability, capabilities (with TAPRegExt) and tables.

The capabilities document is derived from what the running service really does: the output
formats from the writer registry, the ADQL features of the configured backend's dialect, the
user-defined functions from configuration, the limits from configuration.  Declaring a feature
the backend refuses would send clients (TOPCAT's ADQL editor, taplint) down a dead end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from tap_service.adql.catalog import ColumnInfo, TableInfo
from tap_service.adql.names import adql_name
from tap_service.config import Config
from tap_service.services.tapschema import ForeignKey, SchemaEntry, TapSchemaModel
from tap_service.votable import supported_formats

TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"

GEOMETRY_FUNCTIONS = (
    "POINT", "CIRCLE", "BOX", "POLYGON", "CENTROID", "AREA", "COORD1", "COORD2",
    "COORDSYS", "CONTAINS", "INTERSECTS", "DISTANCE",
)  # fmt: skip

# ADQL 2.1 optional features by TAPRegExt type, and the backends able to run them.  Qserv has
# no subqueries, set operations, WITH, OFFSET or CAST (see the Qserv dialect's refusals).
ADQL21_FEATURES: tuple[tuple[str, tuple[str, ...], frozenset[str]], ...] = (
    ("features-adql-string", ("LOWER", "UPPER", "ILIKE"), frozenset({"embedded", "qserv"})),
    ("features-adql-conditional", ("COALESCE",), frozenset({"embedded", "qserv"})),
    ("features-adql-sets", ("UNION", "EXCEPT", "INTERSECT"), frozenset({"embedded"})),
    ("features-adql-common-table", ("WITH",), frozenset({"embedded"})),
    ("features-adql-type", ("CAST",), frozenset({"embedded"})),
    ("features-adql-unit", ("IN_UNIT",), frozenset({"embedded", "qserv"})),
    ("features-adql-offset", ("OFFSET",), frozenset({"embedded"})),
)


@dataclass(frozen=True, kw_only=True)
class Availability:
    available: bool
    note: str
    up_since: datetime | None = None


def availability_document(state: Availability) -> str:
    up = ""
    if state.up_since is not None:
        stamp = state.up_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        up = f"\n  <vosi:upSince>{stamp}</vosi:upSince>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">\n'
        f"  <vosi:available>{'true' if state.available else 'false'}</vosi:available>{up}\n"
        f"  <vosi:note>{escape(state.note)}</vosi:note>\n"
        "</vosi:availability>\n"
    )


# IVOA SSO security method identifiers (an interface without one is anonymous).
SSO_TOKEN = "ivo://ivoa.net/sso#token"  # noqa: S105 - an identifier, not a secret
SSO_BASIC = "ivo://ivoa.net/sso#BasicAA"


def security_methods(config: Config, endpoint: str) -> list[str | None]:
    """The security methods an endpoint accepts, one interface each; None is anonymous.

    tokens and trusted-header modes both take a token as Bearer or as the Basic password (in
    trusted-header mode the ingress checks it); endpoints listed in auth.anonymous_endpoints
    stay anonymous.
    """
    if config.auth.mode == "none" or endpoint in config.auth.anonymous_endpoints:
        return [None]
    return [SSO_TOKEN, SSO_BASIC]


def _interfaces(methods: Sequence[str | None], url: str, use: str, version: str = "") -> str:
    parts = []
    for method in methods:
        security = f"      <securityMethod standardID={quoteattr(method)}/>\n" if method else ""
        parts.append(
            f'    <interface xsi:type="vs:ParamHTTP" role="std"{version}>\n'
            f'      <accessURL use="{use}">{escape(url)}</accessURL>\n'
            f"{security}"
            "    </interface>\n"
        )
    return "".join(parts)


def _vosi_capability(standard_id: str, url: str, methods: Sequence[str | None] = (None,)) -> str:
    return (
        f"  <capability standardID={quoteattr(standard_id)}>\n"
        + _interfaces(methods, url, "full")
        + "  </capability>\n"
    )


def _features(kind: str, forms: Iterable[tuple[str, str | None]]) -> str:
    parts = [f'      <languageFeatures type="{TAPREGEXT}#{kind}">\n']
    for form, description in forms:
        parts.append(f"        <feature><form>{escape(form)}</form>")
        if description:
            parts.append(f"<description>{escape(description)}</description>")
        parts.append("</feature>\n")
    parts.append("      </languageFeatures>\n")
    return "".join(parts)


def capabilities_document(
    config: Config, base_url: str, *, data_models: Sequence[tuple[str, str]] = ()
) -> str:
    """``data_models``: (ivo-id, name) of the data models the tables realise.

    ObsCore 1.1 is among them only for a conforming ivoa.ObsCore (``services.obscore``).
    """
    dialect = config.backend
    language = [
        "    <language>\n      <name>ADQL</name>\n",
        '      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>\n',
        '      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>\n',
        "      <description>ADQL 2.1 (ADQL 2.0 queries are accepted too)</description>\n",
    ]
    if config.user_functions:
        language.append(
            _features(
                "features-udf",
                ((udf.signature, udf.description) for udf in config.user_functions),
            )
        )
    language.append(_features("features-adqlgeo", ((f, None) for f in GEOMETRY_FUNCTIONS)))
    for kind, forms, backends in ADQL21_FEATURES:
        if dialect in backends:
            language.append(_features(kind, ((f, None) for f in forms)))
    language.append("    </language>\n")

    formats = []
    for fmt in supported_formats():
        ivo_id = f' ivo-id="{fmt.ivo_id}"' if fmt.ivo_id else ""
        aliases = "".join(f"<alias>{escape(a)}</alias>" for a in fmt.aliases)
        formats.append(
            f"    <outputFormat{ivo_id}><mime>{escape(fmt.mime)}</mime>{aliases}</outputFormat>\n"
        )

    uploads = ""
    upload_limit = ""
    if config.upload.enabled and config.backend != "qserv":
        uploads = "".join(
            f'    <uploadMethod ivo-id="{TAPREGEXT}#upload-{kind}"/>\n'
            for kind in ("inline", "http", "https")
        )
        limit = config.upload.max_bytes
        upload_limit = (
            f'    <uploadLimit><default unit="byte">{limit}</default>'
            f'<hard unit="byte">{limit}</hard></uploadLimit>\n'
        )
    timeout = int(config.sync_timeout_seconds)
    tap = (
        '  <capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">\n'
        + _interfaces(security_methods(config, "sync"), base_url, "base", ' version="1.1"')
        + "".join(
            f"    <dataModel ivo-id={quoteattr(ivo_id)}>{escape(name)}</dataModel>\n"
            for ivo_id, name in data_models
        )
        + "".join(language)
        + "".join(formats)
        + uploads
        + f"    <executionDuration><default>{timeout}</default><hard>{timeout}</hard>"
        "</executionDuration>\n"
        f'    <outputLimit><default unit="row">{config.maxrec_default}</default>'
        f'<hard unit="row">{config.maxrec_limit}</hard></outputLimit>\n'
        + upload_limit
        + "  </capability>\n"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<vosi:capabilities"
        ' xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
        ' xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">\n'
        + tap
        + "".join(
            _vosi_capability(standard_id, f"{base_url}/{name}", security_methods(config, name))
            for standard_id, name in (
                ("ivo://ivoa.net/std/VOSI#capabilities", "capabilities"),
                ("ivo://ivoa.net/std/VOSI#availability", "availability"),
                ("ivo://ivoa.net/std/VOSI#tables-1.1", "tables"),
                ("ivo://ivoa.net/std/DALI#examples", "examples"),
            )
        )
        + "</vosi:capabilities>\n"
    )


def _opt(tag: str, value: str | None, indent: str) -> str:
    return f"{indent}<{tag}>{escape(value)}</{tag}>\n" if value else ""


def _column_xml(column: ColumnInfo, indent: str) -> str:
    arraysize = f" arraysize={quoteattr(column.arraysize)}" if column.arraysize else ""
    xtype = f" extendedType={quoteattr(column.xtype)}" if column.xtype else ""
    parts = [
        f"{indent}<column>\n",
        f"{indent}  <name>{escape(adql_name(column.name))}</name>\n",
        _opt("description", column.description, indent + "  "),
        _opt("unit", column.unit, indent + "  "),
        _opt("ucd", column.ucd, indent + "  "),
        _opt("utype", column.utype, indent + "  "),
    ]
    if column.datatype:
        parts.append(
            f'{indent}  <dataType xsi:type="vs:VOTableType"{arraysize}{xtype}>'
            f"{escape(column.datatype)}</dataType>\n"
        )
    if column.indexed:
        parts.append(f"{indent}  <flag>indexed</flag>\n")
    if column.principal:
        parts.append(f"{indent}  <flag>principal</flag>\n")
    if column.std:
        parts.append(f"{indent}  <flag>std</flag>\n")
    parts.append(f"{indent}</column>\n")
    return "".join(parts)


def _foreign_key_xml(key: ForeignKey, indent: str) -> str:
    parts = [
        f"{indent}<foreignKey>\n",
        f"{indent}  <targetTable>{escape(key.target_table)}</targetTable>\n",
    ]
    for from_column, target_column in key.columns:
        parts.append(
            f"{indent}  <fkColumn><fromColumn>{escape(from_column)}</fromColumn>"
            f"<targetColumn>{escape(target_column)}</targetColumn></fkColumn>\n"
        )
    parts.append(_opt("description", key.description, indent + "  "))
    parts.append(_opt("utype", key.utype, indent + "  "))
    parts.append(f"{indent}</foreignKey>\n")
    return "".join(parts)


def _table_xml(model: TapSchemaModel, table: TableInfo, indent: str, *, detail: bool) -> str:
    parts = [
        f"{indent}<table type={quoteattr(table.table_type or 'table')}>\n",
        f"{indent}  <name>{escape(table.qualified_name)}</name>\n",
        _opt("description", table.description, indent + "  "),
        _opt("utype", table.utype, indent + "  "),
    ]
    if detail:
        parts.extend(_column_xml(c, indent + "  ") for c in table.columns)
        parts.extend(_foreign_key_xml(k, indent + "  ") for k in model.keys_from(table))
    parts.append(f"{indent}</table>\n")
    return "".join(parts)


_TABLESET_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<vosi:tableset"
    ' xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0"'
    ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
)


def tableset_document(model: TapSchemaModel, *, detail: bool = True) -> str:
    """VOSI 1.1 tableset; ``detail=False`` (``detail=min``) leaves out columns and keys."""
    parts = [_TABLESET_OPEN]
    for schema in model.schemas:
        parts.append(_schema_xml(model, schema, detail=detail))
    parts.append("</vosi:tableset>\n")
    return "".join(parts)


def _schema_xml(model: TapSchemaModel, schema: SchemaEntry, *, detail: bool) -> str:
    parts = ["  <schema>\n", f"    <name>{escape(schema.name)}</name>\n"]
    parts.append(_opt("description", schema.description, "    "))
    parts.append(_opt("utype", schema.utype, "    "))
    parts.extend(_table_xml(model, t, "    ", detail=detail) for t in schema.tables)
    parts.append("  </schema>\n")
    return "".join(parts)


def table_document(model: TapSchemaModel, table: TableInfo) -> str:
    """VOSI 1.1 single-table document for ``/tables/{name}``."""
    body = _table_xml(model, table, "", detail=True)
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:table xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0"'
        ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    )
    # Replace the generic opening tag with the namespaced root element.
    first_line, rest = body.split("\n", 1)
    attrs = first_line[len("<table") : -1]
    return head + attrs + ">\n" + rest.replace("</table>\n", "</vosi:table>\n")
