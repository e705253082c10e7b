"""Prometheus metrics: what the service counts, and the scrape-time figures (jobs, queue depth).

Counters and histograms live in the process-wide default registry, so every process (API or
worker) counts its own traffic.  Job counts by phase and the queue depth are read from the shared
job store and broker when ``/metrics`` is scraped, so every API replica reports the same,
cluster-wide figures for them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from tap_service.storage.jobs import JobStore
from tap_service.uws import Phase

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter(
    "tap_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "tap_http_request_duration_seconds",
    "Time from a request's arrival to the last byte of its response, by method and route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600),
)
IN_FLIGHT = Gauge("tap_http_requests_in_flight", "Requests being answered by this process.")
ROWS = Counter("tap_rows_streamed", "Result rows written into documents (sync and async).")
BYTES = Counter("tap_bytes_streamed", "Result document bytes produced (sync and async).")
JOBS_FINISHED = Counter(
    "tap_jobs_finished",
    "Async jobs this process ran to a final phase, by that phase.",
    ["phase"],
)


def count_rows(rows: int) -> None:
    ROWS.inc(rows)


def counted(document: Iterator[bytes]) -> Iterator[bytes]:
    """The same document, its bytes added to ``tap_bytes_streamed`` as they pass."""
    try:
        for chunk in document:
            BYTES.inc(len(chunk))
            yield chunk
    finally:
        close = getattr(document, "close", None)
        if close is not None:
            close()  # a client that went away stops the query at once, as before


def job_finished(phase: Phase) -> None:
    JOBS_FINISHED.labels(phase=phase.value).inc()


# Phases a TAP job can be in here (UWS also names HELD, SUSPENDED, ARCHIVED, UNKNOWN).
PHASES = (
    Phase.PENDING,
    Phase.QUEUED,
    Phase.EXECUTING,
    Phase.COMPLETED,
    Phase.ERROR,
    Phase.ABORTED,
)


def render(store: Callable[[], JobStore], queue: Callable[[], object]) -> bytes:
    """The exposition text: this process's counters plus the shared job and queue figures."""
    scrape = CollectorRegistry()
    jobs = Gauge(
        "tap_jobs",
        "Async jobs in the job store, by phase (all replicas and workers).",
        ["phase"],
        registry=scrape,
    )
    depth = Gauge(
        "tap_queue_depth",
        "Async jobs waiting for a runner: messages in the broker queue (Celery), or QUEUED "
        "jobs (in-process runner); -1 when it cannot be read.",
        registry=scrape,
    )
    value: int | None = None
    try:
        job_store = store()
        for phase in PHASES:
            jobs.labels(phase=phase.value).set(len(job_store.ids_in_phase(phase)))
        reader = getattr(queue(), "depth", None)
        value = reader() if reader is not None else len(job_store.ids_in_phase(Phase.QUEUED))
    except Exception as exc:  # noqa: BLE001 - a scrape must answer even with the store down
        log.warning("metrics: job store or queue not readable: %s", exc)
    depth.set(-1 if value is None else value)
    return generate_latest(REGISTRY) + generate_latest(scrape)
