"""The phase transition table and the XML documents, without any I/O."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from tap_service.uws import (
    ErrorType,
    Job,
    JobResult,
    Phase,
    PhaseTransitionError,
    check_transition,
    job_document,
    job_list_document,
)
from tap_service.uws.model import FINAL_PHASES, TRANSITIONS, sources_of

NS = {"uws": "http://www.ivoa.net/xml/UWS/v1.0", "xlink": "http://www.w3.org/1999/xlink"}


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Phase.PENDING, Phase.QUEUED),
        (Phase.QUEUED, Phase.EXECUTING),
        (Phase.EXECUTING, Phase.COMPLETED),
        (Phase.EXECUTING, Phase.ERROR),
        (Phase.EXECUTING, Phase.ABORTED),
        (Phase.PENDING, Phase.ABORTED),
        (Phase.COMPLETED, Phase.ARCHIVED),
    ],
)
def test_allowed(current: Phase, target: Phase) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Phase.COMPLETED, Phase.EXECUTING),
        (Phase.ABORTED, Phase.QUEUED),
        (Phase.ERROR, Phase.COMPLETED),
        (Phase.PENDING, Phase.COMPLETED),
        (Phase.PENDING, Phase.EXECUTING),
        (Phase.ARCHIVED, Phase.PENDING),
    ],
)
def test_refused(current: Phase, target: Phase) -> None:
    with pytest.raises(PhaseTransitionError, match=f"{current}.*{target}"):
        check_transition(current, target)


def test_final_phases_lead_only_to_archived() -> None:
    for phase in FINAL_PHASES:
        assert TRANSITIONS[phase] <= {Phase.ARCHIVED}
    assert sources_of(Phase.EXECUTING) == {Phase.QUEUED, Phase.SUSPENDED}


def test_job_document_order_and_escaping() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    job = Job(
        id="abc",
        owner=None,
        phase=Phase.ERROR,
        run_id="r<1>",
        parameters=(("QUERY", "SELECT a FROM t WHERE x < 1 & y > 2"), ("LANG", "ADQL")),
        creation_time=when,
        execution_duration=60,
        error_type=ErrorType.FATAL,
        error_message="bad <thing>",
        results=(JobResult(id="result", key="abc/result.xml", mime_type="text/xml", size=3),),
        progress="3 rows",
    )
    root = ET.fromstring(job_document(job, "http://h/async/abc"))
    tags = [child.tag.split("}")[1] for child in root]
    assert tags == [
        "jobId", "runId", "ownerId", "phase", "quote", "creationTime", "startTime", "endTime",
        "executionDuration", "destruction", "parameters", "results", "errorSummary", "jobInfo",
    ]  # fmt: skip
    assert root.findtext("uws:creationTime", namespaces=NS) == "2026-01-02T03:04:05.678Z"
    assert root.findtext("uws:runId", namespaces=NS) == "r<1>"
    query = root.find("uws:parameters/uws:parameter[@id='QUERY']", NS)
    assert query is not None
    assert query.text == "SELECT a FROM t WHERE x < 1 & y > 2"
    result = root.find("uws:results/uws:result", NS)
    assert result is not None
    assert result.attrib[f"{{{NS['xlink']}}}href"] == "http://h/async/abc/results/result"
    assert root.findtext("uws:errorSummary/uws:message", namespaces=NS) == "bad <thing>"
    listing = ET.fromstring(job_list_document([job], "http://h/async"))
    ref = listing.find("uws:jobref", NS)
    assert ref is not None
    assert ref.attrib["id"] == "abc"
    assert ref.findtext("uws:phase", namespaces=NS) == "ERROR"
