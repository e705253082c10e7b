"""Async TAP against the served demo (embedded default: in-process runner, SQLite, local files).

Clients as users run them: pyvo's ``run_async`` and ``submit_job``/``wait``/``fetch_result``,
STILTS ``tapquery sync=false``, and ``stilts taplint`` in its async stages (QAS, UWS).
Expected rows come from the catalog file read directly with DuckDB.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
import pyvo

from tests.integration.conftest import RunningService
from tests.integration.test_taplint import run_taplint

OBJECT = "dp02_dc2_catalogs.Object"


@pytest.fixture(scope="module")
def first_ids(service: RunningService) -> list[int]:
    con = duckdb.connect(str(Path(service.data_dir) / "catalog.duckdb"), read_only=True)
    try:
        rows = con.execute(
            'SELECT objectId FROM "dp02_dc2_catalogs"."Object" ORDER BY objectId LIMIT 10'
        ).fetchall()
    finally:
        con.close()
    return [int(r[0]) for r in rows]


def test_pyvo_run_async(tap_url: str, first_ids: list[int]) -> None:
    tap = pyvo.dal.TAPService(tap_url)
    result = tap.run_async(f"SELECT TOP 10 objectId FROM {OBJECT} ORDER BY objectId")
    assert [int(x) for x in result.to_table()["objectId"]] == first_ids


def test_pyvo_submit_wait_fetch(tap_url: str, first_ids: list[int]) -> None:
    tap = pyvo.dal.TAPService(tap_url)
    job = tap.submit_job(
        f"SELECT TOP 5 objectId FROM {OBJECT} ORDER BY objectId", runid="pyvo-test"
    )
    assert job.phase == "PENDING"
    job.run()
    job.wait(timeout=60)
    assert job.phase == "COMPLETED"
    assert [int(x) for x in job.fetch_result().to_table()["objectId"]] == first_ids[:5]
    job.delete()


def test_pyvo_error_job(tap_url: str) -> None:
    tap = pyvo.dal.TAPService(tap_url)
    job = tap.submit_job("SELECT nothing FROM nowhere")
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "ERROR"
    with pytest.raises(pyvo.dal.DALQueryError, match="nowhere"):
        job.raise_if_error()


def test_stilts_tapquery_async(tap_url: str, first_ids: list[int]) -> None:
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.fail("stilts is not installed: run `make system-deps` (Debian package stilts)")
    result = subprocess.run(
        [
            stilts,
            "tapquery",
            f"tapurl={tap_url}",
            f"adql=SELECT TOP 10 objectId FROM {OBJECT} ORDER BY objectId",
            "sync=false",
            "ofmt=csv",
            "out=-",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "objectId"
    assert [int(x) for x in lines[1:]] == first_ids


def test_taplint_async_stages_report_no_errors(tap_url: str, artifacts: Path) -> None:
    report = artifacts / "taplint-async.txt"
    output, counts = run_taplint(tap_url, "QAS UWS", report)
    problems = [line for line in output.splitlines() if re.match(r"^[EFW]-", line)]
    summary = f"taplint: {counts}; report in {report}\n" + "\n".join(problems[:60])
    assert counts["errors"] == 0, summary
    assert counts["failures"] == 0, summary
    # The stages really ran jobs (not skipped for lack of an async endpoint).
    assert re.search(r"S-QAS-QNUM-\d+ Successful/submitted TAP queries: (\d+)/\1", output), summary
    assert re.search(r"I-UWS-CJOB-0*1 ", output), summary
