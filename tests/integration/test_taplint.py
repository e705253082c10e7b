"""STILTS taplint, the IVOA validator TOPCAT's authors maintain, against the running service.

Every stage taplint 3.4.7 has runs here (``taplint help=stages``), except those in
``NOT_RUN``, each with its reason: remove a stage from ``NOT_RUN`` once the service supports
it and the stage list grows by itself.  The async stages (QAS, UWS) also run in
tests/integration/test_async_*.py against each runner; the real-schema service (DP0.2's own
Felis files, generated rows) is linted in test_real_schema.py with the same helpers.
The full report is kept under test-artifacts/ so a failure can be read in CI output.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Collection, Mapping
from pathlib import Path

import pytest

ALL_STAGES = (
    *("TMV", "TME", "TMS", "TMC", "CPV", "CAP", "AVV", "QGE"),
    *("QPO", "QAS", "UWS", "MDQ", "OBS", "LOC", "UPL", "EXA"),
)
"""Every stage of Debian's STILTS 3.4.7 taplint, in its own order."""

NOT_RUN: Mapping[str, str] = {
    "LOC": "ObsLocTAP: this service publishes no ivoa.obsplan table, and taplint reports a "
    "failure (F-LOC-NOTP-01) instead of skipping the stage",
}


def stages_except(not_run: Collection[str]) -> str:
    return " ".join(stage for stage in ALL_STAGES if stage not in not_run)


STAGES = stages_except(NOT_RUN)

# Reports that are the validator's own mistakes, each with the reason.  Debian's STILTS 3.4.7
# predates the ADQL 2.1 Recommendation, which defines the COALESCE feature key; newer STILTS
# releases know it.
VALIDATOR_MISTAKES = {
    "E-CAP-KEYX-01 Unknown standard feature key "
    '"ivo://ivoa.net/std/TAPRegExt#features-adql-conditional" for language ADQL',
}


def reports_of(output: str) -> list[str]:
    """taplint's error, warning and failure lines."""
    return [line for line in output.splitlines() if re.match(r"^[EFW]-", line)]


def report_key(line: str) -> str:
    """A report without its sequence number, whose width depends on ``maxrepeat``."""
    return re.sub(r"^([EFW]-[A-Z0-9]{3}-[A-Z0-9]{4})-\d+ ", r"\1 ", line)


def run_taplint(
    tap_url: str, stages: str, report: Path, *, maxrepeat: int = 20
) -> tuple[str, dict[str, int]]:
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.fail("stilts is not installed: run `make system-deps` (Debian package stilts)")
    result = subprocess.run(
        [
            stilts,
            "taplint",
            f"tapurl={tap_url}",
            f"stages={stages}",
            f"maxrepeat={maxrepeat}",
            "format=text",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    report.write_text(output)
    totals = re.search(
        r"Totals:\s*Errors:\s*(\d+);\s*Warnings:\s*(\d+);\s*Infos:\s*(\d+);"
        r"\s*Summaries:\s*(\d+);\s*Failures:\s*(\d+)",
        output,
    )
    assert totals, f"taplint printed no totals (exit {result.returncode}):\n{output[-3000:]}"
    errors, warnings, _infos, _summaries, failures = (int(x) for x in totals.groups())
    return output, {"errors": errors, "warnings": warnings, "failures": failures}


def test_taplint_all_stages_report_nothing(tap_url: str, artifacts: Path) -> None:
    report = artifacts / "taplint-all.txt"
    output, counts = run_taplint(tap_url, STAGES, report)
    reports = reports_of(output)
    problems = [line for line in reports if line not in VALIDATOR_MISTAKES]
    summary = f"taplint {STAGES}: {counts}; report in {report}\n" + "\n".join(problems[:60])
    assert problems == [], summary
    # The accepted list is exact: each entry is reported (CAP runs), and nothing else is.
    assert sorted(reports) == sorted(VALIDATOR_MISTAKES), summary
    assert counts == {"errors": len(VALIDATOR_MISTAKES), "warnings": 0, "failures": 0}, summary
    for stage in STAGES.split():
        assert re.search(rf"^Section {stage}:", output, re.M), f"stage {stage} did not run"
