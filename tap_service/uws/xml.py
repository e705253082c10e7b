"""UWS 1.1 XML documents (job, job list) rendered from ``Job`` values."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from xml.sax import saxutils

from tap_service.uws.model import Job

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_NAMESPACES = f'xmlns:uws="{UWS_NS}" xmlns:xlink="{XLINK_NS}" xmlns:xsi="{XSI_NS}"'
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


# Characters no XML 1.0 document may hold, even as references (a RUNID or QUERY with a NUL would
# otherwise make the job document unreadable); replaced by U+FFFD so the loss stays visible.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    return saxutils.escape(_NOT_XML.sub("\ufffd", text))


def quoteattr(text: str) -> str:
    return saxutils.quoteattr(_NOT_XML.sub("\ufffd", text))


def isoformat(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the millisecond (what UWS clients parse)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _time(tag: str, value: datetime | None, *, nillable: bool = True) -> str:
    if value is None:
        return f'  <uws:{tag} xsi:nil="true"/>\n' if nillable else ""
    return f"  <uws:{tag}>{isoformat(value)}</uws:{tag}>\n"


def error_summary_text(job: Job) -> str:
    return job.error_message or "The job failed"


def job_document(job: Job, job_url: str) -> str:
    """The ``<uws:job>`` document; ``job_url`` is the job's absolute URL."""
    parts = [
        _DECLARATION,
        f'<uws:job {_NAMESPACES} version="1.1">\n',
        f"  <uws:jobId>{escape(job.id)}</uws:jobId>\n",
    ]
    if job.run_id is not None:
        parts.append(f"  <uws:runId>{escape(job.run_id)}</uws:runId>\n")
    if job.owner:
        parts.append(f"  <uws:ownerId>{escape(job.owner)}</uws:ownerId>\n")
    else:
        parts.append('  <uws:ownerId xsi:nil="true"/>\n')
    parts.append(f"  <uws:phase>{job.phase.value}</uws:phase>\n")
    parts.append(_time("quote", job.quote))
    parts.append(_time("creationTime", job.creation_time, nillable=False))
    parts.append(_time("startTime", job.start_time))
    parts.append(_time("endTime", job.end_time))
    parts.append(f"  <uws:executionDuration>{job.execution_duration}</uws:executionDuration>\n")
    parts.append(_time("destruction", job.destruction_time))
    parts.append(_parameters(job, "  ", ""))
    parts.append(_results(job, job_url, "  ", ""))
    if job.error_type is not None:
        parts.append(
            f'  <uws:errorSummary type="{job.error_type.value}" hasDetail="true">\n'
            f"    <uws:message>{escape(error_summary_text(job))}</uws:message>\n"
            "  </uws:errorSummary>\n"
        )
    if job.progress:
        parts.append(f"  <uws:jobInfo><progress>{escape(job.progress)}</progress></uws:jobInfo>\n")
    parts.append("</uws:job>\n")
    return "".join(parts)


def job_list_document(jobs: Iterable[Job], base_url: str) -> str:
    """The ``<uws:jobs>`` list; ``base_url`` is the job list's absolute URL."""
    parts = [_DECLARATION, f'<uws:jobs {_NAMESPACES} version="1.1">\n']
    for job in jobs:
        href = quoteattr(f"{base_url}/{job.id}")
        parts.append(
            f'  <uws:jobref id={quoteattr(job.id)} xlink:type="simple" xlink:href={href}>\n'
        )
        parts.append(f"    <uws:phase>{job.phase.value}</uws:phase>\n")
        if job.run_id is not None:
            parts.append(f"    <uws:runId>{escape(job.run_id)}</uws:runId>\n")
        if job.owner:
            parts.append(f"    <uws:ownerId>{escape(job.owner)}</uws:ownerId>\n")
        else:
            parts.append('    <uws:ownerId xsi:nil="true"/>\n')
        parts.append(f"    <uws:creationTime>{isoformat(job.creation_time)}</uws:creationTime>\n")
        parts.append("  </uws:jobref>\n")
    parts.append("</uws:jobs>\n")
    return "".join(parts)


def _parameters(job: Job, indent: str, namespaces: str) -> str:
    parts = [f"{indent}<uws:parameters{namespaces}>\n"]
    for name, value in job.parameters:
        parts.append(
            f"{indent}  <uws:parameter id={quoteattr(name)}>{escape(value)}</uws:parameter>\n"
        )
    parts.append(f"{indent}</uws:parameters>\n")
    return "".join(parts)


def _results(job: Job, job_url: str, indent: str, namespaces: str) -> str:
    parts = [f"{indent}<uws:results{namespaces}>\n"]
    for result in job.results:
        size = f' size="{result.size}"' if result.size is not None else ""
        href = quoteattr(f"{job_url}/results/{result.id}")
        parts.append(
            f'{indent}  <uws:result id={quoteattr(result.id)} xlink:type="simple" '
            f"xlink:href={href} mime-type={quoteattr(result.mime_type)}{size}/>\n"
        )
    parts.append(f"{indent}</uws:results>\n")
    return "".join(parts)


def parameters_document(job: Job) -> str:
    return _DECLARATION + _parameters(job, "", " " + _NAMESPACES)


def results_document(job: Job, job_url: str) -> str:
    return _DECLARATION + _results(job, job_url, "", " " + _NAMESPACES)
