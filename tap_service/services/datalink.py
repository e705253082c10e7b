"""The services Rubin's DataLink templates point at: the native light curve and ``{links}``.

The light curve is an ADQL query built from validated parameters — every identifier is looked
up in TAP_SCHEMA and written as a delimited identifier, the ID is an integer, the band one of a
fixed list — and run through the same ``QueryService`` (checker, dialect, writers) as /sync.
The PNG is drawn with matplotlib's Agg backend from the same rows.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import pyarrow as pa

from tap_service.adql.catalog import ColumnInfo, TableInfo
from tap_service.config import Config
from tap_service.datalink import LinkRow, links_document
from tap_service.datalink.links import LINKS_MEDIA_TYPE, error_row
from tap_service.exceptions import UsageError
from tap_service.services.demo_obscore import ccd_visit_from_did
from tap_service.services.descriptors import datalink_base_url, datalink_templates
from tap_service.services.query import QueryRequest, QueryService
from tap_service.services.tapschema import TapSchemaService
from tap_service.storage.backend import Backend
from tap_service.storage.tap_schema_reader import TapSchemaModel

BANDS = ("u", "g", "r", "i", "z", "y")
BAND_CHOICES = ("all", *BANDS)
DETAILS = ("full", "principal", "minimal")
PNG = "image/png"
VOTABLE = "application/x-votable+xml"
BAND_COLOURS = {
    "u": "#1f3fbf",
    "g": "#2ca02c",
    "r": "#d62728",
    "i": "#ff7f0e",
    "z": "#9467bd",
    "y": "#4d4d4d",
}
TIMESERIES_DESCRIPTOR = "dp02_object_to_fs_timeseries"
OBJECT_TABLE = "dp02_dc2_catalogs.Object"
OBJECT_ID_COLUMN = "objectId"
OBSCORE_TABLE = "ivoa.ObsCore"


@dataclass(frozen=True, kw_only=True)
class LightCurveRequest:
    """Parameters as received (strings), validated by ``LightCurveService``."""

    id: str | None
    table: str | None = "dp02_dc2_catalogs.ForcedSource"
    id_column: str | None = "objectId"
    join_time_column: str | None = "dp02_dc2_catalogs.CcdVisit.expMidptMJD"
    band: str | None = "all"
    detail: str | None = "principal"
    response_format: str | None = None


@dataclass(frozen=True)
class LightCurvePlan:
    """A validated request: the ADQL to run and what the plot needs."""

    adql: str
    object_id: int
    band: str
    time_column: str
    band_column: str | None
    flux_column: str | None
    flux_err_column: str | None


def _delimited(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_ref(table: TableInfo) -> str:
    return f"{_delimited(table.schema)}.{_delimited(table.name)}"


def _int_id(value: str | None, name: str = "id") -> int:
    text = (value or "").strip()
    if not re.fullmatch(r"[+-]?\d{1,19}", text):
        raise UsageError(f"The {name} parameter must be an integer ID, not {value!r}")
    number = int(text)
    if not -(2**63) <= number < 2**63:
        raise UsageError(f"The {name} parameter {value!r} is out of range for a 64-bit ID")
    return number


def _choice(value: str | None, name: str, choices: Sequence[str], default: str) -> str:
    text = (value or default).strip()
    if text.lower() not in choices:
        raise UsageError(f"The {name} parameter must be one of {', '.join(choices)}, not {text!r}")
    return text.lower()


def _column(table: TableInfo, name: str | None, param: str) -> ColumnInfo:
    column = table.column((name or "").strip())
    if column is None:
        raise UsageError(
            f"The {param} parameter names no column of {table.qualified_name}: {name!r}"
        )
    return column


def _by_ucd(columns: Sequence[ColumnInfo], ucd: str) -> ColumnInfo | None:
    for column in columns:
        if (column.ucd or "").lower() == ucd:
            return column
    return None


class LightCurveService:
    """Light curves of one object from a time-series table joined to its time column."""

    def __init__(
        self,
        config: Config,
        query_service: QueryService,
        backend: Backend,
        tap_schema: TapSchemaService,
    ) -> None:
        self._config = config
        self._queries = query_service
        self._backend = backend
        self._tap_schema = tap_schema
        self._templates = datalink_templates(config)

    @property
    def _model(self) -> TapSchemaModel:
        return self._tap_schema.model

    def plan(self, request: LightCurveRequest, *, plot: bool = False) -> LightCurvePlan:
        """Validate every parameter against TAP_SCHEMA and build the ADQL.

        ``plot`` selects only what the PNG draws (ID, band, flux and error), as ``minimal``
        does when Rubin's minimal list is empty.
        """
        object_id = _int_id(request.id)
        band = _choice(request.band, "band", BAND_CHOICES, "all")
        detail = _choice(request.detail, "detail", DETAILS, "principal")
        table = self._model.find_table((request.table or "").strip())
        if table is None:
            raise UsageError(f"The table parameter names no published table: {request.table!r}")
        id_column = _column(table, request.id_column, "id_column")

        time_spec = (request.join_time_column or "").strip()
        if time_spec.count(".") < 2:
            raise UsageError(
                "The join_time_column parameter must be schema.table.column, "
                f"not {request.join_time_column!r}"
            )
        time_table_name, time_column_name = time_spec.rsplit(".", 1)
        time_table = self._model.find_table(time_table_name)
        if time_table is None:
            raise UsageError(f"join_time_column names no published table: {time_table_name!r}")
        time_column = _column(time_table, time_column_name, "join_time_column")
        same_table = time_table.qualified_name == table.qualified_name
        join = ""
        if not same_table:
            keys = [
                k
                for k in self._model.keys_from(table)
                if k.target_table == time_table.qualified_name
            ]
            if not keys:
                raise UsageError(
                    f"TAP_SCHEMA declares no foreign key from {table.qualified_name} to "
                    f"{time_table.qualified_name}, so the time column cannot be joined"
                )
            on = " AND ".join(f"t.{_delimited(a)} = v.{_delimited(b)}" for a, b in keys[0].columns)
            join = f" JOIN {_table_ref(time_table)} AS v ON {on}"

        band_column = table.column("band")
        if band != "all" and band_column is None:
            raise UsageError(f"{table.qualified_name} has no band column to select band={band}")
        columns = self._detail_columns(table, detail, id_column, band_column, plot=plot)
        select = [f"t.{_delimited(c.name)}" for c in columns]
        time_alias = "t" if same_table else "v"
        time_ref = f"{time_alias}.{_delimited(time_column.name)}"
        if not (same_table and time_column in columns):
            select.append(time_ref)
        where = f"t.{_delimited(id_column.name)} = {object_id}"
        if band != "all" and band_column is not None:
            where += f" AND t.{_delimited(band_column.name)} = '{band}'"
        adql = (
            f"SELECT {', '.join(select)} FROM {_table_ref(table)} AS t{join} "
            f"WHERE {where} ORDER BY {time_ref}"
        )
        flux = _by_ucd(table.columns, "phot.flux")
        flux_err = table.column(flux.name + "Err") if flux else None
        if flux_err is None:
            flux_err = _by_ucd(table.columns, "stat.error;phot.flux")
        return LightCurvePlan(
            adql=adql,
            object_id=object_id,
            band=band,
            time_column=time_column.name,
            band_column=band_column.name if band_column else None,
            flux_column=flux.name if flux else None,
            flux_err_column=flux_err.name if flux_err else None,
        )

    def _detail_columns(
        self,
        table: TableInfo,
        detail: str,
        id_column: ColumnInfo,
        band_column: ColumnInfo | None,
        *,
        plot: bool = False,
    ) -> list[ColumnInfo]:
        if plot:
            return _essential_columns(table, id_column, band_column)
        if detail == "full":
            return list(table.columns)
        if detail == "principal":
            return [c for c in table.columns if c.principal]
        listed: tuple[str, ...] = ()
        if self._templates is not None:
            listed = self._templates.minimal_columns.get(table.qualified_name, ())
        if listed:
            found = [table.column(name) for name in listed]
            return [c for c in found if c is not None]
        # Rubin's columns-minimal.yaml lists nothing yet: see _essential_columns.
        return _essential_columns(table, id_column, band_column)

    def run(self, request: LightCurveRequest) -> tuple[str, Iterator[bytes]]:
        """Media type and document (any TAP RESPONSEFORMAT, or image/png)."""
        plan = self.plan(request)
        fmt = (request.response_format or "").strip()
        if fmt.lower() in (PNG, "png"):
            return PNG, iter([self.png(request)])
        prepared = self._queries.prepare(
            QueryRequest(
                query=plan.adql,
                lang="ADQL",
                maxrec=str(self._config.datalink.lightcurve_maxrec),
                response_format=fmt or None,
            )
        )
        return prepared.media_type, self._queries.stream(prepared)

    def job_parameters(self, request: LightCurveRequest, phase: str | None) -> dict[str, str]:
        """TAP async job parameters (lower-cased names) running this light curve's ADQL."""
        fmt = (request.response_format or "").strip()
        if fmt.lower() in (PNG, "png"):
            raise UsageError("An async light curve is a table: ask for the PNG synchronously")
        plan = self.plan(request)
        params = {
            "lang": "ADQL",
            "query": plan.adql,
            "maxrec": str(self._config.datalink.lightcurve_maxrec),
        }
        if fmt:
            params["responseformat"] = fmt
        if phase:
            params["phase"] = phase
        return params

    def rows(self, plan: LightCurvePlan) -> pa.Table:
        """The light curve's rows as Arrow (the PNG and tests use them)."""
        prepared = self._queries.prepare(QueryRequest(query=plan.adql, lang="ADQL"))
        if prepared.sql is None:
            raise UsageError("The light curve query could not be translated")
        batches = list(
            self._backend.stream(
                prepared.sql,
                batch_rows=self._config.batch_rows,
                timeout=self._config.sync_timeout_seconds,
            )
        )
        names = [c.name for c in prepared.checked.columns]
        if not batches:
            return pa.table({name: pa.array([], pa.null()) for name in names})
        table = pa.Table.from_batches(batches)
        return table.rename_columns(names)

    def png(self, request: LightCurveRequest) -> bytes:
        """The plot: only the columns it needs are read, whatever ``detail`` says."""
        plan = self.plan(request, plot=True)
        if plan.flux_column is None:
            raise UsageError("The time-series table has no flux column (UCD phot.flux) to plot")
        return render_png(self.rows(plan), plan, title_id=plan.object_id)


def _essential_columns(
    table: TableInfo, id_column: ColumnInfo, band_column: ColumnInfo | None
) -> list[ColumnInfo]:
    """The ID, the band and the first flux with its error (by UCD): what a light curve needs."""
    chosen = [id_column]
    if band_column is not None:
        chosen.append(band_column)
    flux = _by_ucd(table.columns, "phot.flux")
    if flux is not None:
        chosen.append(flux)
        err = table.column(flux.name + "Err") or _by_ucd(table.columns, "stat.error;phot.flux")
        if err is not None:
            chosen.append(err)
    unique: list[ColumnInfo] = []
    for column in chosen:
        if column not in unique:
            unique.append(column)
    return unique


def render_png(table: pa.Table, plan: LightCurvePlan, *, title_id: int) -> bytes:
    """Flux with error bars against MJD, one colour per band, labelled axes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    names = set(table.column_names)
    if table.num_rows and plan.flux_column in names and plan.time_column in names:
        time = table.column(plan.time_column).to_numpy(zero_copy_only=False)
        flux = table.column(plan.flux_column).to_numpy(zero_copy_only=False)
        err = (
            table.column(plan.flux_err_column).to_numpy(zero_copy_only=False)
            if plan.flux_err_column in names
            else None
        )
        bands = (
            table.column(plan.band_column).to_pylist()
            if plan.band_column in names
            else ["all"] * table.num_rows
        )
        for band in [b for b in (*BANDS, "all") if b in set(bands)]:
            mask = [b == band for b in bands]
            axes.errorbar(
                time[mask],
                flux[mask],
                yerr=None if err is None else err[mask],
                fmt="o",
                markersize=4,
                capsize=2,
                color=BAND_COLOURS.get(band, "black"),
                label=band,
            )
        # Outside the axes: loc="best" would cost a search over every point.
        axes.legend(title="band", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        axes.text(0.5, 0.5, "no measurements", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("MJD (exposure midpoint)")
    axes.set_ylabel(f"{plan.flux_column} (nJy)")
    band_text = "all bands" if plan.band == "all" else f"band {plan.band}"
    axes.set_title(f"Forced photometry of object {title_id}, {band_text}")
    axes.grid(True, alpha=0.3)
    # Fixed margins: tight_layout would double the drawing time.
    figure.subplots_adjust(left=0.125, right=0.89, top=0.92, bottom=0.12)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


MAX_LINK_IDS = 1_000


class LinksService:
    """DataLink 1.1 ``{links}`` for Object IDs: the record, its light curve and plot, and the
    light-curve service descriptor; a per-ID error row for what cannot be linked."""

    def __init__(self, config: Config, query_service: QueryService, backend: Backend) -> None:
        self._config = config
        self._queries = query_service
        self._backend = backend
        self._templates = datalink_templates(config)
        self._base = datalink_base_url(config)

    def links(self, ids: Sequence[str]) -> tuple[str, bytes]:
        if not ids:
            raise UsageError(
                "The ID parameter is required (Object IDs or ivoa.ObsCore obs_publisher_did values)"
            )
        if len(ids) > MAX_LINK_IDS:
            raise UsageError(f"At most {MAX_LINK_IDS} ID values are accepted per request")
        numbers: dict[str, int] = {}
        images: dict[str, int] = {}
        rows: list[LinkRow] = []
        for value in ids:
            image = ccd_visit_from_did(value)
            if image is not None:
                images[value] = image
                continue
            with contextlib.suppress(UsageError):
                numbers[value] = _int_id(value, "ID")
        found = self._existing(OBJECT_TABLE, OBJECT_ID_COLUMN, numbers.values())
        found_images = self._existing(OBSCORE_TABLE, "lsst_ccdvisitid", images.values())
        descriptors: list[str] = []
        descriptor = self._templates.descriptor(TIMESERIES_DESCRIPTOR) if self._templates else None
        for value in ids:
            if value in images:
                image = images[value]
                if image in found_images:
                    rows.extend(self._image_links(value, image))
                else:
                    rows.append(
                        error_row(value, "NotFoundFault", f"no {OBSCORE_TABLE} row has this ID")
                    )
                continue
            number = numbers.get(value)
            if number is None:
                rows.append(error_row(value, "UsageFault", f"{value!r} is not an Object ID"))
                continue
            if number not in found:
                rows.append(
                    error_row(
                        value, "NotFoundFault", f"no {OBJECT_TABLE} row has objectId {number}"
                    )
                )
                continue
            rows.extend(self._object_links(value, number, descriptor is not None))
            if descriptor is not None:
                descriptors.append(
                    descriptor.fill_values(
                        self._base,
                        {"dp02_dc2_catalogs_Object_objectId": str(number)},
                        f"timeseries-{number}",
                    )
                )
        document = links_document(rows, descriptors="\n".join(descriptors).encode("utf-8"))
        return LINKS_MEDIA_TYPE, document

    def _existing(self, table: str, column: str, numbers: Iterable[int]) -> set[int]:
        """Which of ``numbers`` are values of ``table.column`` (names are constants here)."""
        wanted = sorted(set(numbers))
        if not wanted:
            return set()
        schema, name = table.split(".")
        adql = (
            f"SELECT t.{_delimited(column)} FROM {_delimited(schema)}.{_delimited(name)} AS t "
            f"WHERE t.{_delimited(column)} IN ({', '.join(str(n) for n in wanted)})"
        )
        prepared = self._queries.prepare(QueryRequest(query=adql, lang="ADQL"))
        if prepared.sql is None:
            return set()
        found: set[int] = set()
        for batch in self._backend.stream(prepared.sql, timeout=self._config.sync_timeout_seconds):
            found.update(int(v) for v in batch.column(0).to_pylist() if v is not None)
        return found

    def _tap_query_url(self, query: str) -> str:
        tap = self._base + self._config.path_prefix.rstrip("/")
        return f"{tap}/sync?" + urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query})

    def _image_links(self, value: str, ccd_visit_id: int) -> list[LinkRow]:
        """Links of an ObsCore dataset (a processed visit image; the demo has no pixels)."""
        return [
            LinkRow(
                id=value,
                semantics="#this",
                access_url=self._tap_query_url(
                    f"SELECT * FROM dp02_dc2_catalogs.CcdVisit WHERE ccdVisitId = {ccd_visit_id}"
                ),
                description="Metadata of the processed visit image (the demo serves no pixels)",
                content_type=VOTABLE,
            ),
            LinkRow(
                id=value,
                semantics="#auxiliary",
                access_url=self._tap_query_url(
                    "SELECT * FROM dp02_dc2_catalogs.ForcedSource "
                    f"WHERE ccdVisitId = {ccd_visit_id}"
                ),
                description="Forced photometry measured on this image",
                content_type=VOTABLE,
            ),
        ]

    def _object_links(self, value: str, number: int, with_service: bool) -> list[LinkRow]:
        record_query = f"SELECT * FROM {OBJECT_TABLE} WHERE {OBJECT_ID_COLUMN} = {number}"
        params = {"id": str(number)}
        if self._templates is not None:
            descriptor = self._templates.descriptor(TIMESERIES_DESCRIPTOR)
            if descriptor is not None:
                defaults = descriptor.param_defaults()
                params.update(
                    {k: v for k, v in defaults.items() if k not in ("standardID", "accessURL")}
                )
        timeseries = f"{self._base}/api/datalink/timeseries"
        rows = [
            LinkRow(
                id=value,
                semantics="#this",
                access_url=self._tap_query_url(record_query),
                description=f"The {OBJECT_TABLE} record (TAP sync query)",
                content_type=VOTABLE,
            ),
            LinkRow(
                id=value,
                semantics="#auxiliary",
                access_url=f"{timeseries}?{urlencode(params)}",
                description="Forced-photometry light curve, all bands (VOTable)",
                content_type=VOTABLE,
            ),
            LinkRow(
                id=value,
                semantics="#preview",
                access_url=f"{timeseries}?{urlencode({**params, 'RESPONSEFORMAT': PNG})}",
                description="Plot of the light curve, one colour per band",
                content_type=PNG,
            ),
        ]
        if with_service:
            rows.append(
                LinkRow(
                    id=value,
                    semantics="#proc",
                    service_def=f"timeseries-{number}",
                    description="Light-curve service: choose the band and the detail level",
                    content_type=VOTABLE,
                )
            )
        return rows
