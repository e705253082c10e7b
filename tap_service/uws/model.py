"""Jobs and their phases (UWS 1.1 section 2.1.3), with one table of allowed transitions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Phase(enum.StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    UNKNOWN = "UNKNOWN"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"


class ErrorType(enum.StrEnum):
    TRANSIENT = "transient"
    FATAL = "fatal"


FINAL_PHASES = frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED})
"""Phases a job never leaves (but for ARCHIVED, reached when its results are deleted)."""

ACTIVE_PHASES = frozenset({Phase.QUEUED, Phase.EXECUTING})
"""Phases in which something (a queue or a worker) is responsible for the job."""

# Every move a job may make.  HELD and SUSPENDED are never entered by this service (it has no
# quotas that hold jobs and cannot pause a database query) but are accepted from stores written
# by other implementations; ARCHIVED is where a finished job goes once its results are deleted.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset({Phase.QUEUED, Phase.ABORTED, Phase.ERROR}),
    Phase.HELD: frozenset({Phase.QUEUED, Phase.ABORTED}),
    Phase.QUEUED: frozenset({Phase.EXECUTING, Phase.ABORTED, Phase.ERROR}),
    Phase.EXECUTING: frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.SUSPENDED}),
    Phase.SUSPENDED: frozenset({Phase.EXECUTING, Phase.ABORTED, Phase.ERROR}),
    Phase.COMPLETED: frozenset({Phase.ARCHIVED}),
    Phase.ERROR: frozenset({Phase.ARCHIVED}),
    Phase.ABORTED: frozenset({Phase.ARCHIVED}),
    Phase.ARCHIVED: frozenset(),
    Phase.UNKNOWN: frozenset(),
}


class PhaseTransitionError(Exception):
    """A job was asked to move where the transition table does not allow."""

    def __init__(self, current: Phase, target: Phase) -> None:
        super().__init__(f"A job in phase {current} cannot go to {target}")
        self.current = current
        self.target = target


def can_transition(current: Phase, target: Phase) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: Phase, target: Phase) -> None:
    if not can_transition(current, target):
        raise PhaseTransitionError(current, target)


def sources_of(target: Phase) -> frozenset[Phase]:
    """The phases from which ``target`` may be reached (for compare-and-set updates)."""
    return frozenset(p for p, targets in TRANSITIONS.items() if target in targets)


@dataclass(frozen=True, kw_only=True)
class JobResult:
    """One result of a job: where its bytes are and what they are."""

    id: str
    key: str
    mime_type: str
    size: int | None = None


@dataclass(frozen=True, kw_only=True)
class Job:
    """Everything UWS says about one job, as stored."""

    id: str
    owner: str | None
    phase: Phase
    run_id: str | None
    parameters: tuple[tuple[str, str], ...]
    creation_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    execution_duration: int = 0
    """Seconds of wall-clock execution allowed; 0 means unlimited (UWS 1.1)."""
    destruction_time: datetime | None = None
    quote: datetime | None = None
    error_type: ErrorType | None = None
    error_message: str | None = None
    results: tuple[JobResult, ...] = field(default_factory=tuple)
    progress: str | None = None
    heartbeat: datetime | None = None

    def parameter(self, name: str) -> str | None:
        """The first value of a (case-insensitive) parameter."""
        lower = name.lower()
        for key, value in self.parameters:
            if key.lower() == lower:
                return value
        return None
