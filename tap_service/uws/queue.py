"""What the job service needs from whatever runs jobs: hand over a job id, cancel one."""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    """Runs queued jobs somewhere (threads of this process, or Celery workers)."""

    def enqueue(self, job_id: str) -> None:
        """Make sure the job will run; raise if the queue cannot accept it now."""
        ...

    def abort(self, job_id: str) -> None:
        """Best effort: stop the job's execution now if it runs where this queue can reach."""
        ...

    def check(self) -> None:
        """Raise if the queue cannot accept jobs right now (broker unreachable)."""
        ...

    def close(self) -> None: ...
