"""UWS 1.1 as a pure library: the job model, the one phase transition table, XML documents.

Nothing here touches a database, a queue or HTTP: the job store (``storage.jobs``), the queues
(``worker``) and the routes (``handlers.uws``) adapt these types to the outside world.
"""

from tap_service.uws.model import (
    ACTIVE_PHASES,
    FINAL_PHASES,
    ErrorType,
    Job,
    JobResult,
    Phase,
    PhaseTransitionError,
    check_transition,
)
from tap_service.uws.queue import JobQueue
from tap_service.uws.xml import (
    error_summary_text,
    job_document,
    job_list_document,
    parameters_document,
    results_document,
)

__all__ = [
    "ACTIVE_PHASES",
    "FINAL_PHASES",
    "ErrorType",
    "Job",
    "JobQueue",
    "JobResult",
    "Phase",
    "PhaseTransitionError",
    "check_transition",
    "error_summary_text",
    "job_document",
    "job_list_document",
    "parameters_document",
    "results_document",
]
