"""Prometheus ``/metrics`` (served at the root, outside the TAP path prefix)."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tap_service import logs
from tap_service.handlers.dependencies import FactoryDep
from tap_service.services import metrics

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def prometheus(factory: FactoryDep) -> Response:
    body = await run_in_threadpool(
        metrics.render, lambda: factory.job_store, lambda: factory.job_queue
    )
    return Response(body, media_type=metrics.CONTENT_TYPE)


class ObservabilityMiddleware:
    """Request id, user and metrics around every HTTP request (pure ASGI: streams untouched).

    The request id comes from ``X-Request-ID`` (a proxy's) or is made here, and is returned in
    the same response header.  The user is the one the auth layer put in ``scope["state"]``
    (``user``), else the header Gafaelfawr sets in front of the service.  Latency is measured to
    the last body byte, so a streamed /sync counts its whole transfer.
    """

    def __init__(self, app: ASGIApp, *, user_header: str = "x-auth-request-user") -> None:
        self.app = app
        self.user_header = user_header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        who = headers.get(self.user_header, b"").decode("latin-1") or None
        rid_token = logs.request_id.set(rid)
        user_token = logs.user.set(who)
        status = 500
        start = time.perf_counter()
        metrics.IN_FLIGHT.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", rid.encode("latin-1")),
                ]
                state_user = (scope.get("state") or {}).get("user")
                if state_user is not None:
                    logs.user.set(str(getattr(state_user, "username", state_user)))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics.IN_FLIGHT.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            metrics.REQUESTS.labels(method=method, route=template, status=str(status)).inc()
            metrics.LATENCY.labels(method=method, route=template).observe(
                time.perf_counter() - start
            )
            logs.request_id.reset(rid_token)
            logs.user.reset(user_token)
