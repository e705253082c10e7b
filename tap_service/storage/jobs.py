"""The UWS job store: one table, SQLAlchemy Core with bound parameters, schema by alembic.

SQLite (the embedded default), MariaDB and PostgreSQL are all exercised by the tests.  Every
phase change is a compare-and-set (``UPDATE ... WHERE phase IN (allowed sources)``), so two
processes racing on one job (an ABORT against a worker finishing) cannot both win.
Times are stored as naive UTC and handed out as aware UTC datetimes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.pool import NullPool

from tap_service.exceptions import BackendUnavailableError
from tap_service.uws.model import (
    ErrorType,
    Job,
    JobResult,
    Phase,
    sources_of,
)

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
metadata = sa.MetaData()
job_table = sa.Table(
    "tap_uws_job",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(255)),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("run_id", sa.String(255)),
    sa.Column("parameters", sa.Text(), nullable=False),
    sa.Column("creation_time", _TIME, nullable=False),
    sa.Column("start_time", _TIME),
    sa.Column("end_time", _TIME),
    sa.Column("execution_duration", sa.Integer(), nullable=False),
    sa.Column("destruction_time", _TIME),
    sa.Column("quote", _TIME),
    sa.Column("error_type", sa.String(16)),
    sa.Column("error_message", sa.Text()),
    sa.Column("results", sa.Text(), nullable=False),
    sa.Column("progress", sa.String(255)),
    sa.Column("heartbeat", _TIME),
)
_C = job_table.c


def utcnow() -> datetime:
    return datetime.now(UTC)


def _naive(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _row_to_job(row: RowMapping) -> Job:
    results = tuple(JobResult(**item) for item in json.loads(row["results"]))
    params = tuple((str(k), str(v)) for k, v in json.loads(row["parameters"]))
    creation = _aware(row["creation_time"])
    assert creation is not None
    return Job(
        id=row["id"],
        owner=row["owner"],
        phase=Phase(row["phase"]),
        run_id=row["run_id"],
        parameters=params,
        creation_time=creation,
        start_time=_aware(row["start_time"]),
        end_time=_aware(row["end_time"]),
        execution_duration=row["execution_duration"],
        destruction_time=_aware(row["destruction_time"]),
        quote=_aware(row["quote"]),
        error_type=ErrorType(row["error_type"]) if row["error_type"] else None,
        error_message=row["error_message"],
        results=results,
        progress=row["progress"],
        heartbeat=_aware(row["heartbeat"]),
    )


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str, what: str = "job database") -> Engine:
    """An engine whose connection failures are ``BackendUnavailableError`` (HTTP 503).

    ``what`` names the database in the message clients read ("The job database cannot be
    reached"); the log keeps the driver's own error.
    """
    engine = _make_engine(url)

    @sa.event.listens_for(engine, "handle_error")
    def _unavailable(context: sa.engine.ExceptionContext) -> None:
        # Server gone, refused, restarting, locked: the client may retry later.  Programming
        # errors (a bad statement) stay what they are.
        if context.is_disconnect or isinstance(
            context.sqlalchemy_exception, sa.exc.OperationalError
        ):
            log.error("%s: %s", what, context.original_exception)
            raise BackendUnavailableError(
                f"The {what} cannot be reached; please try again later"
            ) from context.original_exception

    return engine


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, poolclass=NullPool
        )

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def migrate(engine: Engine) -> None:
    """Bring the job table to the newest schema (idempotent; alembic keeps the version)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


class JobStore:
    """Reads and writes jobs; every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str, *, migrate_schema: bool = True) -> JobStore:
        engine = make_engine(url)
        if migrate_schema:
            migrate(engine)  # an unreachable database: BackendUnavailableError
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- writing -----------------------------------------------------------------------------

    def add(self, job: Job) -> None:
        with self.engine.begin() as con:
            con.execute(
                job_table.insert().values(
                    id=job.id,
                    owner=job.owner,
                    phase=job.phase.value,
                    run_id=job.run_id,
                    parameters=json.dumps([list(p) for p in job.parameters]),
                    creation_time=_naive(job.creation_time),
                    execution_duration=job.execution_duration,
                    destruction_time=_naive(job.destruction_time),
                    quote=_naive(job.quote),
                    results="[]",
                )
            )

    def delete(self, job_id: str) -> bool:
        with self.engine.begin() as con:
            return con.execute(job_table.delete().where(_C.id == job_id)).rowcount > 0

    def _update(self, job_id: str, target: Phase | None, values: dict[str, Any]) -> bool:
        """Set ``values`` (and the phase) if the job may move to ``target``; False if not."""
        stmt = job_table.update().where(_C.id == job_id)
        if target is not None:
            stmt = stmt.where(_C.phase.in_([p.value for p in sources_of(target)]))
            values = {**values, "phase": target.value}
        with self.engine.begin() as con:
            return con.execute(stmt.values(**values)).rowcount > 0

    def update_pending(self, job_id: str, **values: Any) -> bool:
        """Change settings of a job that has not been queued yet (parameters, run id...)."""
        if "parameters" in values:
            values["parameters"] = json.dumps([list(p) for p in values["parameters"]])
        for name in ("destruction_time", "quote"):
            if name in values:
                values[name] = _naive(values[name])
        stmt = (
            job_table.update()
            .where(_C.id == job_id)
            .where(_C.phase == Phase.PENDING.value)
            .values(**values)
        )
        with self.engine.begin() as con:
            return con.execute(stmt).rowcount > 0

    def set_destruction(self, job_id: str, when: datetime) -> bool:
        stmt = job_table.update().where(_C.id == job_id).values(destruction_time=_naive(when))
        with self.engine.begin() as con:
            return con.execute(stmt).rowcount > 0

    def mark_queued(self, job_id: str) -> bool:
        return self._update(job_id, Phase.QUEUED, {})

    def unmark_queued(self, job_id: str) -> bool:
        """Back to PENDING: the queue refused the job, so nothing is left half-created."""
        stmt = (
            job_table.update()
            .where(_C.id == job_id, _C.phase == Phase.QUEUED.value)
            .values(phase=Phase.PENDING.value)
        )
        with self.engine.begin() as con:
            return con.execute(stmt).rowcount > 0

    def mark_executing(self, job_id: str) -> bool:
        now = _naive(utcnow())
        return self._update(job_id, Phase.EXECUTING, {"start_time": now, "heartbeat": now})

    def heartbeat(self, job_id: str, progress: str | None = None) -> None:
        values: dict[str, Any] = {"heartbeat": _naive(utcnow())}
        if progress is not None:
            values["progress"] = progress[:255]
        stmt = (
            job_table.update()
            .where(_C.id == job_id, _C.phase == Phase.EXECUTING.value)
            .values(**values)
        )
        with self.engine.begin() as con:
            con.execute(stmt)

    def mark_completed(
        self, job_id: str, results: Sequence[JobResult], progress: str | None = None
    ) -> bool:
        encoded = json.dumps(
            [{"id": r.id, "key": r.key, "mime_type": r.mime_type, "size": r.size} for r in results]
        )
        values: dict[str, Any] = {"end_time": _naive(utcnow()), "results": encoded}
        if progress is not None:
            values["progress"] = progress[:255]
        return self._update(job_id, Phase.COMPLETED, values)

    def mark_error(
        self, job_id: str, message: str, error_type: ErrorType = ErrorType.FATAL
    ) -> bool:
        return self._update(
            job_id,
            Phase.ERROR,
            {
                "end_time": _naive(utcnow()),
                "error_type": error_type.value,
                "error_message": message,
            },
        )

    def mark_aborted(self, job_id: str) -> bool:
        return self._update(job_id, Phase.ABORTED, {"end_time": _naive(utcnow())})

    # -- reading -----------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as con:
            row = con.execute(sa.select(job_table).where(_C.id == job_id)).mappings().first()
        return _row_to_job(row) if row is not None else None

    def phase(self, job_id: str) -> Phase | None:
        with self.engine.connect() as con:
            value = con.execute(sa.select(_C.phase).where(_C.id == job_id)).scalar()
        return Phase(value) if value is not None else None

    def list_jobs(
        self,
        *,
        owner: str | None = None,
        phases: Iterable[Phase] | None = None,
        after: datetime | None = None,
        last: int | None = None,
    ) -> list[Job]:
        """Jobs newest first, filtered as UWS 1.1 lists are (PHASE, AFTER, LAST)."""
        stmt = sa.select(job_table)
        if owner is not None:
            stmt = stmt.where(_C.owner == owner)
        if phases is not None:
            stmt = stmt.where(_C.phase.in_([p.value for p in phases]))
        else:
            stmt = stmt.where(_C.phase != Phase.ARCHIVED.value)
        if after is not None:
            stmt = stmt.where(_C.creation_time > _naive(after))
        stmt = stmt.order_by(_C.creation_time.desc(), _C.id)
        if last is not None:
            stmt = stmt.limit(last)
        with self.engine.connect() as con:
            return [_row_to_job(row) for row in con.execute(stmt).mappings()]

    def stale_executing(self, older_than: datetime) -> list[str]:
        """EXECUTING jobs whose worker has not been heard of since ``older_than``."""
        stmt = sa.select(_C.id).where(
            _C.phase == Phase.EXECUTING.value, _C.heartbeat < _naive(older_than)
        )
        with self.engine.connect() as con:
            return list(con.execute(stmt).scalars())

    def expired(self, now: datetime) -> list[Job]:
        stmt = sa.select(job_table).where(_C.destruction_time <= _naive(now))
        with self.engine.connect() as con:
            return [_row_to_job(row) for row in con.execute(stmt).mappings()]

    def ids_in_phase(self, phase: Phase, *, created_before: datetime | None = None) -> list[str]:
        """Ids of the jobs in ``phase`` (created before ``created_before``), oldest first."""
        stmt = sa.select(_C.id).where(_C.phase == phase.value).order_by(_C.creation_time)
        if created_before is not None:
            stmt = stmt.where(_C.creation_time < _naive(created_before))
        with self.engine.connect() as con:
            return list(con.execute(stmt).scalars())

    def ping(self) -> None:
        with self.engine.connect() as con:
            con.execute(sa.select(1))
