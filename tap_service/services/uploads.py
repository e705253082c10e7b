"""TAP_UPLOAD (TAP 1.1 section 3.3.3, DALI UPLOAD): tables a query brings with it.

``UPLOAD=name,param:part`` names a multipart part of the request holding a VOTable;
``UPLOAD=name,https://...`` a URL the service fetches.  Several uploads are separated by ``;``
or given as repeated UPLOAD parameters.  Each table becomes ``TAP_UPLOAD.name`` for the query:
the checker sees it through an overlay of the catalog, with columns typed from the FIELDs, and
the embedded backend registers its Arrow data on the query's own connection only.

Names reach SQL only in the physical forms chosen here (``tap_upload_<name>``, columns
``c0..cN``), after the table name was checked as a regular ADQL identifier; FIELD names stay
TAP names and are always quoted by the dialect.

Async jobs keep their tables as Parquet beside their results (same store: local directory or
S3), so a Celery worker reads exactly what the API accepted; they go with the job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

import pyarrow as pa

from tap_service.adql.catalog import ColumnInfo, TableInfo
from tap_service.config import Config
from tap_service.exceptions import UploadError, UploadTooLargeError, UsageError
from tap_service.storage import fetch
from tap_service.votable import Field
from tap_service.votable.reader import VOTableReadError, read_votable

UPLOAD_SCHEMA = "TAP_UPLOAD"
PHYSICAL_SCHEMA = "temp"  # DuckDB's connection-local catalog, where registered tables live
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_FIELD_KEYS = ("name", "datatype", "arraysize", "xtype", "unit", "ucd", "utype", "description")
PIECE = 1 << 16


@dataclass(frozen=True)
class UploadSpec:
    """One ``name,source`` item of UPLOAD."""

    name: str
    source: str

    @property
    def part(self) -> str | None:
        """The multipart part name for ``param:`` sources."""
        return self.source[len("param:") :] if self.source.startswith("param:") else None


@dataclass(frozen=True)
class Upload:
    """An uploaded table: its FIELDs and its rows (Arrow columns ``c0..cN``)."""

    name: str
    fields: tuple[Field, ...]
    table: pa.Table

    @property
    def physical_name(self) -> str:
        return f"tap_upload_{self.name.lower()}"

    def table_info(self) -> TableInfo:
        return TableInfo(
            schema=UPLOAD_SCHEMA,
            name=self.name,
            is_upload=True,
            physical_schema=PHYSICAL_SCHEMA,
            physical_name=self.physical_name,
            description="Uploaded with the query",
            columns=tuple(
                ColumnInfo(
                    name=f.name,
                    datatype=f.datatype,
                    arraysize=f.arraysize,
                    xtype=f.xtype,
                    unit=f.unit,
                    ucd=f.ucd,
                    utype=f.utype,
                    description=f.description,
                    physical_name=column,
                )
                for f, column in zip(self.fields, self.table.column_names, strict=True)
            ),
        )

    def stored(self) -> pa.Table:
        """The table with each FIELD's metadata in its Arrow field (kept by Parquet)."""
        schema = pa.schema(
            [
                field.with_metadata(
                    {k: v for k in _FIELD_KEYS if (v := getattr(meta, k)) is not None}
                )
                for field, meta in zip(self.table.schema, self.fields, strict=True)
            ]
        )
        return self.table.cast(schema)

    @classmethod
    def from_stored(cls, name: str, table: pa.Table) -> Upload:
        fields = []
        for field in table.schema:
            meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
            fields.append(Field(**{k: meta.get(k) for k in _FIELD_KEYS}))  # type: ignore[arg-type]
        return cls(name=name, fields=tuple(fields), table=table)


def parse_upload(values: Sequence[str], *, max_tables: int) -> list[UploadSpec]:
    """The UPLOAD parameter values (each ``name,source[;name,source...]``), checked."""
    specs: list[UploadSpec] = []
    seen: set[str] = set()
    for value in values:
        for item in value.split(";"):
            if not item.strip():
                continue
            name, sep, source = item.partition(",")
            name, source = name.strip(), source.strip()
            if not sep or not source:
                raise UploadError(f"UPLOAD {item.strip()!r} must be name,param:part or name,URL")
            if not _NAME.match(name):
                raise UploadError(
                    f"The upload table name {name!r} is not a regular ADQL identifier "
                    "(a letter, then letters, digits or underscores)"
                )
            if name.lower() in seen:
                raise UploadError(f"The upload table name {name!r} is given twice")
            seen.add(name.lower())
            if source.startswith("param:"):
                if not source[len("param:") :]:
                    raise UploadError(f"UPLOAD {name}: param: needs the name of a request part")
            elif not source.lower().startswith(("http://", "https://")):
                raise UploadError(
                    f"UPLOAD {name}: the source {source!r} is neither param:<part> nor an "
                    "http(s) URL"
                )
            specs.append(UploadSpec(name, source))
    if len(specs) > max_tables:
        raise UploadError(
            f"{len(specs)} tables are uploaded; this service accepts at most {max_tables}"
        )
    return specs


def _pieces(stream: IO[bytes], budget: list[int], limit: int, name: str) -> Iterator[bytes]:
    while True:
        piece = stream.read(PIECE)
        if not piece:
            return
        budget[0] -= len(piece)
        if budget[0] < 0:
            raise UploadTooLargeError(
                f"The uploaded tables are larger than the limit of {limit} bytes "
                f"(reached while reading {name})"
            )
        yield piece


class UploadService:
    """Turns UPLOAD values and request parts into ``Upload`` tables."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def check_allowed(self) -> None:
        if not self._config.upload.enabled:
            raise UsageError("TAP_UPLOAD is disabled on this service")
        if self._config.backend == "qserv":
            raise UsageError(
                "TAP_UPLOAD is not available on the Qserv backend: Qserv cannot join a table "
                "sent with the query to its partitioned tables. Query the catalog first and "
                "use the values as constants, or ask for the table to be ingested."
            )

    def specs(self, values: Sequence[str]) -> list[UploadSpec]:
        self.check_allowed()
        return parse_upload(values, max_tables=self._config.upload.max_tables)

    def resolve(self, values: Sequence[str], parts: Mapping[str, IO[bytes]]) -> tuple[Upload, ...]:
        """Read every table UPLOAD names (parts of this request, or fetched URLs)."""
        if not values:
            return ()
        specs = self.specs(values)
        limits = self._config.upload
        budget = [limits.max_bytes]
        uploads = []
        for spec in specs:
            part = spec.part
            if part is not None:
                stream = parts.get(part)
                if stream is None:
                    raise UploadError(
                        f"UPLOAD {spec.name} refers to {spec.source}, but the request has no "
                        f"part named {part!r} (send the VOTable as a multipart/form-data part)"
                    )
                stream.seek(0)
                uploads.append(self._read(spec, stream, budget))
            else:
                fetched = fetch.fetch(
                    spec.source,
                    limit=max(budget[0], 0),
                    timeout=limits.fetch_timeout_seconds,
                    allow_private=limits.allow_private_urls,
                )
                with fetched:
                    uploads.append(self._read(spec, fetched, budget))
        return tuple(uploads)

    def _read(self, spec: UploadSpec, stream: IO[bytes], budget: list[int]) -> Upload:
        limits = self._config.upload
        try:
            parsed = read_votable(
                _pieces(stream, budget, limits.max_bytes, spec.name),
                max_rows=limits.max_rows,
                max_columns=limits.max_columns,
            )
        except VOTableReadError as exc:
            raise UploadError(f"The uploaded table {spec.name} cannot be read: {exc}") from None
        names = [f.name for f in parsed.fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise UploadError(
                f"The uploaded table {spec.name} has several FIELDs named {', '.join(duplicates)}"
            )
        return Upload(name=spec.name, fields=parsed.fields, table=parsed.table)
