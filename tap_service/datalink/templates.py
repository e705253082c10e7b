"""DataLink service descriptors from a directory in Rubin's sdm_schemas format, read unchanged.

The directory holds ``datalink-manifest.json`` (descriptor name -> the column keys it needs,
each ``schema_table_column``), one ``NAME.xml`` VOTable template per descriptor with
``$baseUrl$`` and ``$schema_table_column$`` placeholders, and optionally ``columns-minimal.yaml``
(the "minimal" column sets per table).  A template's ``RESOURCE type="meta"`` elements are the
descriptor; anything else in it (the placeholder INFO) is dropped.  A result that holds every
column a descriptor needs gets those FIELDs an ID equal to the column key and the filled
RESOURCE appended after the results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import yaml

MANIFEST = "datalink-manifest.json"
MINIMAL = "columns-minimal.yaml"

_RESOURCE = re.compile(r"<RESOURCE\b[^>]*>.*?</RESOURCE>", re.DOTALL)
_PLACEHOLDER = re.compile(r"\$([A-Za-z0-9_]+)\$")
_XML_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class DatalinkConfigError(ValueError):
    """The DataLink directory is missing or malformed (an operator's mistake, found at start)."""


def column_key(schema: str, table: str, column: str) -> str:
    """Rubin's key for a column: ``dp02_dc2_catalogs_Object_objectId``."""
    return f"{schema}_{table}_{column}"


@dataclass(frozen=True)
class Descriptor:
    """One template: the column keys it needs and its RESOURCE text with placeholders."""

    name: str
    columns: tuple[str, ...]
    resource: str

    def fill(self, base_url: str, ids: Mapping[str, str]) -> str:
        """The RESOURCE with ``$baseUrl$`` and every ``$key$`` replaced (ids: key -> FIELD ID)."""

        def replace(match: re.Match[str]) -> str:
            key = match.group(1)
            if key == "baseUrl":
                return _escape_attr(base_url.rstrip("/"))
            return _escape_attr(ids.get(key, key))

        return _PLACEHOLDER.sub(replace, self.resource)

    def fill_values(self, base_url: str, values: Mapping[str, str], resource_id: str) -> str:
        """The RESOURCE for one known row: PARAMs that ``ref`` a column key get its value
        instead (a ``{links}`` response has no such FIELD), and the RESOURCE gets an ID that
        ``service_def`` can name."""
        text = self.resource
        for key, value in values.items():
            tag = re.compile(r"<PARAM\b[^>]*\bref=\"\$" + re.escape(key) + r"\$\"[^>]*>")

            def fixed(match: re.Match[str], value: str = value) -> str:
                element = re.sub(r'\s+ref="[^"]*"', "", match.group(0))
                escaped = _escape_attr(value)
                if re.search(r'\bvalue="[^"]*"', element):
                    return re.sub(r'\bvalue="[^"]*"', f'value="{escaped}"', element)
                return element.replace("<PARAM", f'<PARAM value="{escaped}"', 1)

            text = tag.sub(fixed, text)
        text = text.replace("<RESOURCE", f'<RESOURCE ID="{_escape_attr(resource_id)}"', 1)
        return Descriptor(self.name, self.columns, text).fill(base_url, {})

    def param_defaults(self) -> dict[str, str]:
        """Name -> value of the template's PARAMs without placeholders (e.g. table, band)."""
        result: dict[str, str] = {}
        for match in re.finditer(r"<PARAM\b[^>]*>", self.resource):
            tag = match.group(0)
            name = re.search(r'\bname="([^"]*)"', tag)
            value = re.search(r'\bvalue="([^"]*)"', tag)
            if name and value and "$" not in value.group(1) and "ref=" not in tag:
                result[name.group(1)] = value.group(1)
        return result


@dataclass(frozen=True)
class DatalinkTemplates:
    """Every descriptor of one directory, plus the minimal column sets."""

    descriptors: tuple[Descriptor, ...]
    minimal_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def needed_keys(self) -> frozenset[str]:
        return frozenset(key for d in self.descriptors for key in d.columns)

    def applicable(self, keys: Iterable[str]) -> list[Descriptor]:
        """Descriptors whose needed columns are all among ``keys``."""
        present = set(keys)
        return [d for d in self.descriptors if d.columns and set(d.columns) <= present]

    def resource_meta(self, base_url: str, ids: Mapping[str, str]) -> bytes:
        """The filled RESOURCE elements for a result whose FIELD IDs are ``ids`` (key -> ID)."""
        parts = [d.fill(base_url, ids) + "\n" for d in self.applicable(ids)]
        return "".join(parts).encode("utf-8")

    def descriptor(self, name: str) -> Descriptor | None:
        for d in self.descriptors:
            if d.name == name:
                return d
        return None


def _escape_attr(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def load_templates(directory: Path) -> DatalinkTemplates:
    """Read a Rubin-format DataLink directory; raises DatalinkConfigError when it is unusable."""
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatalinkConfigError(f"cannot read {manifest_path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatalinkConfigError(f"{manifest_path} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise DatalinkConfigError(f"{manifest_path} must map descriptor names to column lists")
    descriptors = []
    for name, columns in manifest.items():
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise DatalinkConfigError(f"{manifest_path}: {name} must list column keys")
        for key in columns:
            if not _XML_ID.match(key):
                raise DatalinkConfigError(f"{manifest_path}: {key!r} cannot be a FIELD ID")
        path = directory / f"{name}.xml"
        if not path.exists():
            continue  # Rubin's manifest names descriptors of other releases too
        text = path.read_text(encoding="utf-8")
        try:
            ElementTree.fromstring(text)  # noqa: S314 - an operator's file, not a request
        except ElementTree.ParseError as exc:
            raise DatalinkConfigError(f"{path} is not well-formed XML: {exc}") from exc
        resources = _RESOURCE.findall(text)
        if not resources:
            raise DatalinkConfigError(f"{path} holds no RESOURCE element")
        descriptors.append(Descriptor(name, tuple(columns), "\n".join(resources)))
    return DatalinkTemplates(tuple(descriptors), _load_minimal(directory / MINIMAL))


def _load_minimal(path: Path) -> dict[str, tuple[str, ...]]:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    tables = data.get("tables") if isinstance(data, dict) else None
    result: dict[str, tuple[str, ...]] = {}
    if isinstance(tables, dict):
        for table, entry in tables.items():
            columns = entry.get("lsst:minimal") if isinstance(entry, dict) else None
            result[str(table)] = tuple(str(c) for c in columns or ())
    return result
