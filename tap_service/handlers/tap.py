"""TAP query endpoints: thin adapters from HTTP to ``QueryService``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from tap_service.handlers import openapi as doc
from tap_service.handlers.auth import query_slot, release_after
from tap_service.handlers.dependencies import FactoryDep
from tap_service.handlers.params import read_params
from tap_service.handlers.streaming import ClosingStreamingResponse, document
from tap_service.services.query import QueryRequest, QueryService

# Routes return their Response themselves; the default class only keeps FastAPI from
# declaring a JSON body in the OpenAPI document (openapi.py declares the real ones).
router = APIRouter(default_response_class=Response)

# Results smaller than this go out as one response; larger ones stream.  Small results are the
# common case (cone searches): one thread hop instead of one per chunk keeps latency low.
SMALL_RESULT_BYTES = 1 << 20


_SYNC = "Run an ADQL query synchronously"
_SYNC_RESPONSES = doc.results("The result: RESPONSEFORMAT, a VOTable by default.")
_REQUIRED = ("QUERY", "LANG")


@router.get(
    "/sync",
    operation_id="sync_get",
    openapi_extra=doc.query_parameters(*doc.TAP_QUERY, required=_REQUIRED),
    summary=_SYNC,
    responses=_SYNC_RESPONSES,
)
@router.post(
    "/sync",
    operation_id="sync_post",
    openapi_extra=doc.form_body(*doc.TAP_QUERY, required=_REQUIRED),
    summary=_SYNC,
    responses=_SYNC_RESPONSES,
)
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
    return ClosingStreamingResponse(
        release_after(document(head, rest), slot), media_type=media_type
    )


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


_EXPLAIN = "Estimate an ADQL query's cost without running it"
_EXPLAIN_RESPONSES = doc.json("The estimate (docs/explain.md).")


@router.get(
    "/explain",
    operation_id="explain_get",
    openapi_extra=doc.query_parameters(doc.QUERY, doc.LANG, required=("QUERY",)),
    summary=_EXPLAIN,
    responses=_EXPLAIN_RESPONSES,
)
@router.post(
    "/explain",
    operation_id="explain_post",
    openapi_extra=doc.form_body(doc.QUERY, doc.LANG, required=("QUERY",)),
    summary=_EXPLAIN,
    responses=_EXPLAIN_RESPONSES,
)
async def explain_query(request: Request, factory: FactoryDep) -> JSONResponse:
    params = await read_params(request)
    query = QueryRequest(query=params.get("QUERY"), lang=params.get("LANG"), sync=True)
    return JSONResponse(await run_in_threadpool(factory.query_service().explain, query))
