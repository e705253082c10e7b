"""Does the published ivoa.ObsCore table realise ObsCore 1.1?  Decides the TAPRegExt dataModel.

Declaring ``ivo://ivoa.net/std/ObsCore#core-1.1`` in /capabilities promises clients (and
validators) a table they can query without reading its metadata first: every mandatory column
of ObsCore 1.1 (ObsCore 1.1 §4 and Table 6 of its ObsTAP appendix, with Erratum 2 making
``pol_states`` mandatory), each with the standard utype, UCD, unit and a compatible datatype.
The check here looks at the metadata TAP_SCHEMA publishes (or a Felis file describes), never at
the rows: it is cheap enough to run at start-up against any backend.

The comparisons follow the standard and STILTS taplint's ObsTAP stage: column names, utypes and
UCDs are compared case-insensitively, a utype must carry the ``obscore:`` prefix, units are
compared exactly (and a column without a standard unit must have none), and a datatype must be
one of the VOTable types the column's ObsCore type maps to.  Optional standard columns are
checked the same way when present; non-standard columns are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from tap_service.adql.catalog import ColumnInfo, TableInfo

OBSCORE_TABLE = "ivoa.ObsCore"
OBSCORE_1_1 = ("ivo://ivoa.net/std/ObsCore#core-1.1", "ObsCore-1.1")
UTYPE_PREFIX = "obscore:"

DeclareMode = Literal["auto", "always", "never"]


class Kind(Enum):
    """ObsCore column types (adql:CLOB, TIMESTAMP and REGION columns are strings)."""

    INTEGER = "integer"
    REAL = "real"
    STRING = "string"

    @property
    def votable(self) -> tuple[str, ...]:
        """The VOTable datatypes realising this type."""
        return _VOTABLE[self]


_VOTABLE: dict[Kind, tuple[str, ...]] = {
    Kind.INTEGER: ("short", "int", "long"),
    Kind.REAL: ("float", "double"),
    Kind.STRING: ("char", "unicodeChar"),
}


@dataclass(frozen=True)
class StandardColumn:
    """One ObsCore 1.1 column: name, utype (without prefix), UCD, unit, type."""

    name: str
    utype: str
    ucd: str
    kind: Kind
    unit: str | None = None

    @property
    def full_utype(self) -> str:
        return UTYPE_PREFIX + self.utype

    def describe(self) -> str:
        unit = f", unit {self.unit}" if self.unit else ""
        types = "/".join(self.kind.votable)
        return f"datatype {types}, utype {self.full_utype}, UCD {self.ucd}{unit}"


_I, _R, _S = Kind.INTEGER, Kind.REAL, Kind.STRING
_POS = "Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2"

MANDATORY: tuple[StandardColumn, ...] = (
    StandardColumn("dataproduct_type", "ObsDataset.dataProductType", "meta.code.class", _S),
    StandardColumn("calib_level", "ObsDataset.calibLevel", "meta.code;obs.calib", _I),
    StandardColumn("obs_collection", "DataID.collection", "meta.id", _S),
    StandardColumn("obs_id", "DataID.observationID", "meta.id", _S),
    StandardColumn("obs_publisher_did", "Curation.publisherDID", "meta.ref.ivoid", _S),
    StandardColumn("access_url", "Access.reference", "meta.ref.url", _S),
    StandardColumn("access_format", "Access.format", "meta.code.mime", _S),
    StandardColumn("access_estsize", "Access.size", "phys.size;meta.file", _I, "kbyte"),
    StandardColumn("target_name", "Target.name", "meta.id;src", _S),
    StandardColumn("s_ra", f"{_POS}.C1", "pos.eq.ra", _R, "deg"),
    StandardColumn("s_dec", f"{_POS}.C2", "pos.eq.dec", _R, "deg"),
    StandardColumn(
        "s_fov",
        "Char.SpatialAxis.Coverage.Bounds.Extent.diameter",
        "phys.angSize;instr.fov",
        _R,
        "deg",
    ),
    StandardColumn(
        "s_region", "Char.SpatialAxis.Coverage.Support.Area", "pos.outline;obs.field", _S
    ),
    StandardColumn(
        "s_resolution",
        "Char.SpatialAxis.Resolution.Refval.value",
        "pos.angResolution",
        _R,
        "arcsec",
    ),
    StandardColumn("s_xel1", "Char.SpatialAxis.numBins1", "meta.number", _I),
    StandardColumn("s_xel2", "Char.SpatialAxis.numBins2", "meta.number", _I),
    StandardColumn(
        "t_min",
        "Char.TimeAxis.Coverage.Bounds.Limits.StartTime",
        "time.start;obs.exposure",
        _R,
        "d",
    ),
    StandardColumn(
        "t_max",
        "Char.TimeAxis.Coverage.Bounds.Limits.StopTime",
        "time.end;obs.exposure",
        _R,
        "d",
    ),
    StandardColumn(
        "t_exptime",
        "Char.TimeAxis.Coverage.Support.Extent",
        "time.duration;obs.exposure",
        _R,
        "s",
    ),
    StandardColumn(
        "t_resolution", "Char.TimeAxis.Resolution.Refval.value", "time.resolution", _R, "s"
    ),
    StandardColumn("t_xel", "Char.TimeAxis.numBins", "meta.number", _I),
    StandardColumn(
        "em_min", "Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit", "em.wl;stat.min", _R, "m"
    ),
    StandardColumn(
        "em_max", "Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit", "em.wl;stat.max", _R, "m"
    ),
    StandardColumn(
        "em_res_power", "Char.SpectralAxis.Resolution.ResolPower.refVal", "spect.resolution", _R
    ),
    StandardColumn("em_xel", "Char.SpectralAxis.numBins", "meta.number", _I),
    StandardColumn("o_ucd", "Char.ObservableAxis.ucd", "meta.ucd", _S),
    StandardColumn(
        "pol_states", "Char.PolarizationAxis.stateList", "meta.code;phys.polarization", _S
    ),
    StandardColumn("pol_xel", "Char.PolarizationAxis.numBins", "meta.number", _I),
    StandardColumn("facility_name", "Provenance.ObsConfig.Facility.name", "meta.id;instr.tel", _S),
    StandardColumn("instrument_name", "Provenance.ObsConfig.Instrument.name", "meta.id;instr", _S),
)
"""The 30 columns an ObsCore 1.1 table must have (ObsTAP's mandatory set, Erratum 2 included)."""

_RES = "Char.SpatialAxis.Resolution.Bounds.Limits"
_POWER = "Char.SpectralAxis.Resolution.ResolPower"

OPTIONAL: tuple[StandardColumn, ...] = (
    StandardColumn("dataproduct_subtype", "ObsDataset.dataProductSubtype", "meta.code.class", _S),
    StandardColumn("target_class", "Target.class", "src.class", _S),
    StandardColumn("obs_creation_date", "DataID.date", "time;meta.dataset", _S),
    StandardColumn("obs_creator_name", "DataID.creator", "meta.id", _S),
    StandardColumn("obs_creator_did", "DataID.creatorDID", "meta.id", _S),
    StandardColumn("obs_title", "DataID.title", "meta.title;obs", _S),
    StandardColumn("publisher_id", "Curation.publisherID", "meta.ref.ivoid", _S),
    StandardColumn("bib_reference", "Curation.reference", "meta.bib.bibcode", _S),
    StandardColumn("data_rights", "Curation.rights", "meta.code", _S),
    StandardColumn("obs_release_date", "Curation.releaseDate", "time.release", _S),
    StandardColumn("s_ucd", "Char.SpatialAxis.ucd", "meta.ucd", _S),
    StandardColumn("s_unit", "Char.SpatialAxis.unit", "meta.unit", _S),
    StandardColumn(
        "s_resolution_min", f"{_RES}.LoLimit", "pos.angResolution;stat.min", _R, "arcsec"
    ),
    StandardColumn(
        "s_resolution_max", f"{_RES}.HiLimit", "pos.angResolution;stat.max", _R, "arcsec"
    ),
    StandardColumn("s_calib_status", "Char.SpatialAxis.calibrationStatus", "meta.code.qual", _S),
    StandardColumn(
        "s_stat_error",
        "Char.SpatialAxis.Accuracy.statError.refval.value",
        "stat.error;pos.eq",
        _R,
        "arcsec",
    ),
    StandardColumn(
        "s_pixel_scale",
        "Char.SpatialAxis.Sampling.RefVal.SamplingPeriod",
        "phys.angSize;instr.pixel",
        _R,
        "arcsec",
    ),
    StandardColumn("t_calib_status", "Char.TimeAxis.calibrationStatus", "meta.code.qual", _S),
    StandardColumn(
        "t_stat_error",
        "Char.TimeAxis.Accuracy.StatError.refval.value",
        "stat.error;time",
        _R,
        "s",
    ),
    StandardColumn("em_ucd", "Char.SpectralAxis.ucd", "meta.ucd", _S),
    StandardColumn("em_unit", "Char.SpectralAxis.unit", "meta.unit", _S),
    StandardColumn("em_calib_status", "Char.SpectralAxis.calibrationStatus", "meta.code.qual", _S),
    StandardColumn("em_res_power_min", f"{_POWER}.LoLimit", "spect.resolution;stat.min", _R),
    StandardColumn("em_res_power_max", f"{_POWER}.HiLimit", "spect.resolution;stat.max", _R),
    StandardColumn(
        "em_resolution",
        "Char.SpectralAxis.Resolution.refval.value",
        "spect.resolution;stat.mean",
        _R,
        "m",
    ),
    StandardColumn(
        "em_stat_error",
        "Char.SpectralAxis.Accuracy.StatError.refval.value",
        "stat.error;em",
        _R,
        "m",
    ),
    StandardColumn("o_unit", "Char.ObservableAxis.unit", "meta.unit", _S),
    StandardColumn("o_calib_status", "Char.ObservableAxis.calibrationStatus", "meta.code.qual", _S),
    StandardColumn(
        "o_stat_error", "Char.ObservableAxis.Accuracy.StatError.refval.value", "stat.error", _R
    ),
    StandardColumn("proposal_id", "Provenance.Proposal.identifier", "meta.id;obs.proposal", _S),
)
"""The 30 optional ObsCore 1.1 columns: checked like the mandatory ones when present."""


def _same(got: str | None, expected: str | None, *, case: bool) -> bool:
    got = got or None
    if got is None or expected is None:
        return got is None and expected is None
    return got == expected if case else got.lower() == expected.lower()


def _column_defects(column: ColumnInfo, standard: StandardColumn) -> list[str]:
    name = column.name
    defects = []
    if not _same(column.utype, standard.full_utype, case=False):
        hint = ""
        if column.utype and column.utype.lower() == standard.utype.lower():
            hint = f" (add the {UTYPE_PREFIX!r} prefix)"
        defects.append(
            f"column {name}: utype {column.utype!r}, expected {standard.full_utype!r}{hint}"
        )
    if not _same(column.ucd, standard.ucd, case=False):
        defects.append(f"column {name}: UCD {column.ucd!r}, expected {standard.ucd!r}")
    if not _same(column.unit, standard.unit, case=True):
        defects.append(f"column {name}: unit {column.unit!r}, expected {standard.unit!r}")
    if column.datatype not in standard.kind.votable:
        types = " or ".join(standard.kind.votable)
        defects.append(f"column {name}: datatype {column.datatype!r}, expected {types}")
    return defects


def obscore_defects(table: TableInfo) -> list[str]:
    """Why ``table`` is not an ObsCore 1.1 table, one line per defect; empty when it is.

    Missing mandatory columns come first (in the standard's order), then the metadata of the
    standard columns present, in the table's column order.
    """
    columns = {column.name.lower(): column for column in table.columns}
    standard = {column.name: column for column in (*MANDATORY, *OPTIONAL)}
    defects = [
        f"mandatory column {column.name} is missing ({column.describe()})"
        for column in MANDATORY
        if column.name not in columns
    ]
    for column in table.columns:
        expected = standard.get(column.name.lower())
        if expected is not None:
            defects.extend(_column_defects(column, expected))
    return defects


@dataclass(frozen=True)
class ObsCoreDeclaration:
    """Whether /capabilities declares ObsCore 1.1, and what keeps the table from conforming."""

    declared: bool
    table: str | None = None
    defects: tuple[str, ...] = ()

    @property
    def data_models(self) -> list[tuple[str, str]]:
        return [OBSCORE_1_1] if self.declared else []

    def warning(self, mode: DeclareMode) -> str | None:
        """The one start-up warning an operator needs, or None when there is nothing to say."""
        if self.table is None or not self.defects:
            return None
        listed = "; ".join(self.defects)
        if self.declared:
            return (
                f"{self.table} does not conform to ObsCore 1.1 but TAP_OBSCORE_DECLARE={mode} "
                f"declares it in /capabilities anyway ({len(self.defects)} defects: {listed})"
            )
        return (
            f"{self.table} is not declared as ObsCore 1.1 in /capabilities: "
            f"{len(self.defects)} defects in its TAP_SCHEMA metadata (fix them in its Felis "
            f"file, or set TAP_OBSCORE_DECLARE=always): {listed}"
        )


def decide(tables: Iterable[TableInfo], mode: DeclareMode) -> ObsCoreDeclaration:
    """Declare ObsCore 1.1 for an ivoa.ObsCore among ``tables``, as ``mode`` says.

    ``auto`` declares it iff the table conforms; ``always`` whenever the table is published
    (its defects are still reported); ``never`` does not look.
    """
    if mode == "never":
        return ObsCoreDeclaration(declared=False)
    table = find_obscore(tables)
    if table is None:
        return ObsCoreDeclaration(declared=False)
    defects = tuple(obscore_defects(table))
    declared = mode == "always" or not defects
    return ObsCoreDeclaration(declared=declared, table=table.qualified_name, defects=defects)


def find_obscore(tables: Iterable[TableInfo]) -> TableInfo | None:
    lowered = OBSCORE_TABLE.lower()
    return next((t for t in tables if t.qualified_name.lower() == lowered), None)
