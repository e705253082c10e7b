"""Catalogs built by hand for the checker tests.

Small on purpose: each table exists to exercise one resolution rule (physical names that
differ from TAP names, a column that is a reserved word, mixed-case and delimited names, two
schemas holding a table of the same name, an upload).
"""

from __future__ import annotations

from tap_service.adql import types as t
from tap_service.adql.catalog import ColumnInfo, SimpleCatalog, TableInfo, UserFunction


def col(name: str, datatype: str | None, **kw: object) -> ColumnInfo:
    return ColumnInfo(name=name, datatype=datatype, **kw)  # type: ignore[arg-type]


OBJECT = TableInfo(
    schema="dp02_dc2_catalogs",
    name="Object",
    physical_schema="dp02_dc2",
    physical_name="Object_v2",
    description="Objects detected on coadds",
    columns=(
        col("objectId", "long", ucd="meta.id;src", principal=True, indexed=True),
        col(
            "coord_ra",
            "double",
            unit="deg",
            ucd="pos.eq.ra",
            description="Right ascension",
            physical_name="ra_phys",
        ),
        col("coord_dec", "double", unit="deg", ucd="pos.eq.dec", description="Declination"),
        col("g_psfFlux", "float", unit="nJy", ucd="phot.flux"),
        col("r_psfFlux", "float", unit="nJy", ucd="phot.flux"),
        col("detect_isPrimary", "boolean"),
        col("tract", "long"),
        col("patch", "long"),
        col("shape_xx", "double"),
    ),
)

FORCED_SOURCE = TableInfo(
    schema="dp02_dc2_catalogs",
    name="ForcedSource",
    columns=(
        col("forcedSourceId", "long"),
        col("objectId", "long"),
        col("ccdVisitId", "long"),
        col("psfFlux", "double", unit="nJy"),
        col("band", "char", arraysize="*"),
    ),
)

CCD_VISIT = TableInfo(
    schema="dp02_dc2_catalogs",
    name="CcdVisit",
    columns=(
        col("ccdVisitId", "long"),
        col("band", "char", arraysize="*"),
        col("expMidptMJD", "double", unit="d"),
        col("obsStart", "char", arraysize="*", xtype="timestamp"),
        col("ra", "double", unit="deg"),
        col("dec", "double", unit="deg"),
    ),
)

TAP_COLUMNS = TableInfo(
    schema="TAP_SCHEMA",
    name="columns",
    columns=(
        col("table_name", "char", arraysize="*"),
        col("column_name", "char", arraysize="*"),
        col("datatype", "char", arraysize="*"),
        col("size", "int"),
        col("description", "unicodeChar", arraysize="*"),
    ),
)

TAP_TABLES = TableInfo(
    schema="TAP_SCHEMA",
    name="tables",
    columns=(
        col("schema_name", "char", arraysize="*"),
        col("table_name", "char", arraysize="*"),
    ),
)

MIXED = TableInfo(
    schema="demo",
    name="MixedCase",
    columns=(
        col("Flux", "double", unit="mJy"),
        col("flux", "double", unit="Jy"),
        col("Weird Name", "int"),
        col("s_region", "char", arraysize="*", xtype="shape"),
        col("center", "double", arraysize="2", xtype="point", unit="deg"),
        col("fov", "double", arraysize="3", xtype="circle", unit="deg"),
    ),
)

# Two schemas hold a table called "objects": bare "objects" is ambiguous.
OBJECTS_A = TableInfo(
    schema="survey_a",
    name="objects",
    columns=(col("id", "long"), col("ra", "double", unit="deg"), col("dec", "double")),
)
OBJECTS_B = TableInfo(
    schema="survey_b",
    name="objects",
    columns=(col("id", "long"), col("ra", "double", unit="deg"), col("mag", "float")),
)

UPLOAD = TableInfo(
    schema="TAP_UPLOAD",
    name="mine",
    is_upload=True,
    columns=(col("id", "int"), col("ra", "double", unit="deg"), col("dec", "double")),
)

UNTYPED = TableInfo(
    schema="legacy",
    name="untyped",
    columns=(col("anything", None), col("pos", "adql:POINT")),
)

HEALPIX = UserFunction(
    name="ivo_healpix_index",
    signature="ivo_healpix_index(order INTEGER, ra DOUBLE, dec DOUBLE) -> BIGINT",
    returns=t.LONG,
    arg_count=3,
)
MYSTERY = UserFunction(name="mystery", signature="mystery(...) -> ?", returns=t.UNKNOWN)

CATALOG = SimpleCatalog(
    table_list=(
        OBJECT,
        FORCED_SOURCE,
        CCD_VISIT,
        TAP_COLUMNS,
        TAP_TABLES,
        MIXED,
        OBJECTS_A,
        OBJECTS_B,
        UPLOAD,
        UNTYPED,
    ),
    function_list=(HEALPIX, MYSTERY),
)


# --------------------------------------------------------------------------- DaCHS test tables
# The lyonetia gavo/README lists the tables DaCHS's own tests check the "metadata inference
# samples" against; rebuilt here from that description (DaCHS's default column type is real).


def _dachs(name: str, *columns: ColumnInfo) -> TableInfo:
    return TableInfo(schema="dachs", name=name, columns=columns)


def _real(name: str, ucd: str, unit: str) -> ColumnInfo:
    return col(name, "float", ucd=ucd, unit=unit)


DACHS_CATALOG = SimpleCatalog(
    table_list=(
        _dachs(
            "spatial",
            _real("dist", "phys.distance", "m"),
            _real("width", "phys.dim", "m"),
            _real("height", "phys.dim", "km"),
            _real("ra1", "pos.eq.ra", "deg"),
            _real("ra2", "pos.eq.ra", "rad"),
        ),
        _dachs(
            "spatial2",
            _real("ra1", "pos.eq.ra;meta.main", "deg"),
            _real("dec", "pos.eq.dec;meta.main", "deg"),
            _real("dist", "phys.distance", "m"),
        ),
        _dachs(
            "misc",
            _real("mass", "phys.mass", "kg"),
            _real("mag", "phot.mag", "mag"),
            _real("speed", "phys.veloc", "km/s"),
        ),
        _dachs(
            "quoted",
            _real("left-right", "mess", "bg"),
            _real('inch"ing', "imperial.mess", "fin"),
            _real("plAin", "boring.stuff", "pc"),
            _real("alllower", "simple.case", "km"),
        ),
        _dachs(
            "crazy",
            col("ct", "int"),
            col("wot", "long"),
            col("wotb", "unsignedByte"),
            col("mass", "float", ucd="event;using.incense"),
            col("name", "unicodeChar", arraysize="*"),
            col("version", "char", arraysize="*"),
            col("flag", "char"),
        ),
        _dachs("geo", col("pt", "double", arraysize="2", xtype="point")),
    )
)
