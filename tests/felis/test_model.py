"""Felis documents → typed model, VOTable types, TAP_SCHEMA rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tap_service.felis import (
    FelisError,
    load_felis,
    parse_felis,
    tap_schema_rows,
    tap_schema_schema,
)

SDM = Path("/work/shared/rubin-sdm/schemas")
DEMO = Path(__file__).resolve().parents[2] / "schema" / "dp02_demo.yaml"
needs_sdm = pytest.mark.skipif(not SDM.exists(), reason="rubin-sdm schemas not available")


def _doc(*columns: dict[str, Any], **table: Any) -> dict[str, Any]:
    cols = [{"@id": f"#T.{c['name']}", **c} for c in columns]
    return {
        "name": "s",
        "@id": "#s",
        "tables": [{"name": "T", "@id": "#T", "columns": cols, **table}],
    }


def _column(**spec: Any) -> Any:
    spec.setdefault("name", "c")
    return parse_felis(_doc(spec)).tables[0].columns[0]


@pytest.mark.parametrize(
    ("spec", "datatype", "arraysize", "xtype"),
    [
        ({"datatype": "boolean"}, "boolean", None, None),
        ({"datatype": "byte"}, "unsignedByte", None, None),
        ({"datatype": "short"}, "short", None, None),
        ({"datatype": "int"}, "int", None, None),
        ({"datatype": "long"}, "long", None, None),
        ({"datatype": "float"}, "float", None, None),
        ({"datatype": "double"}, "double", None, None),
        ({"datatype": "char", "length": 8}, "char", "8", None),
        ({"datatype": "char", "length": 1}, "char", None, None),
        ({"datatype": "string", "length": 64}, "char", "64*", None),
        ({"datatype": "unicode", "length": 32}, "unicodeChar", "32*", None),
        ({"datatype": "text"}, "char", "*", None),
        ({"datatype": "binary", "length": 16}, "unsignedByte", "16*", None),
        ({"datatype": "timestamp"}, "char", "*", "timestamp"),
        ({"datatype": "timestamp", "precision": 6}, "char", "*", "timestamp"),
        ({"datatype": "char", "length": 1, "votable:arraysize": "*"}, "char", "*", None),
        ({"datatype": "string", "length": 10, "votable:arraysize": 10}, "char", "10", None),
        ({"datatype": "byte", "votable:datatype": "short"}, "short", None, None),
        ({"datatype": "text", "votable:xtype": "clob"}, "char", "*", "clob"),
        (
            {"datatype": "double", "votable:arraysize": "2", "votable:xtype": "point"},
            "double",
            "2",
            "point",
        ),
    ],
)
def test_votable_type_follows_felis_defaults_and_overrides(
    spec: dict[str, Any], datatype: str, arraysize: str | None, xtype: str | None
) -> None:
    col = _column(**spec)
    assert (col.votable_datatype, col.arraysize, col.xtype) == (datatype, arraysize, xtype)


def test_size_is_the_number_in_arraysize() -> None:
    assert _column(datatype="string", length=64).size == 64
    assert _column(datatype="char", length=8).size == 8
    assert _column(datatype="text").size is None
    assert _column(datatype="double").size is None


def test_annotations_are_carried() -> None:
    col = _column(
        datatype="double",
        description="  Flux  ",
        **{
            "ivoa:ucd": "phot.flux",
            "fits:tunit": "nJy",
            "tap:principal": 1,
            "tap:std": 1,
            "tap:column_index": 7,
            "votable:utype": "a.b",
            "nullable": False,
            "mysql:datatype": "DOUBLE",
        },
    )
    assert col.description == "Flux"
    assert (col.ucd, col.unit, col.utype) == ("phot.flux", "nJy", "a.b")
    assert (col.principal, col.std, col.column_index, col.nullable) == (True, True, 7, False)
    info = col.column_info(indexed=True)
    assert (info.datatype, info.unit, info.principal, info.indexed) == ("double", "nJy", True, True)


def test_ivoa_unit_and_empty_unit() -> None:
    assert _column(datatype="double", **{"ivoa:unit": "deg"}).unit == "deg"
    assert _column(datatype="double", **{"fits:tunit": None}).unit is None
    assert _column(datatype="double").nullable is True


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"datatype": "varchar"}, "unknown datatype"),
        ({"datatype": "string"}, "needs a length"),
        ({"datatype": "double", "fits:tunit": "deg", "ivoa:unit": "deg"}, "both"),
        ({"datatype": "double", "tap:principal": 2}, "0 or 1"),
        ({"datatype": "double", "colour": "red"}, "unknown key 'colour'"),
        ({"datatype": "double", "votable:datatype": "real"}, "not a VOTable type"),
        ({"datatype": "double", "nullable": "yes"}, "nullable"),
    ],
)
def test_invalid_columns_are_refused_with_their_name(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(FelisError, match=message) as info:
        _column(name="flux", **spec)
    assert "T.flux" in str(info.value)


def test_duplicate_columns_and_bad_references() -> None:
    with pytest.raises(FelisError, match="repeats"):
        parse_felis(
            _doc({"name": "a", "datatype": "int"}, {"name": "a", "datatype": "int", "@id": "#T.a2"})
        )
    with pytest.raises(FelisError, match="primaryKey"):
        parse_felis(_doc({"name": "a", "datatype": "int"}, primaryKey="#T.b"))
    doc = _doc(
        {"name": "a", "datatype": "int"},
        constraints=[
            {
                "name": "fk",
                "@type": "ForeignKey",
                "columns": ["#T.a"],
                "referencedColumns": ["#Nowhere.id"],
            }
        ],
    )
    with pytest.raises(FelisError, match="Nowhere"):
        parse_felis(doc)


def test_indexed_means_single_column_primary_key_or_index() -> None:
    doc = _doc(
        {"name": "a", "datatype": "long"},
        {"name": "b", "datatype": "long"},
        {"name": "c", "datatype": "long"},
        primaryKey="#T.a",
        indexes=[{"name": "i", "@id": "#i", "columns": ["#T.c"]}],
    )
    table = parse_felis(doc).tables[0]
    assert [table.is_indexed(c) for c in table.columns] == [True, False, True]
    composite = parse_felis(
        _doc(
            {"name": "a", "datatype": "long"},
            {"name": "b", "datatype": "long"},
            primaryKey=["#T.a", "#T.b"],
        )
    ).tables[0]
    assert not any(composite.is_indexed(c) for c in composite.columns)


def test_column_index_order_and_filling() -> None:
    plain = parse_felis(_doc({"name": "z", "datatype": "int"}, {"name": "a", "datatype": "int"}))
    rows = tap_schema_rows(plain).columns
    assert [(r.column_name, r.column_index) for r in rows] == [("z", 1), ("a", 2)]
    assert [c.name for c in plain.table_infos()[0].columns] == ["z", "a"]

    mixed = parse_felis(
        _doc(
            {"name": "z", "datatype": "int"},
            {"name": "b", "datatype": "int", "tap:column_index": 20},
            {"name": "a", "datatype": "int", "tap:column_index": 10},
            {"name": "y", "datatype": "int"},
        )
    )
    rows = tap_schema_rows(mixed).columns
    assert {r.column_name: r.column_index for r in rows} == {"z": None, "b": 20, "a": 10, "y": None}
    assert [c.name for c in mixed.table_infos()[0].columns] == ["a", "b", "y", "z"]


def test_demo_schema_is_a_real_dp02_subset() -> None:
    demo = load_felis(DEMO)
    assert demo.name == "dp02_dc2_catalogs"
    assert [t.name for t in demo.tables] == ["Object", "ForcedSource", "CcdVisit"]
    obj = demo.table("Object")
    assert 30 <= len(obj.columns) <= 45
    for name in (
        "objectId",
        "coord_ra",
        "coord_dec",
        "detect_isPrimary",
        "tract",
        "patch",
        "refExtendedness",
        "r_psfFlux",
        "r_psfFluxErr",
        "r_psfFlux_flag",
        "r_cModelFlux",
        "r_cModel_flag",
        "u_psfFlux",
        "y_psfFlux",
    ):
        assert obj.column(name) is not None, name
    keys = tap_schema_rows(demo).keys
    assert {(k.key_id, k.from_table, k.target_table) for k in keys} == {
        ("Obj_FS", "dp02_dc2_catalogs.ForcedSource", "dp02_dc2_catalogs.Object"),
        ("CcdV_FS", "dp02_dc2_catalogs.ForcedSource", "dp02_dc2_catalogs.CcdVisit"),
    }
    assert demo.table("CcdVisit").column("obsStart").xtype == "timestamp"  # type: ignore[union-attr]


@needs_sdm
def test_demo_columns_match_dp02_metadata() -> None:
    real = load_felis(SDM / "dp02_dc2.yaml")
    demo = load_felis(DEMO)
    for table in demo.tables:
        original = real.table(table.name)
        for col in table.columns:
            source = original.column(col.name)
            assert source is not None, f"{table.name}.{col.name} is not in DP0.2"
            same = ("datatype", "length", "unit", "ucd", "description", "arraysize", "xtype")
            for attr in same:
                assert getattr(col, attr) == getattr(source, attr), (table.name, col.name, attr)


@needs_sdm
def test_dp02_dc2_loads_at_full_width() -> None:
    schema = load_felis(SDM / "dp02_dc2.yaml")
    assert schema.name == "dp02_dc2_catalogs"
    assert len(schema.tables) == 12
    obj = schema.table("Object")
    assert len(obj.columns) == 991
    assert obj.columns[0].name == "objectId"
    assert obj.table_index == 10

    ra = obj.column("coord_ra")
    assert ra is not None
    assert (ra.votable_datatype, ra.unit, ra.ucd) == ("double", "deg", "pos.eq.ra;meta.main")
    ref_band = obj.column("refBand")
    assert ref_band is not None
    assert (ref_band.votable_datatype, ref_band.arraysize) == ("char", "*")
    skymap = obj.column("skymap")
    assert skymap is not None
    assert (skymap.arraysize, skymap.size) == ("12", 12)
    flux = obj.column("r_psfFlux")
    assert flux is not None
    assert (flux.unit, flux.ucd, flux.principal) == ("nJy", None, False)

    forced = schema.table("ForcedSource")
    fsid = forced.column("forcedSourceId")
    assert fsid is not None
    assert (fsid.principal, fsid.column_index, fsid.ucd) == (True, 100, "meta.id;meta.main")
    assert forced.is_indexed(fsid)
    obs_start = schema.table("CcdVisit").column("obsStart")
    assert obs_start is not None
    assert (obs_start.votable_datatype, obs_start.arraysize, obs_start.xtype) == (
        "char",
        "*",
        "timestamp",
    )
    access = schema.table("ObsCore").column("s_region")
    assert access is not None

    infos = {t.name: t for t in schema.table_infos()}
    assert len(infos["Object"].columns) == 991
    rows = tap_schema_rows(schema)
    assert len(rows.tables) == 12
    assert sum(1 for r in rows.columns if r.table_name == "dp02_dc2_catalogs.Object") == 991
    obj_fs = next(k for k in rows.keys if k.key_id == "Obj_FS")
    assert obj_fs.target_table == "dp02_dc2_catalogs.Object"
    assert [(k.from_column, k.target_column) for k in rows.key_columns if k.key_id == "Obj_FS"] == [
        ("objectId", "objectId")
    ]


@needs_sdm
@pytest.mark.parametrize("name", ["dp02_obscore.yaml", "ivoa_obscore.yaml"])
def test_obscore_schemas_load(name: str) -> None:
    schema = load_felis(SDM / name)
    obscore = schema.table("ObsCore")
    col = obscore.column("dataproduct_type")
    assert col is not None
    assert (col.votable_datatype, col.arraysize, col.std, col.utype) == (
        "char",
        "128*",
        True,
        "ObsDataset.dataProductType",
    )
    calib = obscore.column("calib_level")
    assert calib is not None
    assert calib.nullable is False
    assert len(schema.table_infos()[0].columns) == len(obscore.columns)


def test_tap_schema_describes_itself() -> None:
    schema = tap_schema_schema()
    rows = tap_schema_rows(schema)
    assert rows.schema.schema_name == "TAP_SCHEMA"
    assert [t.table_name for t in rows.tables] == [
        "TAP_SCHEMA.schemas",
        "TAP_SCHEMA.tables",
        "TAP_SCHEMA.columns",
        "TAP_SCHEMA.keys",
        "TAP_SCHEMA.key_columns",
    ]
    columns = [r.column_name for r in rows.columns if r.table_name == "TAP_SCHEMA.columns"]
    assert columns == [
        "table_name",
        "column_name",
        "datatype",
        "arraysize",
        "xtype",
        '"size"',
        "description",
        "utype",
        "unit",
        "ucd",
        "indexed",
        "principal",
        "std",
        "column_index",
    ]  # TAP 1.1 publishes the reserved word delimited
    assert all(r.std == 1 for r in rows.columns)
    name = next(
        r
        for r in rows.columns
        if r.column_name == "table_name" and r.table_name == "TAP_SCHEMA.tables"
    )
    assert (name.datatype, name.arraysize, name.size, name.indexed) == ("char", "128*", 128, 1)
    assert {k.key_id for k in rows.keys} == {"k1", "k2", "k3", "k4", "k5"}


def test_unreadable_files_name_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(FelisError, match=r"bad\.yaml"):
        load_felis(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("name: x\ntables: []\n")
    with pytest.raises(FelisError, match="tables"):
        load_felis(empty)


def test_restricting_a_schema_drops_keys_to_missing_tables() -> None:
    demo = load_felis(DEMO)
    forced_only = demo.with_tables({"ForcedSource"})
    rows = tap_schema_rows(forced_only)
    assert [t.table_name for t in rows.tables] == ["dp02_dc2_catalogs.ForcedSource"]
    assert rows.keys == ()
    assert rows.key_columns == ()
    with_object = tap_schema_rows(demo.with_tables({"ForcedSource", "Object"}))
    assert [k.key_id for k in with_object.keys] == ["Obj_FS"]
