"""Everything built once per process, handed out cheaply per request.

The factory owns the database backend and the TAP_SCHEMA snapshot; handlers ask it for services
instead of constructing anything, and tests build a factory from a ``Config`` pointing at their
own data directory instead of patching globals.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tap_service import adql
from tap_service.adql.catalog import UserFunction
from tap_service.adql.types import ValueType
from tap_service.config import Config
from tap_service.exceptions import BackendUnavailableError, TapError
from tap_service.services.obscore import ObsCoreDeclaration
from tap_service.services.obscore import decide as decide_obscore
from tap_service.services.query import QueryService
from tap_service.services.tapschema import TapSchemaService
from tap_service.services.vosi import Availability
from tap_service.storage.backend import Backend

if TYPE_CHECKING:
    from tap_service.services.auth import AuthService
    from tap_service.services.datalink import LightCurveService, LinksService
    from tap_service.services.jobs import JobRunner, JobService
    from tap_service.services.quotas import QuotaService
    from tap_service.services.tapschema import TapSchemaModel
    from tap_service.storage.jobs import JobStore
    from tap_service.storage.results import ResultStore
    from tap_service.storage.tokens import TokenStore
    from tap_service.uws import JobQueue

log = logging.getLogger(__name__)

PACKAGE_DATA = Path(__file__).parent / "data"


class Factory:
    """Process-wide state of one service instance."""

    def __init__(self, config: Config, backend: Backend | None = None) -> None:
        self.config = config
        self.started = datetime.now(UTC)
        self._lock = threading.Lock()
        self._backend = backend
        functions = [
            UserFunction(
                name=udf.name,
                signature=udf.signature,
                returns=ValueType(udf.returns),
                description=udf.description,
                sql=dict(udf.sql),
            )
            for udf in config.user_functions
        ]
        self._functions = functions
        self._tap_schema: TapSchemaService | None = None
        self._job_store: JobStore | None = None
        self._result_store: ResultStore | None = None
        self._job_queue: JobQueue | None = None
        self._job_runner: JobRunner | None = None
        self._sweeper: threading.Thread | None = None
        self._stopping = threading.Event()
        self._token_store: TokenStore | None = None
        self._auth_service: AuthService | None = None
        self._quota_service: QuotaService | None = None
        self._obscore: tuple[TapSchemaModel, ObsCoreDeclaration] | None = None

    @property
    def backend(self) -> Backend:
        with self._lock:
            if self._backend is None:
                self._backend = open_backend(self.config)
            return self._backend

    @property
    def tap_schema(self) -> TapSchemaService:
        if self._tap_schema is None:
            self._tap_schema = TapSchemaService(self.backend, self._functions)
        return self._tap_schema

    def query_service(self) -> QueryService:
        return QueryService(self.config, self.backend, self.tap_schema)

    def obscore_declaration(self) -> ObsCoreDeclaration:
        """Whether ivoa.ObsCore is declared as ObsCore 1.1, decided once per TAP_SCHEMA snapshot.

        The first decision on a snapshot logs its warning (defects of a published table).
        """
        model = self.tap_schema.model
        cached = self._obscore
        if cached is not None and cached[0] is model:
            return cached[1]
        mode = self.config.obscore_declare
        declaration = decide_obscore(model.tables(), mode)
        with self._lock:
            if self._obscore is None or self._obscore[0] is not model:
                self._obscore = (model, declaration)
                warning = declaration.warning(mode)
                if warning:
                    log.warning("%s", warning)
        return declaration

    def data_models(self) -> list[tuple[str, str]]:
        """Data models the published tables realise, for TAPRegExt (ObsCore when it conforms)."""
        try:
            return self.obscore_declaration().data_models
        except TapError:
            return []

    def lightcurve_service(self) -> LightCurveService:
        from tap_service.services.datalink import LightCurveService

        return LightCurveService(self.config, self.query_service(), self.backend, self.tap_schema)

    def links_service(self) -> LinksService:
        from tap_service.services.datalink import LinksService

        return LinksService(self.config, self.query_service(), self.backend)

    # -- async jobs (UWS) ---------------------------------------------------------------------

    @property
    def job_store(self) -> JobStore:
        with self._lock:
            if self._job_store is None:
                from tap_service.storage.jobs import JobStore, sqlite_url

                url = self.config.uws.database_url
                if url is None:
                    self.config.data_dir.mkdir(parents=True, exist_ok=True)
                    url = sqlite_url(self.config.data_dir / "jobs.sqlite3")
                self._job_store = JobStore.from_url(url)
            return self._job_store

    @property
    def result_store(self) -> ResultStore:
        with self._lock:
            if self._result_store is None:
                self._result_store = open_result_store(self.config)
            return self._result_store

    @property
    def job_runner(self) -> JobRunner:
        from tap_service.services.jobs import JobRunner

        store, results = self.job_store, self.result_store
        with self._lock:
            if self._job_runner is None:
                self._job_runner = JobRunner(
                    self.config, store, results, lambda: self.backend, lambda: self.tap_schema
                )
            return self._job_runner

    @property
    def job_queue(self) -> JobQueue:
        if self._job_queue is None:
            if self.config.uws.runner == "celery":
                from tap_service.worker.queue import CeleryJobQueue

                queue: JobQueue = CeleryJobQueue(self.config)
            else:
                from tap_service.services.jobs import InProcessJobQueue

                queue = InProcessJobQueue(self.job_runner, self.config.uws.inprocess_threads)
            with self._lock:
                if self._job_queue is None:
                    self._job_queue = queue
        assert self._job_queue is not None
        return self._job_queue

    def job_service(self, owner: str | None = None) -> JobService:
        """Jobs as ``owner`` sees them (None: every job; auth mode none and upkeep)."""
        from tap_service.services.jobs import JobService

        return JobService(
            self.config,
            self.job_store,
            self.job_queue,
            self.result_store,
            owner=owner,
            quotas=self.quota_service if self.config.quotas.enabled else None,
        )

    # -- authentication and quotas --------------------------------------------------------------

    @property
    def token_store(self) -> TokenStore:
        with self._lock:
            if self._token_store is None:
                from tap_service.storage.tokens import TokenStore

                url = self.config.auth.database_url
                if url is None:
                    from tap_service.storage.jobs import sqlite_url

                    self.config.data_dir.mkdir(parents=True, exist_ok=True)
                    url = sqlite_url(self.config.data_dir / "tokens.sqlite3")
                self._token_store = TokenStore.from_url(url)
            return self._token_store

    @property
    def auth_service(self) -> AuthService:
        if self._auth_service is None:
            from tap_service.services.auth import AuthService

            tokens = self.token_store if self.config.auth.mode == "tokens" else None
            self._auth_service = AuthService(self.config.auth, tokens)
        return self._auth_service

    @property
    def quota_service(self) -> QuotaService:
        if self._quota_service is None:
            from tap_service.services.quotas import (
                Counters,
                MemoryCounters,
                QuotaService,
                RedisCounters,
            )

            counters: Counters
            if self.config.quotas.backend == "redis":
                counters = RedisCounters(self.config.redis.url)
            else:
                counters = MemoryCounters()
            with self._lock:
                if self._quota_service is None:
                    self._quota_service = QuotaService(self.config.quotas, counters)
        assert self._quota_service is not None
        return self._quota_service

    def start_jobs(self) -> None:
        """API process start-up: recover the in-process runner's jobs, start the sweep."""
        try:
            service = self.job_service()
            if self.config.uws.runner == "inprocess":
                service.recover_in_process()
        except Exception:  # /sync and VOSI must serve even if jobs cannot
            log.exception("async jobs not available at start-up; the sweep will retry")
        self._sweeper = threading.Thread(target=self._sweep_loop, name="uws-sweep", daemon=True)
        self._sweeper.start()

    def _sweep_loop(self) -> None:
        interval = self.config.uws.sweep_interval_seconds
        while not self._stopping.wait(interval):
            try:
                self.job_service().sweep()
            except BackendUnavailableError as exc:  # a database or Redis outage: one line
                log.warning("job sweep skipped: %s", exc.message)
            except Exception:
                log.exception("job sweep failed")

    def availability(self) -> Availability:
        try:
            self.backend.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means "not available"
            log.warning("availability check failed: %s", exc)
            note = exc.message if isinstance(exc, TapError) else "The database is not reachable"
            return Availability(available=False, note=note)
        return Availability(
            available=True, note="The service is accepting queries", up_since=self.started
        )

    def warm_up(self) -> None:
        """Build the parser and read TAP_SCHEMA now; an unavailable database is only logged."""
        adql.parse("SELECT TOP 1 x FROM t WHERE CONTAINS(POINT(a, b), CIRCLE(1, 2, 3)) = 1")
        # A wrong DataLink directory is an operator's mistake: refuse to start, naming it.
        from tap_service.services.descriptors import datalink_templates

        datalink_templates(self.config)
        try:
            _ = self.tap_schema.model
            self.obscore_declaration()  # its warning, if any, belongs to the start-up log
        except TapError as exc:
            log.warning("TAP_SCHEMA not read at start-up: %s", exc.message)

    def examples_path(self) -> Path:
        return self.config.examples_file or PACKAGE_DATA / "examples.html"

    def close(self) -> None:
        self._stopping.set()
        if self._job_queue is not None:
            self._job_queue.close()
        if self._job_store is not None:
            self._job_store.close()
        if self._token_store is not None:
            self._token_store.close()
        backend = self._backend
        close = getattr(backend, "close", None)
        if close is not None:
            close()


def open_backend(config: Config) -> Backend:
    """The configured database; fails with BackendUnavailableError when it cannot be opened."""
    if config.backend == "embedded":
        from tap_service.adql.dialects.embedded import setup_statements
        from tap_service.storage.embedded import EmbeddedDatabase

        # Messages go to clients: they name no server paths (the log does).
        if not config.catalog_path.exists():
            log.error("no catalog at %s", config.catalog_path)
            raise BackendUnavailableError(
                "The service has no catalog yet: its operator must run `tap-service demo` or "
                "`tap-service ingest`"
            )
        try:
            return EmbeddedDatabase(
                config.data_dir,
                read_only=True,
                setup_statements=setup_statements(),
                # Without ORDER BY, SQL and ADQL promise no row order; keeping DuckDB's
                # insertion order makes LIMIT hold every row back before the first leaves.
                config={
                    "preserve_insertion_order": False,
                    **(
                        {"memory_limit": config.embedded_memory_limit}
                        if config.embedded_memory_limit
                        else {}
                    ),
                },
            )
        except Exception as exc:
            log.exception("cannot open %s", config.catalog_path)
            raise BackendUnavailableError("The catalog database cannot be opened") from exc
    if config.backend == "qserv":
        from tap_service.storage.qserv import MySQLBackend, RoutingBackend

        qserv = config.qserv
        catalog = MySQLBackend(
            qserv.url,
            pool_size=qserv.pool_size,
            connect_timeout=qserv.connect_timeout_seconds,
            cpoly_vertices=qserv.standin_cpoly_vertices,
        )
        tap_schema = MySQLBackend(
            qserv.tap_schema_url,
            pool_size=qserv.pool_size,
            connect_timeout=qserv.connect_timeout_seconds,
        )
        return RoutingBackend(
            catalog,
            tap_schema,
            databases=qserv.databases,
            ping_cache_seconds=qserv.availability_cache_seconds,
        )
    raise BackendUnavailableError(f"The {config.backend} backend is not available yet")


def open_result_store(config: Config) -> ResultStore:
    if config.uws.result_store == "s3":
        from tap_service.storage.results import S3ResultStore

        s3 = config.s3
        return S3ResultStore(
            bucket=s3.bucket,
            prefix=s3.prefix,
            endpoint_url=s3.endpoint_url,
            region=s3.region,
            access_key_id=s3.access_key_id,
            secret_access_key=s3.secret_access_key,
            presign_seconds=s3.presign_seconds,
            max_attempts=s3.max_attempts,
            connect_timeout=s3.connect_timeout_seconds,
            read_timeout=s3.read_timeout_seconds,
        )
    from tap_service.storage.results import LocalResultStore

    return LocalResultStore(config.data_dir / "results")
