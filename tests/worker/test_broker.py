"""The Celery broker (a private Redis): what the sweep reads of it, and a worker outliving it.

``CeleryJobQueue.holding`` is how the sweep tells a job whose message is still in Redis (waiting,
or lately taken by a worker and not acknowledged) from one whose message is gone.  The worker test
is the crash a Redis restart used to cause: with a job running and the pool not full, the worker
process exited (tap_service/worker/transport.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tap_service.config import Config
from tap_service.worker.queue import CeleryJobQueue
from tests.fixtures.private import PrivateRedis, private_redis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path / "redis") as server:
        yield server


def job_queue(server: PrivateRedis, name: str = "tap-async-test") -> CeleryJobQueue:
    return CeleryJobQueue(Config(redis={"url": server.url, "queue": name}))


def test_holding_sees_waiting_and_unacknowledged_messages(redis_server: PrivateRedis) -> None:
    queue = job_queue(redis_server)
    try:
        for job_id in ("a1", "b2", "c3"):
            queue.enqueue(job_id)
        assert queue.depth() == 3
        assert queue.holding(["a1", "b2", "c3", "zz"], taken_within=60) == {"a1", "b2", "c3"}

        # A worker takes "a1" (the oldest): out of the list, into kombu's unacked hash.
        app = queue._app
        with app.connection_for_read() as conn:
            consumer_queue = conn.SimpleQueue("tap-async-test")
            message = consumer_queue.get(timeout=5)
            assert message.payload == [["a1"], {}, {"callbacks": None, "errbacks": None,
                                                      "chain": None, "chord": None}]  # fmt: skip
            assert queue.depth() == 2
            assert queue.holding(["a1", "b2", "c3"], taken_within=60) == {"a1", "b2", "c3"}
            # taken longer ago than that and still not acknowledged: its worker is gone
            time.sleep(0.05)
            assert queue.holding(["a1", "b2", "c3"], taken_within=0.01) == {"b2", "c3"}
            message.ack()
            assert queue.holding(["a1", "b2", "c3"], taken_within=60) == {"b2", "c3"}
            consumer_queue.close()

        # Other tasks' messages and other queues are not ours.
        app.send_task("something.else", args=["c3"], queue="tap-async-test")
        job_queue(redis_server, "another").enqueue("d4")
        assert queue.holding(["d4"], taken_within=60) == set()

        # A restart without persistence loses every message.
        redis_server.kill()
        redis_server.start()
        assert queue.holding(["b2", "c3"], taken_within=60) == set()
    finally:
        queue.close()


@pytest.mark.slow
def test_a_worker_running_a_job_survives_a_redis_restart(
    redis_server: PrivateRedis, tmp_path: Path
) -> None:
    out = tmp_path / "done.txt"
    env = {
        **os.environ,
        "TAP_REDIS__URL": redis_server.url,
        "TAP_REDIS__QUEUE": "tap-async-test",
        "SLEEPY_OUT": str(out),
    }
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.worker.sleepy_app", "worker",
         "--pool=threads", "--concurrency=3", "--queues=tap-async-test", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
        env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    queue = CeleryJobQueue(Config(redis={"url": redis_server.url, "queue": "tap-async-test"}))
    app = queue._app

    def wait_for(what: str, timeout: float, *, logged: bool = False) -> None:
        """Until the worker logs ``what`` or (not ``logged``) a task wrote it as done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                pytest.fail(f"the worker exited: {log.read_text()}")
            if logged and what in log.read_text():
                return
            if not logged and out.exists() and what in out.read_text().split():
                return
            time.sleep(0.1)
        pytest.fail(f"no {what!r} within {timeout} s: {log.read_text()}")

    try:
        wait_for("ready", 60, logged=True)
        # One job running, two free threads: the consumer waits in BRPOP holding an
        # unacknowledged message, the state in which losing Redis killed the worker.
        app.send_task("tests.sleep", args=[4, "long"], queue="tap-async-test")
        wait_for("Task tests.sleep", 20, logged=True)
        time.sleep(0.5)
        redis_server.kill()
        time.sleep(1)
        redis_server.start()
        wait_for("long", 20)  # the running job finished
        for attempt in range(2):  # the first send may meet the stale pooled connection
            try:
                app.send_task("tests.sleep", args=[0, "after"], queue="tap-async-test")
                break
            except Exception:
                if attempt:
                    raise
        wait_for("after", 30)  # the worker reconnected and took the next job
        assert worker.poll() is None
        assert "Unrecoverable error" not in log.read_text()
    finally:
        queue.close()
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
