"""The request's user, as a FastAPI dependency: credentials checked, rate quota counted.

``authenticate`` is installed on every TAP, VOSI, UWS and DataLink router (``main``); routes that
need the user take ``UserDep`` (cached per request, so credentials are checked once), and the
/async routes take ``JobServiceDep``: the job service scoped to the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from tap_service.handlers.dependencies import FactoryDep
from tap_service.services.auth import ANONYMOUS_USER, User
from tap_service.services.jobs import JobService


async def authenticate(request: Request, factory: FactoryDep) -> User:
    service = factory.auth_service
    user = ANONYMOUS_USER
    if service.mode != "none":
        prefix = factory.config.path_prefix.rstrip("/")
        path = request.url.path
        anonymous_ok = path.startswith(prefix) and service.is_anonymous_endpoint(
            path[len(prefix) :]
        )
        client = request.client.host if request.client else None
        user = await run_in_threadpool(
            service.authenticate, request.headers, client, anonymous_ok=anonymous_ok
        )
    if factory.config.quotas.enabled:
        await run_in_threadpool(factory.quota_service.check_rate, user.quota_key)
    return user


UserDep = Annotated[User, Depends(authenticate)]


def _job_service(user: UserDep, factory: FactoryDep) -> JobService:
    return factory.job_service(owner=user.name)


JobServiceDep = Annotated[JobService, Depends(_job_service)]


async def query_slot(factory: FactoryDep, user: UserDep) -> ExitStack:
    """One of the user's concurrent-query slots, held until the returned stack is closed."""
    stack = ExitStack()
    if factory.config.quotas.enabled:
        jobs = factory.job_service(owner=user.name)
        slot: AbstractContextManager[None] = factory.quota_service.running_query(
            user.quota_key, lambda: jobs.active_jobs(user.name)
        )
        await run_in_threadpool(stack.enter_context, slot)
    return stack


def release_after(chunks: Iterator[bytes], stack: ExitStack) -> Iterator[bytes]:
    """Stream ``chunks``, then free the query slot (also when the client goes away)."""
    try:
        yield from chunks
    finally:
        stack.close()
