"""TAP query endpoints: thin adapters from HTTP to ``QueryService``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from tap_service.handlers.dependencies import FactoryDep
from tap_service.handlers.params import read_params
from tap_service.services.query import QueryRequest

router = APIRouter()


@router.api_route("/sync", methods=["GET", "POST"], summary="Run an ADQL query synchronously")
async def sync_query(request: Request, factory: FactoryDep) -> StreamingResponse:
    params = await read_params(request)
    query = QueryRequest(
        query=params.get("QUERY"),
        lang=params.get("LANG"),
        maxrec=params.get("MAXREC"),
        response_format=params.get("RESPONSEFORMAT") or params.get("FORMAT"),
        request=params.get("REQUEST"),
    )
    service = factory.query_service()
    prepared = await run_in_threadpool(service.prepare, query)
    body = await run_in_threadpool(service.stream, prepared)
    return StreamingResponse(body, media_type=prepared.media_type)
