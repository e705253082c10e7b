"""The Celery task: job id in, final phase out; everything else is ``JobRunner``'s."""

from __future__ import annotations

import threading

from tap_service.config import Config
from tap_service.factory import Factory
from tap_service.worker.celery_app import TASK_NAME, make_celery

app = make_celery(Config())
_factory: Factory | None = None
_lock = threading.Lock()


def factory() -> Factory:
    """One factory per worker process (DuckDB opened read-only, engines, S3 client)."""
    global _factory
    with _lock:
        if _factory is None:
            _factory = Factory(Config())
        return _factory


@app.task(name=TASK_NAME, acks_late=True)  # type: ignore[untyped-decorator]
def run_job(job_id: str) -> str | None:
    phase = factory().job_runner.run(job_id)
    return phase.value if phase is not None else None
