"""Rubin's own DP0.2 Felis schemas served at their real width, from generated rows.

``tap-service generate`` fills every table of dp02_dc2.yaml and dp02_obscore.yaml (the files
Rubin publishes, read from /work/shared, never copied here) with a few hundred deterministic
rows; the service then publishes 13 tables, among them Object with its 991 columns.  Clients
read it the way they read Rubin's: pyvo, astropy, TAP_SCHEMA, VOSI /tables and STILTS taplint.
Expected metadata comes from the YAML files themselves (read with PyYAML here, not with the
service's Felis loader) and from TAP_SCHEMA as the service answers it.
"""

from __future__ import annotations

import io
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pyvo
import requests
import yaml
from astropy.io.votable import parse_single_table

from tests.integration.conftest import RunningService, cli, start_service, stop_service
from tests.integration.test_taplint import (
    NOT_RUN,
    VALIDATOR_MISTAKES,
    report_key,
    reports_of,
    run_taplint,
    stages_except,
)

RUBIN_SCHEMAS = Path("/work/shared/rubin-sdm/schemas")
DP02 = RUBIN_SCHEMAS / "dp02_dc2.yaml"
DP02_OBSCORE = RUBIN_SCHEMAS / "dp02_obscore.yaml"
ROWS = 200
SCHEMA = "dp02_dc2_catalogs"
OBJECT = f"{SCHEMA}.Object"
VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"

# Stages run on this service: everything but what the demo cannot run yet for lack of a
# feature (UPL: uploads; LOC: no ivoa.obsplan).  OBS runs, and finds no ObsCore declared:
# Rubin's ivoa.ObsCore does not conform to ObsCore 1.1 (TAP_OBSCORE_DECLARE=auto).
REAL_NOT_RUN = {stage: why for stage, why in NOT_RUN.items() if stage != "OBS"}
REAL_STAGES = stages_except(REAL_NOT_RUN)

pytestmark = pytest.mark.skipif(
    not DP02.exists() or not DP02_OBSCORE.exists(),
    reason=f"Rubin's Felis schemas are not in {RUBIN_SCHEMAS}",
)


def _yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        document: dict[str, Any] = yaml.safe_load(stream)
    return document


@pytest.fixture(scope="module")
def felis() -> dict[str, Any]:
    return _yaml(DP02)


@pytest.fixture(scope="module")
def obscore_felis() -> dict[str, Any]:
    return _yaml(DP02_OBSCORE)


@dataclass(frozen=True)
class RealService:
    running: RunningService
    timings: dict[str, float]
    log: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def real_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealService]:
    data_dir = tmp_path_factory.mktemp("real-schema")
    env = {**os.environ, "TAP_DATA_DIR": str(data_dir)}
    started = time.perf_counter()
    result = cli(
        "generate",
        "--felis",
        str(DP02),
        "--felis",
        str(DP02_OBSCORE),
        "--rows",
        str(ROWS),
        env=env,
    )
    generated = time.perf_counter()
    assert result.returncode == 0, f"tap-service generate failed:\n{result.stderr}"
    log = tmp_path_factory.mktemp("real-logs") / "serve.log"
    running = start_service(data_dir, log)
    timings = {"generate": generated - started, "start": time.perf_counter() - generated}
    yield RealService(running, timings, log, env)
    stop_service(running)


@pytest.fixture(scope="module")
def tap_url(real_service: RealService) -> str:
    return real_service.running.base_url


@pytest.fixture(scope="module")
def tap(tap_url: str) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(tap_url)


def _table(felis: dict[str, Any], name: str) -> dict[str, Any]:
    table: dict[str, Any] = next(t for t in felis["tables"] if t["name"] == name)
    return table


def _text(value: object) -> str | None:
    """A Felis annotation as TAP_SCHEMA holds it: stripped, empty meaning absent."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _expected_votable(column: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(datatype, arraysize, xtype) from the Felis YAML, by Felis' documented defaults."""
    felis_type = column["datatype"]
    datatype = (
        column.get("votable:datatype")
        or {
            "boolean": "boolean",
            "byte": "unsignedByte",
            "short": "short",
            "int": "int",
            "long": "long",
            "float": "float",
            "double": "double",
            "char": "char",
            "string": "char",
            "text": "char",
            "timestamp": "char",
            "unicode": "unicodeChar",
            "binary": "unsignedByte",
        }[felis_type]
    )
    arraysize = _text(column.get("votable:arraysize"))
    length = column.get("length")
    if arraysize is None and length is not None and length > 1:
        arraysize = f"{length}" if felis_type == "char" else f"{length}*"
    if arraysize is None and felis_type in ("timestamp", "text"):
        arraysize = "*"
    xtype = _text(column.get("votable:xtype")) or (
        "timestamp" if felis_type == "timestamp" else None
    )
    return datatype, arraysize, xtype


def test_startup_is_quick(real_service: RealService) -> None:
    timings = real_service.timings
    print(f"generate {timings['generate']:.1f} s, start {timings['start']:.1f} s")
    assert timings["generate"] < 60, timings


def test_object_at_full_width_carries_tap_schema_metadata(
    tap_url: str, tap: pyvo.dal.TAPService, felis: dict[str, Any]
) -> None:
    yaml_columns = _table(felis, "Object")["columns"]
    assert len(yaml_columns) == 991

    schema_rows = tap.run_sync(
        f"SELECT * FROM TAP_SCHEMA.columns WHERE table_name = '{OBJECT}' ORDER BY column_index",
        maxrec=5000,
    ).to_table()
    assert len(schema_rows) == 991

    response = requests.post(
        f"{tap_url}/sync",
        data={"LANG": "ADQL", "QUERY": f"SELECT TOP 10 * FROM {OBJECT}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text[:2000]
    # astropy and pyvo both read it.
    table = parse_single_table(io.BytesIO(response.content))
    assert len(table.fields) == 991
    assert len(table.array) == 10
    results = tap.run_sync(f"SELECT TOP 10 * FROM {OBJECT}")
    assert len(results) == 10
    assert len(results.fieldnames) == 991
    assert list(results["objectId"]) == list(table.array["objectId"])
    assert all(int(i) > 2**53 for i in results["objectId"])  # exact 64-bit ids

    # Field by field, the raw XML attributes against TAP_SCHEMA and against the YAML.
    root = ET.fromstring(response.content)
    fields = root.findall(f".//{VOT}FIELD")
    assert [f.get("name") for f in fields] == [str(n) for n in schema_rows["column_name"]]
    assert [f.get("name") for f in fields] == [c["name"] for c in yaml_columns]
    mismatches: list[str] = []
    for field, row, column in zip(fields, schema_rows, yaml_columns, strict=True):
        description = field.find(f"{VOT}DESCRIPTION")
        got = {
            "datatype": field.get("datatype"),
            "arraysize": field.get("arraysize"),
            "unit": field.get("unit"),
            "ucd": field.get("ucd"),
            "utype": field.get("utype"),
            "xtype": field.get("xtype"),
            "description": description.text if description is not None else None,
        }
        from_tap_schema = {key: _masked(row[key]) for key in got}
        datatype, arraysize, xtype = _expected_votable(column)
        from_yaml = {
            "datatype": datatype,
            "arraysize": arraysize,
            "unit": _text(column.get("ivoa:unit")) or _text(column.get("fits:tunit")),
            "ucd": _text(column.get("ivoa:ucd")),
            "utype": _text(column.get("votable:utype")),
            "xtype": xtype,
            "description": _text(column.get("description")),
        }
        if got != from_tap_schema:
            mismatches.append(f"{column['name']}: FIELD {got} != TAP_SCHEMA {from_tap_schema}")
        if got != from_yaml:
            mismatches.append(f"{column['name']}: FIELD {got} != Felis {from_yaml}")
    assert mismatches == [], "\n".join(mismatches[:20])
    # The metadata is not trivially empty: the real schema's annotations made it through.
    assert sum(1 for f in fields if f.get("unit")) > 400
    assert sum(1 for f in fields if f.get("ucd")) >= 19  # Object has few UCDs in DP0.2
    assert all(f.find(f"{VOT}DESCRIPTION") is not None for f in fields)

    # TAP_SCHEMA's own flags, against the YAML: principal, std, indexed (the primary key), and
    # column_index in document order (Object declares no tap:column_index).
    flags = [
        (int(r["principal"]), int(r["std"]), int(r["indexed"]), int(r["column_index"]))
        for r in schema_rows
    ]
    expected_flags = [
        (
            int(c.get("tap:principal", 0)),
            int(c.get("tap:std", 0)),
            int(c["name"] == "objectId"),
            position,
        )
        for position, c in enumerate(yaml_columns, start=1)
    ]
    assert flags == expected_flags  # DP0.2's Object marks no column principal


def test_tap_schema_flags_of_every_table(
    tap: pyvo.dal.TAPService, felis: dict[str, Any], obscore_felis: dict[str, Any]
) -> None:
    """principal, std and column_index as each table of the YAML declares them."""
    rows = tap.run_sync(
        "SELECT table_name, column_name, principal, std, column_index FROM TAP_SCHEMA.columns "
        f"WHERE table_name LIKE '{SCHEMA}.%' OR table_name = 'ivoa.ObsCore'",
        maxrec=10_000,
    ).to_table()
    got = {
        (str(r["table_name"]), str(r["column_name"])): (
            int(r["principal"]),
            int(r["std"]),
            None if _masked(r["column_index"]) is None else int(r["column_index"]),
        )
        for r in rows
    }
    expected = {}
    for schema, document in ((SCHEMA, felis), ("ivoa", obscore_felis)):
        for table in document["tables"]:
            declared = any("tap:column_index" in c for c in table["columns"])
            for position, c in enumerate(table["columns"], start=1):
                expected[(f"{schema}.{table['name']}", c["name"])] = (
                    int(c.get("tap:principal", 0)),
                    int(c.get("tap:std", 0)),
                    c.get("tap:column_index") if declared else position,
                )
    assert got == expected
    assert sum(v[0] for v in got.values()) > 100
    assert sum(v[1] for v in got.values()) > 30


def _masked(value: Any) -> str | None:
    if value is None or getattr(value, "mask", False) is True or str(value) in ("", "--"):
        return None
    return str(value)


def test_tables_endpoint_lists_every_column(tap_url: str, felis: dict[str, Any]) -> None:
    response = requests.get(f"{tap_url}/tables/{OBJECT}", timeout=60)
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    names = [c.findtext("name") for c in root.iter("column")]
    assert names == [c["name"] for c in _table(felis, "Object")["columns"]]

    everything = ET.fromstring(requests.get(f"{tap_url}/tables", timeout=60).content)
    tables = {t.findtext("name") for t in everything.iter("table")}
    expected = {f"{SCHEMA}.{t['name']}" for t in felis["tables"]} | {"ivoa.ObsCore"}
    assert expected <= tables
    assert {t.get("type") for t in everything.iter("table")} == {"table"}


def test_tap_schema_keys_match_the_foreign_keys(
    tap: pyvo.dal.TAPService, felis: dict[str, Any]
) -> None:
    expected: set[tuple[str, str, str, str, str]] = set()
    names = {c["@id"].lstrip("#"): c["name"] for t in felis["tables"] for c in t["columns"]}
    for table in felis["tables"]:
        for constraint in table.get("constraints", []):
            if constraint["@type"] != "ForeignKey":
                continue
            for source, target in zip(
                constraint["columns"], constraint["referencedColumns"], strict=True
            ):
                expected.add(
                    (
                        constraint["name"],
                        f"{SCHEMA}.{table['name']}",
                        f"{SCHEMA}.{target.lstrip('#').split('.')[0]}",
                        names[source.lstrip("#")],
                        names[target.lstrip("#")],
                    )
                )
    assert len(expected) >= 8
    rows = tap.run_sync(
        "SELECT k.key_id, k.from_table, k.target_table, c.from_column, c.target_column "
        "FROM TAP_SCHEMA.keys AS k JOIN TAP_SCHEMA.key_columns AS c ON k.key_id = c.key_id "
        f"WHERE k.from_table LIKE '{SCHEMA}.%'"
    ).to_table()
    got = {tuple(str(row[n]) for n in row.colnames) for row in rows}
    assert got == expected


def test_generated_foreign_keys_join(tap: pyvo.dal.TAPService, felis: dict[str, Any]) -> None:
    """Every declared foreign key value finds its target row (joins give rows back)."""
    for table in felis["tables"]:
        for constraint in table.get("constraints", []):
            if constraint["@type"] != "ForeignKey":
                continue
            (source,) = constraint["columns"]
            (target,) = constraint["referencedColumns"]
            target_table, target_column = target.lstrip("#").split(".")
            source_column = source.lstrip("#").split(".")[1]
            query = (
                f"SELECT COUNT(*) AS n FROM {SCHEMA}.{table['name']} AS s "
                f"JOIN {SCHEMA}.{target_table} AS t ON s.{source_column} = t.{target_column}"
            )
            n = int(tap.run_sync(query).to_table()["n"][0])
            assert n == ROWS, (constraint["name"], n)


def test_positions_are_on_the_sky(tap: pyvo.dal.TAPService) -> None:
    row = tap.run_sync(
        f"SELECT MIN(coord_ra) AS ra0, MAX(coord_ra) AS ra1, MIN(coord_dec) AS dec0, "
        f"MAX(coord_dec) AS dec1, COUNT(DISTINCT objectId) AS ids FROM {OBJECT}"
    ).to_table()[0]
    assert 0 <= row["ra0"] <= row["ra1"] < 360
    assert -90 <= row["dec0"] <= row["dec1"] <= 90
    assert row["ids"] == ROWS
    cone = tap.run_sync(
        f"SELECT COUNT(*) AS n FROM {OBJECT} WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), "
        "CIRCLE('ICRS', 62.5, -36, 20)) = 1"
    ).to_table()
    assert int(cone["n"][0]) > 0


def _obscore_defects(obscore_felis: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Columns of Rubin's ObsCore with a utype (all unprefixed), and the mandatory ones missing.

    Rubin's file departs from ObsCore 1.1: its 30 utypes lack the ``obscore:`` prefix, and it
    has no ``access_estsize`` nor ``pol_states`` column.
    """
    (table,) = obscore_felis["tables"]
    utypes = {c["name"]: c["votable:utype"] for c in table["columns"] if c.get("votable:utype")}
    assert not any(u.lower().startswith("obscore:") for u in utypes.values())
    missing = {"access_estsize", "pol_states"} - {c["name"] for c in table["columns"]}
    return set(utypes), missing


def test_obscore_is_not_declared_and_the_log_says_why(
    real_service: RealService, tap_url: str, obscore_felis: dict[str, Any]
) -> None:
    """TAP_OBSCORE_DECLARE=auto: Rubin's ivoa.ObsCore does not conform, so no ObsCore 1.1 claim."""
    document = requests.get(f"{tap_url}/capabilities", timeout=30).content
    assert b"ObsCore" not in document
    capabilities = ET.fromstring(document)
    tap = next(
        c
        for c in capabilities.iter("capability")
        if c.get("standardID") == "ivo://ivoa.net/std/TAP"
    )
    assert tap.find("language") is not None  # children found as named
    assert tap.findall("dataModel") == []
    assert [
        t
        for t in ET.fromstring(requests.get(f"{tap_url}/tables", timeout=60).content).iter("table")
        if t.findtext("name") == "ivoa.ObsCore"
    ]  # still published

    with_utype, missing = _obscore_defects(obscore_felis)
    assert len(with_utype) == 30
    assert missing == {"access_estsize", "pol_states"}
    warnings = [
        line for line in real_service.log.read_text().splitlines() if "ivoa.ObsCore" in line
    ]
    assert len(warnings) == 1, warnings  # one line, every defect
    (warning,) = warnings
    assert "WARNING" in warning
    assert "not declared as ObsCore 1.1" in warning
    assert "32 defects" in warning
    for name in sorted(missing):
        assert f"mandatory column {name} is missing" in warning
    for name in sorted(with_utype):
        assert f"column {name}: utype '" in warning

    # The same verdict from the command line, on the served catalog and on the file.
    for args in (("check-obscore",), ("check-obscore", "--felis", str(DP02_OBSCORE))):
        result = cli(*args, env=real_service.env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "does not conform to ObsCore 1.1 (32 defects" in result.stdout
        assert len([line for line in result.stdout.splitlines() if line.startswith("  ")]) == 32


def test_taplint_real_schema(tap_url: str, artifacts: Path) -> None:
    """Every stage but UPL and LOC: nothing reported but the validator's own mistake.

    OBS runs and, ObsCore not being declared, checks nothing (I-OBS-NODM): the 32 errors it
    found in Rubin's ObsCore while the service claimed ObsCore 1.1 are now the start-up warning.
    """
    report = artifacts / "taplint-real-schema.txt"
    output, counts = run_taplint(tap_url, REAL_STAGES, report, maxrepeat=200)
    reports = reports_of(output)
    accepted = {report_key(line) for line in VALIDATOR_MISTAKES}
    problems = [line for line in reports if report_key(line) not in accepted]
    summary = f"taplint {REAL_STAGES}: {counts}; report in {report}\n" + "\n".join(problems[:60])
    assert problems == [], summary
    assert sorted(map(report_key, reports)) == sorted(accepted), summary  # the list is exact
    assert counts == {"errors": len(VALIDATOR_MISTAKES), "warnings": 0, "failures": 0}, summary
    for stage in REAL_STAGES.split():
        assert re.search(rf"^Section {stage}:", output, re.M), f"stage {stage} did not run"
    assert re.search(r"^I-OBS-NODM-\d+ ", output, re.M), summary
    totals = re.search(r"^Totals:.*$", output, re.M)
    assert totals is not None
    print(totals[0])
