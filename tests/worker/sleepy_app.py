"""A Celery app configured as ``tap_service``'s (make_celery), with a task that only sleeps.

For ``test_broker.py``: a real worker process without the service's database and catalog.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tap_service.config import Config
from tap_service.worker.celery_app import make_celery

app = make_celery(Config())


@app.task(name="tests.sleep", acks_late=True)  # type: ignore[untyped-decorator]
def sleep(seconds: float, tag: str) -> None:
    time.sleep(seconds)
    with Path(os.environ["SLEEPY_OUT"]).open("a") as out:
        out.write(f"{tag}\n")
