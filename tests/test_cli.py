"""The `tap-service` command as people and scripts use it (real subprocesses)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io.votable import parse_single_table
from fastapi.testclient import TestClient

from tap_service.config import Config
from tap_service.main import create_app
from tap_service.services.catalog import SchemaFileError, publish_schema_files

REPO = Path(__file__).resolve().parents[1]
DEMO_SCHEMA = REPO / "schema" / "dp02_demo.yaml"

STARS_FELIS = """\
name: survey
description: A small survey for ingest tests.
tables:
- name: stars
  description: Stars with positions and a flag.
  primaryKey: "#stars.star_id"
  columns:
  - name: star_id
    "@id": "#stars.star_id"
    datatype: long
    nullable: false
    description: Star identifier.
  - name: ra
    "@id": "#stars.ra"
    datatype: double
    ivoa:unit: deg
    ivoa:ucd: pos.eq.ra;meta.main
    description: Right ascension.
  - name: dec
    "@id": "#stars.dec"
    datatype: double
    ivoa:unit: deg
    ivoa:ucd: pos.eq.dec;meta.main
    description: Declination.
  - name: is_variable
    "@id": "#stars.is_variable"
    datatype: boolean
    description: Known variable.
"""


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tap_service.cli", *args],
        capture_output=True, text=True, check=False, timeout=300, input=stdin,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_adql_prints_sql_for_each_dialect() -> None:
    query = (
        "SELECT TOP 5 objectId FROM dp02_dc2_catalogs.Object WHERE CONTAINS(POINT('ICRS', "
        "coord_ra, coord_dec), CIRCLE('ICRS', 62, -37, 5/3600.)) = 1"
    )
    embedded = run("adql", "--schema", str(DEMO_SCHEMA), query)
    assert embedded.returncode == 0, embedded.stderr
    assert '"dp02_dc2_catalogs"."Object"' in embedded.stdout
    assert "LIMIT 5" in embedded.stdout
    qserv = run("adql", "--dialect", "qserv", "--schema", str(DEMO_SCHEMA), query)
    assert qserv.returncode == 0, qserv.stderr
    assert "scisql_s2PtInCircle(" in qserv.stdout
    assert "0.001388888888888889" in qserv.stdout  # 5/3600. folded to a literal


def test_adql_errors_give_position_and_exit_1() -> None:
    result = run("adql", "SELECT x\nFROM t WHERE")
    assert result.returncode == 1
    assert "line 2" in result.stderr
    unknown = run(
        "adql", "--schema", str(DEMO_SCHEMA), "SELECT coord_raa FROM dp02_dc2_catalogs.Object"
    )
    assert unknown.returncode == 1
    assert "coord_ra" in unknown.stderr  # the suggestion
    refused = run("adql", "--dialect", "qserv", "--schema", str(DEMO_SCHEMA),
                  "SELECT objectId FROM dp02_dc2_catalogs.Object OFFSET 10")  # fmt: skip
    assert refused.returncode == 1
    assert "OFFSET" in refused.stderr


def test_adql_reads_standard_input() -> None:
    result = run("adql", "-", stdin="SELECT a FROM t")
    assert result.returncode == 0, result.stderr
    assert "SELECT" in result.stdout


def test_ingest_then_serve(tmp_path: Path) -> None:
    felis = tmp_path / "survey.yaml"
    felis.write_text(STARS_FELIS)
    good = tmp_path / "stars.csv"
    good.write_text(
        "star_id,ra,dec,is_variable\n"
        "9007199254740993,10.5,-5.25,true\n"
        "9007199254740995,11.0,,false\n"
        "3,12.0,7.0,\n"
    )
    env = {"TAP_DATA_DIR": str(tmp_path / "data")}
    loaded = run("ingest", "--schema", str(felis), "--table", "survey.stars", str(good), env=env)
    assert loaded.returncode == 0, loaded.stderr

    bad = tmp_path / "bad.csv"
    bad.write_text("star_id,ra,dec,is_variable\n4,1.0,2.0,true\n5,not-a-number,2.0,false\n")
    failed = run("ingest", "--schema", str(felis), "--table", "survey.stars", str(bad), env=env)
    assert failed.returncode == 1
    assert "line 3" in failed.stderr
    assert "ra" in failed.stderr

    config = Config(data_dir=tmp_path / "data")
    with TestClient(create_app(config)) as client:
        response = client.post(
            "/api/tap/sync",
            data={"LANG": "ADQL", "QUERY": "SELECT * FROM survey.stars ORDER BY star_id"},
        )
        assert response.status_code == 200, response.text
        table = parse_single_table(io.BytesIO(response.content)).to_table()
        # The failed ingest left the good load untouched.
        assert [int(v) for v in table["star_id"]] == [3, 9007199254740993, 9007199254740995]
        assert table["dec"].mask.tolist() == [False, False, True]
        assert table["is_variable"].mask.tolist()[0] is True
        assert bool(table["is_variable"][1]) is True
        tables = client.get("/api/tap/tables/survey.stars")
        assert "pos.eq.ra;meta.main" in tables.text


def test_schema_files_are_published_before_serving(tmp_path: Path) -> None:
    felis = tmp_path / "survey.yaml"
    felis.write_text(STARS_FELIS)
    config = Config(data_dir=tmp_path / "data", schema_files=[felis])
    assert publish_schema_files(config) == ["survey"]
    with TestClient(create_app(config)) as client:
        response = client.post(
            "/api/tap/sync",
            data={"LANG": "ADQL", "QUERY": "SELECT COUNT(*) AS n FROM survey.stars"},
        )
        assert response.status_code == 200, response.text
        assert int(parse_single_table(io.BytesIO(response.content)).array["n"][0]) == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntables: 3\n")
    with pytest.raises(SchemaFileError, match=r"broken\.yaml"):
        publish_schema_files(config, [broken])
