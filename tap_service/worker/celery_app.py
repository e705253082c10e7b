"""The Celery application: configuration only (broker, acks, queues); no job logic here."""

from __future__ import annotations

from celery import Celery

from tap_service.config import Config
from tap_service.worker.transport import TRANSPORT

TASK_NAME = "tap_service.run_job"


def make_celery(config: Config) -> Celery:
    app = Celery("tap_service", broker=config.redis.url)
    app.conf.update(
        # Kombu's Redis transport, less a crash of the worker when Redis goes away while a job
        # runs (tap_service/worker/transport.py).
        broker_transport=TRANSPORT,
        task_default_queue=config.redis.queue,
        # Job state lives in the job store; Celery keeps no results.
        task_ignore_result=True,
        result_backend=None,
        # Acknowledge after the task ran: a message whose worker vanished is delivered again,
        # and the task, seeing the job no longer QUEUED, leaves it to the sweep.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": config.redis.visibility_timeout_seconds},
        broker_connection_timeout=2,
        worker_hijack_root_logger=False,
    )
    return app
