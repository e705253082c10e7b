"""STILTS taplint, the IVOA validator TOPCAT's authors maintain, against the running service.

The metadata, capability, sync-query, upload and examples stages run here; the async stages
(QAS, UWS) run in tests/integration/test_async_*.py against each runner.  UPL uploads tables
inline (its queries go through /async).
The full report is kept under test-artifacts/ so a failure can be read in CI output.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYNC_STAGES = "TMV TME TMS TMC CPV CAP AVV QGE QPO UPL MDQ EXA"

# Reports that are the validator's own mistakes, each with the reason.  Debian's STILTS 3.4.7
# predates the ADQL 2.1 Recommendation, which defines the COALESCE feature key; newer STILTS
# releases know it.
VALIDATOR_MISTAKES = {
    'E-CAP-KEYX-01 Unknown standard feature key '
    '"ivo://ivoa.net/std/TAPRegExt#features-adql-conditional" for language ADQL',
}


def run_taplint(tap_url: str, stages: str, report: Path) -> tuple[str, dict[str, int]]:
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.fail("stilts is not installed: run `make system-deps` (Debian package stilts)")
    result = subprocess.run(
        [stilts, "taplint", f"tapurl={tap_url}", f"stages={stages}", "maxrepeat=20", "format=text"],
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


def test_taplint_sync_stages_report_no_errors(tap_url: str, artifacts: Path) -> None:
    report = artifacts / "taplint-sync.txt"
    output, counts = run_taplint(tap_url, SYNC_STAGES, report)
    reports = [line for line in output.splitlines() if re.match(r"^[EFW]-", line)]
    problems = [line for line in reports if line not in VALIDATOR_MISTAKES]
    summary = f"taplint: {counts}; report in {report}\n" + "\n".join(problems[:60])
    assert counts["failures"] == 0, summary
    assert [p for p in problems if p.startswith("E-")] == [], summary
    assert counts["errors"] == len(reports) - len(problems), summary
