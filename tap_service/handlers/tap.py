"""TAP query endpoints: thin adapters from HTTP to ``QueryService``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from itertools import chain
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tap_service.handlers.auth import query_slot, release_after
from tap_service.handlers.dependencies import FactoryDep
from tap_service.handlers.params import read_params
from tap_service.services.query import QueryRequest, QueryService

router = APIRouter()

# Results smaller than this go out as one response; larger ones stream.  Small results are the
# common case (cone searches): one thread hop instead of one per chunk keeps latency low.
SMALL_RESULT_BYTES = 1 << 20


@router.api_route("/sync", methods=["GET", "POST"], summary="Run an ADQL query synchronously")
async def sync_query(
    request: Request, factory: FactoryDep, slot: Annotated[ExitStack, Depends(query_slot)]
) -> Response:
    try:
        params = await read_params(request)
        query = QueryRequest(
            query=params.get("QUERY"),
            lang=params.get("LANG"),
            maxrec=params.get("MAXREC"),
            response_format=params.get("RESPONSEFORMAT") or params.get("FORMAT"),
            request=params.get("REQUEST"),
            sync=True,
            upload=tuple(params.get_all("UPLOAD")),
            upload_parts=params.parts,
        )
        media_type, head, rest = await run_in_threadpool(_start, factory.query_service(), query)
    except BaseException:
        slot.close()
        raise
    if rest is None:
        slot.close()
        return Response(b"".join(head), media_type=media_type)
    return StreamingResponse(release_after(chain(head, rest), slot), media_type=media_type)


def _start(
    service: QueryService, query: QueryRequest
) -> tuple[str, list[bytes], Iterator[bytes] | None]:
    """Prepare and run the query, reading the document until it ends or grows large."""
    prepared = service.prepare(query)
    document = service.stream(prepared)
    head: list[bytes] = []
    size = 0
    for chunk in document:
        head.append(chunk)
        size += len(chunk)
        if size >= SMALL_RESULT_BYTES:
            return prepared.media_type, head, document
    return prepared.media_type, head, None


@router.api_route(
    "/explain", methods=["GET", "POST"], summary="Estimate an ADQL query's cost without running it"
)
async def explain_query(request: Request, factory: FactoryDep) -> JSONResponse:
    params = await read_params(request)
    query = QueryRequest(query=params.get("QUERY"), lang=params.get("LANG"), sync=True)
    return JSONResponse(await run_in_threadpool(factory.query_service().explain, query))
