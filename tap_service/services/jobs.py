"""Async TAP jobs: creation and UWS actions (``JobService``), execution (``JobRunner``).

Both runners (threads of the API process, Celery workers) execute a job the same way:
``JobRunner.run(job_id)`` marks it EXECUTING, runs it through ``QueryService.prepare`` and
``QueryService.stream`` exactly as ``/sync`` does, and writes the document to the result store.
A watchdog beside each running job records a heartbeat and notices an ABORT written to the job
store by any process; it then interrupts the database query.  A job whose worker died stops
sending heartbeats and is ended in ERROR by the sweep (``JobService.sweep``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

import anyio.to_thread
import pyarrow as pa

from tap_service import logs
from tap_service.config import Config
from tap_service.exceptions import (
    BackendUnavailableError,
    JobNotFoundError,
    JobPhaseError,
    QueryTimeoutError,
    QueueUnavailableError,
    TapError,
    UsageError,
)
from tap_service.services import metrics
from tap_service.services.query import QueryRequest, QueryService
from tap_service.services.quotas import QuotaService
from tap_service.services.tapschema import TapSchemaService
from tap_service.services.uploads import Upload, UploadService, parse_upload
from tap_service.storage.backend import Backend
from tap_service.storage.jobs import JobStore, utcnow
from tap_service.storage.results import ResultLocation, ResultStore
from tap_service.uws import ErrorType, Job, JobQueue, JobResult, Phase

log = logging.getLogger(__name__)

# Parameters that configure the job itself rather than the query (UWS 1.1 section 2.2.3).
UWS_PARAMETERS = {"phase", "runid", "executionduration", "destruction", "quote", "action"}


# -- running -----------------------------------------------------------------------------------


class _TrackedStream:
    """The backend's batch iterator, remembering its failure and reachable for interrupts."""

    def __init__(self, inner: Iterator[pa.RecordBatch]) -> None:
        self.inner = inner
        self.error: BaseException | None = None
        self.rows = 0

    def __iter__(self) -> _TrackedStream:
        return self

    def __next__(self) -> pa.RecordBatch:
        try:
            batch = next(self.inner)
            self.rows += batch.num_rows
            return batch
        except StopIteration:
            raise
        except BaseException as exc:
            self.error = exc
            raise

    def interrupt(self) -> None:
        stop = getattr(self.inner, "interrupt", None) or getattr(self.inner, "close", None)
        if stop is not None:
            stop()

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class _TrackingBackend:
    """A ``Backend`` handing the job its own query streams, so it can cancel and judge them."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.dialect = backend.dialect
        self.streams: list[_TrackedStream] = []
        self._lock = threading.Lock()
        self._interrupted = False
        self.chunks: str | None = None
        """Qserv chunks the query touches ("12 of 146332"), once the query is prepared."""

    @property
    def progress(self) -> str:
        """The jobInfo progress line: rows so far, and the Qserv chunk count when known."""
        text = f"{self.rows} rows read"
        return f"{text}; {self.chunks} chunks" if self.chunks else text

    def stream(
        self, sql: str, *, batch_rows: int = 65536, timeout: float | None = None
    ) -> Iterator[pa.RecordBatch]:
        return self._track(self._backend.stream(sql, batch_rows=batch_rows, timeout=timeout))

    def stream_with_tables(
        self,
        sql: str,
        tables: Mapping[str, pa.Table],
        *,
        batch_rows: int = 65536,
        timeout: float | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """The backend's ``stream_with_tables`` (TAP_UPLOAD), tracked like ``stream``."""
        inner = getattr(self._backend, "stream_with_tables", None)
        if inner is None:
            raise UsageError("TAP_UPLOAD is not available on this backend")
        return self._track(inner(sql, tables, batch_rows=batch_rows, timeout=timeout))

    def _track(self, stream: Iterator[pa.RecordBatch]) -> _TrackedStream:
        tracked = _TrackedStream(stream)
        with self._lock:
            self.streams.append(tracked)
            interrupted = self._interrupted
        if interrupted:
            tracked.interrupt()
        return tracked

    def ping(self) -> None:
        self._backend.ping()

    def interrupt(self) -> None:
        with self._lock:
            self._interrupted = True
            streams = list(self.streams)
        for stream in streams:
            stream.interrupt()

    @property
    def rows(self) -> int:
        """Rows the database has handed over so far (the job's progress)."""
        return sum(s.rows for s in self.streams)

    @property
    def error(self) -> BaseException | None:
        return next((s.error for s in self.streams if s.error is not None), None)


def _extension(media_type: str) -> str:
    if "csv" in media_type:
        return "csv"
    if "tab-separated" in media_type or "tsv" in media_type:
        return "tsv"
    return "xml"


def query_request(job: Job, uploads: tuple[Upload, ...] = ()) -> QueryRequest:
    return QueryRequest(
        query=job.parameter("QUERY"),
        lang=job.parameter("LANG"),
        maxrec=job.parameter("MAXREC"),
        response_format=job.parameter("RESPONSEFORMAT") or job.parameter("FORMAT"),
        request=job.parameter("REQUEST"),
        uploads=uploads,
    )


def stored_uploads(config: Config, results: ResultStore, job: Job) -> tuple[Upload, ...]:
    """The TAP_UPLOAD tables kept with ``job`` when it was created (none without UPLOAD)."""
    value = job.parameter("UPLOAD")
    if not value:
        return ()
    specs = parse_upload([value], max_tables=config.upload.max_tables)
    return tuple(Upload.from_stored(s.name, results.read_upload(job.id, s.name)) for s in specs)


class JobRunner:
    """Executes jobs in this process; shared by the in-process queue and the Celery task."""

    def __init__(
        self,
        config: Config,
        store: JobStore,
        results: ResultStore,
        backend: Callable[[], Backend],
        tap_schema: Callable[[], TapSchemaService],
    ) -> None:
        self._config = config
        self._store = store
        self._results = results
        self._backend = backend
        self._tap_schema = tap_schema
        self._running: dict[str, _TrackingBackend] = {}
        self._lock = threading.Lock()
        self._stopping = False

    def stop(self) -> None:
        """The process is shutting down: interrupt every running job (they end in ERROR)."""
        self._stopping = True
        for job_id in self.running():
            self.interrupt(job_id)

    def interrupt(self, job_id: str) -> bool:
        """Cancel the database query of a job running in this process (ABORT)."""
        with self._lock:
            tracker = self._running.get(job_id)
        if tracker is None:
            return False
        tracker.interrupt()
        return True

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def run(self, job_id: str) -> Phase | None:
        """Run a QUEUED job to its final phase; returns that phase (None: not ours to run)."""
        with logs.job_context(job_id):
            start = time.perf_counter()
            phase = self._run(job_id)
            if phase is not None:
                metrics.job_finished(phase)
                log.info("job %s ended %s after %.3f s", job_id, phase, time.perf_counter() - start)
        return phase

    def _run(self, job_id: str) -> Phase | None:
        if not self._store.mark_executing(job_id):
            log.info("job %s is not QUEUED any more; not running it", job_id)
            return None
        job = self._store.get(job_id)
        if job is None:
            return None
        tracker = _TrackingBackend(self._backend())
        with self._lock:
            self._running[job_id] = tracker
        done = threading.Event()
        watchdog = threading.Thread(
            target=self._watch,
            args=(job_id, tracker, done),
            name=f"uws-watch-{job_id}",
            daemon=True,
        )
        watchdog.start()
        try:
            return self._execute(job, tracker)
        finally:
            done.set()
            with self._lock:
                self._running.pop(job_id, None)
            watchdog.join(timeout=5)

    def _watch(self, job_id: str, tracker: _TrackingBackend, done: threading.Event) -> None:
        """Heartbeat for the sweep; interrupt the query once someone has aborted the job."""
        beat = self._config.uws.heartbeat_seconds
        last_beat = 0.0
        elapsed = 0.0
        poll = min(0.25, beat)
        while not done.wait(poll):
            elapsed += poll
            try:
                if self._store.phase(job_id) is not Phase.EXECUTING:
                    tracker.interrupt()
                    return
                if elapsed - last_beat >= beat:
                    self._store.heartbeat(job_id, progress=tracker.progress)
                    last_beat = elapsed
            except Exception:  # noqa: BLE001 - the store may blink; keep watching
                log.warning("job %s: watchdog could not reach the job store", job_id)

    def _execute(self, job: Job, tracker: _TrackingBackend) -> Phase:
        duration = job.execution_duration or self._config.uws.execution_duration_max
        service = QueryService(self._config, tracker, self._tap_schema())
        result: JobResult | None = None
        try:
            uploads = stored_uploads(self._config, self._results, job)
            prepared = service.prepare(query_request(job, uploads))
            cost = prepared.estimate
            if cost is not None and cost.restriction != "none":
                tracker.chunks = f"{cost.chunks} of {cost.total_chunks}"
                self._store.heartbeat(job.id, progress=tracker.progress)
            document = service.stream(prepared, timeout=float(duration))
            result = self._results.write(
                job.id,
                document,
                mime_type=prepared.media_type,
                extension=_extension(prepared.media_type),
            )
            failure = tracker.error
        except TapError as exc:
            failure = exc
        except Exception as exc:
            log.exception("job %s failed", job.id)
            failure = exc
        if failure is not None:
            if self._store.phase(job.id) is Phase.ABORTED:
                self._results.delete(job.id)
                return Phase.ABORTED
            message = _failure_message(failure, duration)
            if self._stopping:
                message = "The service shut down while this job was executing; it was not re-run"
            self._store.mark_error(job.id, message, _error_type(failure))
            return self._store.phase(job.id) or Phase.ERROR
        assert result is not None
        if not self._store.mark_completed(job.id, [result], progress=tracker.progress):
            # Aborted (or destroyed) while the last bytes were written: keep nothing.
            self._results.delete(job.id)
            return self._store.phase(job.id) or Phase.ABORTED
        return Phase.COMPLETED


def _failure_message(exc: BaseException, duration: int) -> str:
    if isinstance(exc, QueryTimeoutError):
        return (
            f"The job ran longer than its EXECUTIONDURATION of {duration} s; "
            "the database query was cancelled"
        )
    if isinstance(exc, TapError):
        return exc.message
    return "The job failed because of an internal error; it has been logged"


def _error_type(exc: BaseException) -> ErrorType:
    if isinstance(exc, BackendUnavailableError):
        return ErrorType.TRANSIENT
    return ErrorType.FATAL


class InProcessJobQueue:
    """Runs jobs on a thread pool of this process (the embedded default)."""

    def __init__(self, runner: JobRunner, threads: int) -> None:
        self._runner = runner
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="uws-job")

    def enqueue(self, job_id: str) -> None:
        self._pool.submit(self._run, job_id)

    def _run(self, job_id: str) -> None:
        try:
            self._runner.run(job_id)
        except Exception:
            log.exception("job %s: the runner failed", job_id)

    def abort(self, job_id: str) -> None:
        self._runner.interrupt(job_id)

    def check(self) -> None:
        return None

    def close(self) -> None:
        # Jobs not started stay QUEUED in the store; the next start-up queues them again.
        self._runner.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)


# -- the UWS surface ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JobFilter:
    phases: tuple[Phase, ...] | None = None
    after: datetime | None = None
    last: int | None = None


def parse_time(name: str, value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{name} must be an ISO 8601 time, not {value!r}") from None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# Parameters one job may carry (TAP uses a handful; the bound keeps the job store small).
MAX_JOB_PARAMETERS = 100

# The largest LAST passed on to the job store (more jobs than any store holds).
MAX_LAST = 2**31 - 1


def parse_filter(phases: Sequence[str], after: str | None, last: str | None) -> JobFilter:
    wanted: tuple[Phase, ...] | None = None
    if phases:
        try:
            wanted = tuple(Phase(p.strip().upper()) for p in phases)
        except ValueError:
            raise UsageError(f"PHASE must be a UWS phase, not {', '.join(phases)}") from None
    last_n: int | None = None
    if last is not None:
        try:
            last_n = int(last)
        except ValueError:
            raise UsageError(f"LAST must be a positive integer, not {last!r}") from None
        if last_n <= 0:
            raise UsageError(f"LAST must be a positive integer, not {last!r}")
        last_n = min(last_n, MAX_LAST)  # "all of them"; the job store's integers are 64-bit
    return JobFilter(
        phases=wanted,
        after=parse_time("AFTER", after) if after is not None else None,
        last=last_n,
    )


def _inline_parts(params: Mapping[str, str]) -> set[str]:
    """Lower-cased names of the request parts UPLOAD refers to (``param:<part>``)."""
    value = params.get("upload")
    if not value:
        return set()
    parts = set()
    for item in value.split(";"):
        _, _, source = item.partition(",")
        if source.strip().startswith("param:"):
            parts.add(source.strip()[len("param:") :].lower())
    return parts


class JobService:
    """What the /async routes do; owns the job store's transactions and the queue hand-off.

    Built for one caller: with ``owner`` set, only that owner's jobs exist for this service
    (another user's job is "not found", so ids leak nothing); ``owner`` None sees every job
    (auth mode none, the sweep).  ``quotas`` refuses to queue a job over the owner's limit.
    """

    def __init__(
        self,
        config: Config,
        store: JobStore,
        queue: JobQueue,
        results: ResultStore,
        *,
        owner: str | None = None,
        quotas: QuotaService | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._queue = queue
        self._results = results
        self._owner = owner
        self._quotas = quotas

    # creation and parameters

    def _check_sizes(self, params: Mapping[str, str], kept: int = 0) -> None:
        """Bound what a job keeps in the store: the query limit applies to every value."""
        limit = self._config.max_query_length
        for name, value in params.items():
            if len(value) > limit or len(name) > limit:
                raise UsageError(
                    f"The parameter {name[:40].upper()} is {len(value)} characters long; the "
                    f"limit is {limit} (TAP_MAX_QUERY_LENGTH)"
                )
        if kept + len(params) > MAX_JOB_PARAMETERS:
            raise UsageError(f"A job takes at most {MAX_JOB_PARAMETERS} parameters")

    def create(
        self,
        params: Mapping[str, str],
        *,
        owner: str | None = None,
        parts: Mapping[str, IO[bytes]] | None = None,
    ) -> Job:
        """A new job from DALI/UWS parameters (lower-cased names); runs it if PHASE=RUN.

        UPLOAD tables (request ``parts`` or URLs) are read now and kept with the job, so a
        bad table is a 400 here and the job later runs on exactly what was accepted.
        """
        self._check_sizes(params)
        phase = (params.get("phase") or "").strip().upper()
        if phase not in ("", "RUN"):
            raise UsageError(f"PHASE={params['phase']} is not allowed when creating a job")
        uws = self._config.uws
        # A broker that cannot be reached now refuses the job before anything is written.
        self._queue.check()
        now = utcnow()
        # Times are published to the millisecond; store what clients see, so AFTER=<a time
        # read from a job document> excludes that job.
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        duration = self._duration(params.get("executionduration"))
        inline = _inline_parts(params)  # tables sent as text parts are not job parameters
        destruction = now + timedelta(days=uws.destruction_days)
        if params.get("destruction"):
            destruction = self._destruction(params["destruction"], now)
        job = Job(
            id=secrets.token_hex(8),
            owner=owner if owner is not None else self._owner,
            phase=Phase.PENDING,
            run_id=params.get("runid"),
            parameters=tuple(
                (name.upper(), value)
                for name, value in params.items()
                if name not in UWS_PARAMETERS and name not in inline
            ),
            creation_time=now,
            execution_duration=duration,
            destruction_time=destruction,
        )
        uploads = self._read_uploads(params, parts)
        self._store.add(job)
        try:
            self._keep_uploads(job.id, uploads)
        except BaseException:
            self._store.delete(job.id)
            self._results.delete(job.id)
            raise
        if phase == "RUN":
            try:
                self._start(job.id)
            except BaseException:
                self._store.delete(job.id)
                if uploads:
                    self._results.delete(job.id)  # its uploaded tables
                raise
        return self.get(job.id)

    def _read_uploads(
        self, params: Mapping[str, str], parts: Mapping[str, IO[bytes]] | None
    ) -> tuple[Upload, ...]:
        value = params.get("upload")
        if not value:
            return ()
        return UploadService(self._config).resolve([value], parts or {})

    def _keep_uploads(self, job_id: str, uploads: tuple[Upload, ...]) -> None:
        for upload in uploads:
            self._results.write_upload(job_id, upload.name, upload.stored())

    def _duration(self, value: str | None) -> int:
        uws = self._config.uws
        if value is None or not value.strip():
            return min(uws.execution_duration_default, uws.execution_duration_max)
        try:
            seconds = int(float(value))
        except ValueError:
            raise UsageError(
                f"EXECUTIONDURATION must be a number of seconds, not {value!r}"
            ) from None
        if seconds < 0:
            raise UsageError(f"EXECUTIONDURATION must not be negative, not {value!r}")
        if seconds == 0 or seconds > uws.execution_duration_max:
            return uws.execution_duration_max
        return seconds

    def _destruction(self, value: str, now: datetime) -> datetime:
        when = parse_time("DESTRUCTION", value)
        latest = now + timedelta(days=self._config.uws.destruction_max_days)
        return min(when, latest)

    def get(self, job_id: str) -> Job:
        job = self._store.get(job_id)
        if job is None or (self._owner is not None and job.owner != self._owner):
            raise JobNotFoundError(f"There is no job {job_id}")
        return job

    def list_jobs(self, filters: JobFilter, *, owner: str | None = None) -> list[Job]:
        return self._store.list_jobs(
            owner=owner if owner is not None else self._owner,
            phases=filters.phases,
            after=filters.after,
            last=filters.last,
        )

    def set_parameters(
        self,
        job_id: str,
        params: Mapping[str, str],
        *,
        parts: Mapping[str, IO[bytes]] | None = None,
    ) -> Job:
        job = self.get(job_id)
        if job.phase is not Phase.PENDING:
            raise JobPhaseError(
                f"Parameters can only be changed while the job is PENDING; it is {job.phase}"
            )
        self._check_sizes(params, kept=len(job.parameters))
        self._keep_uploads(job_id, self._read_uploads(params, parts))
        updates: dict[str, Any] = {}
        merged = dict(job.parameters)
        for name, value in params.items():
            if name == "runid":
                updates["run_id"] = value
            elif name == "executionduration":
                updates["execution_duration"] = self._duration(value)
            elif name == "destruction":
                updates["destruction_time"] = self._destruction(value, utcnow())
            elif name not in UWS_PARAMETERS and name not in _inline_parts(params):
                merged[name.upper()] = value
        updates["parameters"] = tuple(merged.items())
        if not self._store.update_pending(job_id, **updates):
            raise JobPhaseError("The job left the PENDING phase while being changed")
        return self.get(job_id)

    def set_execution_duration(self, job_id: str, value: str) -> Job:
        return self.set_parameters(job_id, {"executionduration": value})

    def set_destruction(self, job_id: str, value: str) -> Job:
        self.get(job_id)
        self._store.set_destruction(job_id, self._destruction(value, utcnow()))
        return self.get(job_id)

    # phase changes

    def change_phase(self, job_id: str, phase: str) -> Job:
        action = phase.strip().upper()
        if action == "RUN":
            job = self.get(job_id)
            if job.phase is Phase.PENDING:
                self._start(job_id)
            elif job.phase not in (Phase.QUEUED, Phase.EXECUTING, Phase.COMPLETED):
                raise JobPhaseError(f"A job in phase {job.phase} cannot be run")
        elif action == "ABORT":
            self.abort(job_id)
        else:
            raise UsageError(f"PHASE must be RUN or ABORT, not {phase!r}")
        return self.get(job_id)

    def _start(self, job_id: str) -> None:
        if self._quotas is not None and self._quotas.enabled:
            owner = self.get(job_id).owner
            self._quotas.check_job_start(owner or "anonymous", self.active_jobs(owner))
        self._queue.check()
        if not self._store.mark_queued(job_id):
            raise JobPhaseError("The job is not PENDING any more")
        try:
            self._queue.enqueue(job_id)
        except BaseException:
            self._store.unmark_queued(job_id)
            raise

    def active_jobs(self, owner: str | None) -> int:
        """How many of ``owner``'s jobs are QUEUED or EXECUTING (they count against quotas)."""
        if owner is None:
            return 0
        return len(self._store.list_jobs(owner=owner, phases=(Phase.QUEUED, Phase.EXECUTING)))

    def abort(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.phase in (Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED):
            return job  # UWS: aborting a finished job changes nothing
        if self._store.mark_aborted(job_id):
            self._queue.abort(job_id)
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if job.phase in (Phase.QUEUED, Phase.EXECUTING, Phase.PENDING):
            self._store.mark_aborted(job_id)
            self._queue.abort(job_id)
        self._results.delete(job_id)
        self._store.delete(job_id)

    # results

    def result(self, job_id: str, result_id: str) -> tuple[JobResult, ResultLocation]:
        job = self.get(job_id)
        for result in job.results:
            if result.id == result_id:
                return result, self._results.locate(result)
        raise JobNotFoundError(f"Job {job_id} has no result {result_id}")

    # upkeep

    def sweep(self) -> dict[str, int]:
        """End jobs whose worker died; destroy jobs past their destruction time."""
        now = utcnow()
        stale_before = now - timedelta(seconds=self._config.uws.stale_after_seconds)
        lost = 0
        for job_id in self._store.stale_executing(stale_before):
            if self._store.mark_error(
                job_id,
                "The worker running this job stopped (no heartbeat for "
                f"{self._config.uws.stale_after_seconds:g} s); the job was not re-run",
                ErrorType.TRANSIENT,
            ):
                lost += 1
                log.warning("job %s: worker lost, job ended in ERROR", job_id)
        try:
            requeued = self._requeue_lost(
                now - timedelta(seconds=self._config.uws.stale_after_seconds)
            )
        except QueueUnavailableError as exc:
            # Redis is down: nothing can be sent now; the next sweep after it is back will.
            log.warning("sweep: %s", exc.message)
            requeued = 0
        destroyed = 0
        for job in self._store.expired(now):
            if job.phase in (Phase.QUEUED, Phase.EXECUTING):
                self._store.mark_aborted(job.id)
                self._queue.abort(job.id)
            self._results.delete(job.id)
            self._store.delete(job.id)
            destroyed += 1
        return {"lost": lost, "requeued": requeued, "destroyed": destroyed}

    def _requeue_lost(self, created_before: datetime) -> int:
        """Send again each QUEUED job (older than ``created_before``) whose message is gone.

        A message vanishes with a Redis that restarts without persistence (every message waiting
        or taken by a worker), or with a worker killed after taking it and before starting its
        job.  The broker is asked, job by job, whether it holds a live message for the job:
        waiting in the queue, or taken by a worker less than ``stale_after_seconds`` ago and not
        acknowledged (tasks acknowledge after the job ran).  Other jobs keeping the queue busy do
        not matter.  A job found without one is looked for a second time, and its phase read
        again, so that a message just being sent or taken is not mistaken for a lost one.  Even
        then a duplicate is harmless: the task runs a job only if it moves it from QUEUED to
        EXECUTING (``JobStore.mark_executing``), which one message at most does.
        """
        holding = getattr(self._queue, "holding", None)
        if holding is None:
            return 0  # the in-process runner re-queues at start-up instead
        candidates = self._store.ids_in_phase(Phase.QUEUED, created_before=created_before)
        if not candidates:
            return 0
        within = self._config.uws.stale_after_seconds
        missing = set(candidates) - holding(candidates, taken_within=within)
        if missing:
            missing -= holding(missing, taken_within=within)  # the second look
        requeued = 0
        for job_id in candidates:
            if job_id not in missing or self._store.phase(job_id) is not Phase.QUEUED:
                continue
            self._queue.enqueue(job_id)
            requeued += 1
            log.warning("job %s: QUEUED with no message in the broker; sent again", job_id)
        return requeued

    def recover_in_process(self) -> None:
        """At start-up of the in-process runner: nothing of a previous process still runs."""
        for job_id in self._store.ids_in_phase(Phase.EXECUTING):
            self._store.mark_error(
                job_id,
                "The service restarted while this job was executing; the job was not re-run",
                ErrorType.TRANSIENT,
            )
        for job_id in self._store.ids_in_phase(Phase.QUEUED):
            self._queue.enqueue(job_id)

    async def wait(self, job_id: str, timeout: float, phase: str | None) -> Job:
        """UWS 1.1 blocking: return when the phase changes (or leaves ``phase``), or at timeout.

        Asynchronous, so that waiting clients hold no worker thread (each poll borrows one for a
        primary-key read); polls start at 5 ms and back off to 100 ms.
        """
        job = await anyio.to_thread.run_sync(self.get, job_id)
        start_phase = job.phase
        if phase:
            try:
                start_phase = Phase(phase.strip().upper())
            except ValueError:
                raise UsageError(f"PHASE must be a UWS phase, not {phase!r}") from None
            if job.phase is not start_phase:
                return job
        if job.phase not in (
            Phase.PENDING,
            Phase.QUEUED,
            Phase.EXECUTING,
            Phase.HELD,
            Phase.SUSPENDED,
        ):
            return job
        deadline = time.monotonic() + min(timeout, self._config.uws.wait_max_seconds)
        delay = 0.005
        while time.monotonic() < deadline:
            await anyio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.1)
            current = await anyio.to_thread.run_sync(self._store.phase, job_id)
            if current is None:
                raise JobNotFoundError(f"There is no job {job_id}")
            if current is not start_phase:
                break
        return await anyio.to_thread.run_sync(self.get, job_id)
