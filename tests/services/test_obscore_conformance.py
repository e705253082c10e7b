"""When /capabilities declares ObsCore 1.1: the conformance check and TAP_OBSCORE_DECLARE.

The demo's ObsCore (schema/dp02_obscore.yaml) conforms; Rubin's published dp02_obscore.yaml
does not (its utypes lack the ``obscore:`` prefix, access_estsize and pol_states are missing).
The expected defects of Rubin's file are derived from the YAML with PyYAML, not with the
service's Felis loader.
"""

from __future__ import annotations

import dataclasses
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tap_service.adql.catalog import ColumnInfo, TableInfo
from tap_service.adql.dialects.embedded import setup_statements
from tap_service.config import Config
from tap_service.factory import Factory
from tap_service.felis.model import load_felis
from tap_service.services.demo_obscore import OBSCORE_SCHEMA_PATH
from tap_service.services.generated_catalog import build_generated_catalog
from tap_service.services.obscore import (
    MANDATORY,
    OBSCORE_1_1,
    OPTIONAL,
    decide,
    obscore_defects,
)
from tap_service.services.vosi import capabilities_document
from tap_service.storage.embedded import EmbeddedDatabase

RUBIN_OBSCORE = Path("/work/shared/rubin-sdm/schemas/dp02_obscore.yaml")
needs_rubin = pytest.mark.skipif(
    not RUBIN_OBSCORE.exists(), reason=f"Rubin's Felis schema is not at {RUBIN_OBSCORE}"
)
OBSCORE_ID = "ivo://ivoa.net/std/ObsCore#core-1.1"
LOGGER = "tap_service.factory"


def _obscore(path: Path) -> TableInfo:
    (table,) = load_felis(path).table_infos()
    assert table.qualified_name == "ivoa.ObsCore"
    return table


@pytest.fixture(scope="module")
def demo() -> TableInfo:
    return _obscore(OBSCORE_SCHEMA_PATH)


def _with(table: TableInfo, name: str, /, **changes: Any) -> TableInfo:
    """``table`` with column ``name`` changed (or removed when ``changes`` is {"drop": True})."""
    columns: list[ColumnInfo] = []
    for column in table.columns:
        if column.name != name:
            columns.append(column)
        elif not changes.get("drop"):
            columns.append(dataclasses.replace(column, **changes))
    assert len(columns) >= len(table.columns) - 1
    return dataclasses.replace(table, columns=tuple(columns))


def test_the_standard_lists_are_obscore_1_1s() -> None:
    assert len(MANDATORY) == 30
    assert len(OPTIONAL) == 30
    names = [c.name for c in (*MANDATORY, *OPTIONAL)]
    assert len(set(names)) == 60
    assert {"access_estsize", "pol_states", "s_xel1", "pol_xel"} <= {c.name for c in MANDATORY}


def test_the_demo_obscore_conforms(demo: TableInfo) -> None:
    assert obscore_defects(demo) == []
    declaration = decide([demo], "auto")
    assert declaration.declared
    assert declaration.data_models == [OBSCORE_1_1]
    assert declaration.warning("auto") is None
    # The demo has every mandatory column, plus optional and custom (lsst_*) ones.
    names = {c.name for c in demo.columns}
    assert {c.name for c in MANDATORY} <= names
    assert names - {c.name for c in (*MANDATORY, *OPTIONAL)}


def _rubin_expected_defects() -> tuple[set[str], set[str]]:
    with RUBIN_OBSCORE.open(encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    (table,) = document["tables"]
    with_utype = {c["name"] for c in table["columns"] if c.get("votable:utype")}
    missing = {"access_estsize", "pol_states"} - {c["name"] for c in table["columns"]}
    return with_utype, missing


@needs_rubin
def test_rubins_obscore_has_the_32_defects_taplint_reports() -> None:
    table = _obscore(RUBIN_OBSCORE)
    defects = obscore_defects(table)
    with_utype, missing = _rubin_expected_defects()
    assert len(with_utype) == 30
    assert missing == {"access_estsize", "pol_states"}
    assert len(defects) == 32
    assert sorted(defects[:2]) == sorted(
        d for d in defects if d.startswith("mandatory column ") and d.endswith(")")
    )
    assert {d.split()[2] for d in defects[:2]} == missing
    assert "unit kbyte" in next(d for d in defects if "access_estsize" in d)
    wrong = {d.split()[1].rstrip(":") for d in defects[2:]}
    assert wrong == with_utype
    for defect in defects[2:]:
        assert ": utype '" in defect
        assert "expected 'obscore:" in defect
        assert defect.endswith("(add the 'obscore:' prefix)")
    declaration = decide([table], "auto")
    assert not declaration.declared
    assert declaration.data_models == []
    assert declaration.defects == tuple(defects)


def test_utypes_and_ucds_compare_case_insensitively_units_exactly(demo: TableInfo) -> None:
    shouting = _with(demo, "dataproduct_type", utype="OBSCORE:obsdataset.DATAPRODUCTTYPE")
    assert obscore_defects(shouting) == []
    ucd = _with(demo, "s_ra", ucd="POS.EQ.RA")
    assert obscore_defects(ucd) == []
    renamed = _with(demo, "s_ra", name="S_RA")  # column names too
    assert obscore_defects(renamed) == []
    unit = _with(demo, "s_ra", unit="Deg")
    assert obscore_defects(unit) == ["column s_ra: unit 'Deg', expected 'deg'"]


@pytest.mark.parametrize(
    ("column", "changes", "defect"),
    [
        (
            "calib_level",
            {"utype": None},
            "column calib_level: utype None, expected 'obscore:ObsDataset.calibLevel'",
        ),
        (
            "obs_id",
            {"utype": "obscore:DataID.title"},
            "column obs_id: utype 'obscore:DataID.title', expected 'obscore:DataID.observationID'",
        ),
        (
            "t_min",
            {"ucd": "time.start"},
            "column t_min: UCD 'time.start', expected 'time.start;obs.exposure'",
        ),
        ("t_min", {"unit": None}, "column t_min: unit None, expected 'd'"),
        ("calib_level", {"unit": "s"}, "column calib_level: unit 's', expected None"),
        (
            "access_estsize",
            {"datatype": "double"},
            "column access_estsize: datatype 'double', expected short or int or long",
        ),
        (
            "s_ra",
            {"datatype": "char"},
            "column s_ra: datatype 'char', expected float or double",
        ),
        (
            "s_region",
            {"datatype": "double"},
            "column s_region: datatype 'double', expected char or unicodeChar",
        ),
        (  # an optional standard column is checked when present
            "obs_title",
            {"utype": "DataID.title"},
            "column obs_title: utype 'DataID.title', expected 'obscore:DataID.title' "
            "(add the 'obscore:' prefix)",
        ),
    ],
)
def test_each_metadata_defect_is_named(
    demo: TableInfo, column: str, changes: dict[str, Any], defect: str
) -> None:
    assert obscore_defects(_with(demo, column, **changes)) == [defect]


def test_compatible_datatypes_are_accepted(demo: TableInfo) -> None:
    table = _with(_with(demo, "calib_level", datatype="short"), "s_fov", datatype="float")
    table = _with(table, "obs_id", datatype="unicodeChar")
    assert obscore_defects(table) == []


def test_missing_columns_come_first_in_the_standards_order(demo: TableInfo) -> None:
    table = _with(_with(demo, "pol_xel", drop=True), "dataproduct_type", drop=True)
    table = _with(table, "s_dec", unit="rad")
    defects = obscore_defects(table)
    assert [d.split(" (")[0] for d in defects] == [
        "mandatory column dataproduct_type is missing",
        "mandatory column pol_xel is missing",
        "column s_dec: unit 'rad', expected 'deg'",
    ]
    # Dropping an optional or custom column is no defect.
    assert obscore_defects(_with(_with(demo, "obs_title", drop=True), "lsst_band", drop=True)) == []


def test_modes(demo: TableInfo) -> None:
    broken = _with(demo, "pol_states", drop=True)
    other = dataclasses.replace(demo, schema="dp02", name="dp02.Visit")
    assert decide([other, demo], "auto").declared
    assert decide([demo], "never").data_models == []
    assert decide([], "auto") == decide([other], "always")
    assert not decide([other], "always").declared  # no ivoa.ObsCore, nothing to declare
    assert decide([other], "auto").warning("auto") is None

    refused = decide([broken], "auto")
    assert not refused.declared
    message = refused.warning("auto")
    assert message is not None
    assert "not declared as ObsCore 1.1" in message
    assert "mandatory column pol_states is missing" in message
    forced = decide([broken], "always")
    assert forced.declared
    assert forced.data_models == [OBSCORE_1_1]
    assert forced.defects == refused.defects
    assert "TAP_OBSCORE_DECLARE=always declares it" in (forced.warning("always") or "")
    assert decide([broken], "never").warning("never") is None


# -- the factory: the decision from TAP_SCHEMA, the start-up warning, /capabilities ----------


def _factory(tmp_path: Path, felis: Path, **settings: Any) -> Factory:
    db = EmbeddedDatabase(tmp_path, setup_statements=setup_statements())
    try:
        build_generated_catalog(db, [load_felis(felis)], rows=5, seed=1)
    finally:
        db.close()
    return Factory(Config(data_dir=tmp_path, **settings))


@pytest.fixture
def demo_factory(tmp_path: Path) -> Iterator[Factory]:
    factory = _factory(tmp_path, OBSCORE_SCHEMA_PATH)
    yield factory
    factory.close()


@pytest.fixture
def rubin_factory(tmp_path: Path) -> Iterator[Factory]:
    if not RUBIN_OBSCORE.exists():
        pytest.skip(f"Rubin's Felis schema is not at {RUBIN_OBSCORE}")
    factory = _factory(tmp_path, RUBIN_OBSCORE)
    yield factory
    factory.close()


def _declared_models(factory: Factory) -> list[str | None]:
    document = capabilities_document(
        factory.config, "https://example.org/tap", data_models=factory.data_models()
    )
    root = ET.fromstring(document)
    return [(e.get("ivo-id")) for e in root.iter("dataModel")]


def test_a_conforming_table_from_tap_schema_is_declared(
    demo_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        demo_factory.warm_up()
    assert _declared_models(demo_factory) == [OBSCORE_ID]
    assert [r for r in caplog.records if r.name == LOGGER] == []


def test_rubins_table_is_not_declared_and_one_warning_lists_every_defect(
    rubin_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rubin_factory.warm_up()
        assert _declared_models(rubin_factory) == []
        assert _declared_models(rubin_factory) == []  # decided once, warned once
    (record,) = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "32 defects" in message
    with_utype, missing = _rubin_expected_defects()
    for name in missing:
        assert f"mandatory column {name} is missing" in message
    for name in with_utype:
        assert f"column {name}: utype '" in message
    assert message.count("(add the 'obscore:' prefix)") == 30


def test_always_declares_rubins_table_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if not RUBIN_OBSCORE.exists():
        pytest.skip(f"Rubin's Felis schema is not at {RUBIN_OBSCORE}")
    factory = _factory(tmp_path, RUBIN_OBSCORE, obscore_declare="always")
    try:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            factory.warm_up()
        assert _declared_models(factory) == [OBSCORE_ID]
        (record,) = [r for r in caplog.records if r.name == LOGGER]
        assert "declares it in /capabilities anyway (32 defects" in record.getMessage()
    finally:
        factory.close()


def test_never_declares_even_a_conforming_table(tmp_path: Path) -> None:
    factory = _factory(tmp_path, OBSCORE_SCHEMA_PATH, obscore_declare="never")
    try:
        assert _declared_models(factory) == []
    finally:
        factory.close()


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAP_OBSCORE_DECLARE", "never")
    assert Config().obscore_declare == "never"
    monkeypatch.setenv("TAP_OBSCORE_DECLARE", "sometimes")
    with pytest.raises(ValueError, match="auto"):
        Config()


def test_check_obscore_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tap_service.cli import main

    assert main(["check-obscore", "--felis", str(OBSCORE_SCHEMA_PATH)]) == 0
    assert "conforms to ObsCore 1.1" in capsys.readouterr().out

    broken = tmp_path / "broken.yaml"
    with OBSCORE_SCHEMA_PATH.open(encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    (table,) = document["tables"]
    table["columns"] = [c for c in table["columns"] if c["name"] != "pol_xel"]
    next(c for c in table["columns"] if c["name"] == "s_ra")["ivoa:unit"] = "rad"
    broken.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert main(["check-obscore", "--felis", str(broken)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "does not conform to ObsCore 1.1 (2 defects" in lines[0]
    assert [line.split(" (")[0] for line in lines[1:]] == [
        "  mandatory column pol_xel is missing",
        "  column s_ra: unit 'rad', expected 'deg'",
    ]

    (table,) = document["tables"]
    table["name"] = "NotObsCore"
    broken.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert main(["check-obscore", "--felis", str(broken)]) == 1
    assert "no ivoa.ObsCore table" in capsys.readouterr().out
