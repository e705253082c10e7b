"""``JobQueue`` over Celery with Redis as broker (production runner)."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Collection, Iterator
from typing import Any, cast
from urllib.parse import urlsplit

import redis

from tap_service.config import Config
from tap_service.exceptions import QueueUnavailableError
from tap_service.worker.celery_app import TASK_NAME, make_celery

log = logging.getLogger(__name__)

# Where kombu's Redis transport keeps the messages workers took and have not acknowledged.
UNACKED_KEY = "unacked"
UNACKED_INDEX_KEY = "unacked_index"


def _job_of(message: Any) -> str | None:
    """The job id a kombu message of our task carries (None: another task, or unreadable)."""
    try:
        if message["headers"]["task"] != TASK_NAME:
            return None
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    if isinstance(args, list) and args and isinstance(args[0], str):
        return args[0]
    return None


def _loads(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


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

    def _lists(self) -> list[str]:
        """The queue's Redis lists (kombu keeps one per priority step)."""
        name = self._config.redis.queue
        return [name] + [f"{name}\x06\x16{step}" for step in (3, 6, 9)]

    def depth(self) -> int:
        """Messages waiting in the broker."""
        try:
            with self._redis.pipeline() as pipe:
                for key in self._lists():
                    pipe.llen(key)
                return sum(int(n) for n in pipe.execute())
        except redis.RedisError as exc:
            raise QueueUnavailableError(
                f"The job queue (Redis at {self._where}) cannot be reached"
            ) from exc

    def holding(self, job_ids: Collection[str], *, taken_within: float) -> set[str]:
        """Which of ``job_ids`` have a live message in the broker: waiting in the queue, or taken
        by a worker less than ``taken_within`` seconds ago and not acknowledged yet.

        Tasks acknowledge after the job ran, and a worker takes no more messages than it has
        threads, so a message taken longer ago whose job is still QUEUED belongs to a worker that
        died before starting it; Redis would deliver it again only after the visibility timeout.
        Reads the whole queue: the cost grows with the backlog (one LRANGE per 1000 messages).
        """
        wanted = set(job_ids)
        found: set[str] = set()
        if not wanted:
            return found
        try:
            for message in self._messages(taken_after=time.time() - taken_within):
                job_id = _job_of(message)
                if job_id in wanted:
                    found.add(job_id)
        except redis.RedisError as exc:
            raise QueueUnavailableError(
                f"The job queue (Redis at {self._where}) cannot be reached"
            ) from exc
        return found

    def _messages(self, *, taken_after: float) -> Iterator[Any]:
        page = 1000
        for key in self._lists():
            start = 0
            while True:
                items = self._redis.lrange(key, start, start + page - 1)
                yield from (_loads(item) for item in items)
                if len(items) < page:
                    break
                start += page
        # kombu records each message a worker takes: its delivery time in a sorted set, and
        # [message, exchange, routing key] in a hash, both by delivery tag.
        tags = cast(list[bytes], self._redis.zrangebyscore(UNACKED_INDEX_KEY, taken_after, "+inf"))
        for offset in range(0, len(tags), page):
            for value in self._redis.hmget(UNACKED_KEY, tags[offset : offset + page]):
                entry = _loads(value) if value is not None else None
                yield entry[0] if isinstance(entry, list) and entry else None

    def close(self) -> None:
        self._redis.close()
