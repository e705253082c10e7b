"""STILTS tapquery (the TAP client code TOPCAT uses) against the running service."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def test_tapquery_sync_cone_search_as_csv(tap_url: str) -> None:
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.fail("stilts is not installed: run `make system-deps` (Debian package stilts)")
    result = subprocess.run(
        [
            stilts, "tapquery", f"tapurl={tap_url}", "sync=true", "ofmt=csv", "maxrec=1000",
            "adql=SELECT objectId, coord_ra, coord_dec FROM dp02_dc2_catalogs.Object "
            "WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), "
            "CIRCLE('ICRS', 62.0, -37.0, 0.2)) = 1 ORDER BY objectId",
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "objectId,coord_ra,coord_dec"
    ids = [int(line.split(",")[0]) for line in lines[1:]]
    assert ids == sorted(ids)
    assert len(ids) > 0
    assert all(i > 2**53 for i in ids)  # 64-bit ids survive TOPCAT's reader exactly


def test_tapquery_reports_adql_errors(tap_url: str) -> None:
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.fail("stilts is not installed: run `make system-deps` (Debian package stilts)")
    result = subprocess.run(
        [stilts, "tapquery", f"tapurl={tap_url}", "sync=true", "ofmt=csv",
         "adql=SELECT nosuch FROM dp02_dc2_catalogs.Object"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Unknown column" in result.stderr + result.stdout
