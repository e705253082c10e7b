"""``JobQueue`` over Celery with Redis as broker (production runner)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import redis

from tap_service.config import Config
from tap_service.exceptions import QueueUnavailableError
from tap_service.worker.celery_app import TASK_NAME, make_celery

log = logging.getLogger(__name__)


class CeleryJobQueue:
    """Sends job ids to ``tap-service worker`` processes; ABORT travels through the job store."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._app = make_celery(config)
        self._redis = redis.Redis.from_url(
            config.redis.url, socket_connect_timeout=1, socket_timeout=2
        )
        where = urlsplit(config.redis.url)
        self._where = f"{where.hostname}:{where.port or 6379}"

    def _unavailable(self) -> QueueUnavailableError:
        return QueueUnavailableError(
            f"The job queue (Redis at {self._where}) cannot be reached, so no job was "
            "created; please try again later"
        )

    def check(self) -> None:
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            log.error("Redis at %s: %s", self._where, exc)
            raise self._unavailable() from exc

    def enqueue(self, job_id: str) -> None:
        try:
            self._app.send_task(
                TASK_NAME, args=[job_id], queue=self._config.redis.queue, retry=False
            )
        except Exception as exc:
            log.error("could not queue job %s: %s", job_id, exc)
            raise self._unavailable() from exc

    def abort(self, job_id: str) -> None:
        # The worker's watchdog sees ABORTED in the job store within a fraction of a second
        # and interrupts the query; a job still waiting in Redis is skipped when it arrives.
        return None

    def depth(self) -> int:
        """Messages waiting in the broker (kombu keeps one Redis list per priority step)."""
        name = self._config.redis.queue
        keys = [name] + [f"{name}\x06\x16{step}" for step in (3, 6, 9)]
        try:
            with self._redis.pipeline() as pipe:
                for key in keys:
                    pipe.llen(key)
                return sum(int(n) for n in pipe.execute())
        except redis.RedisError as exc:
            raise QueueUnavailableError(
                f"The job queue (Redis at {self._where}) cannot be reached"
            ) from exc

    def close(self) -> None:
        self._redis.close()
