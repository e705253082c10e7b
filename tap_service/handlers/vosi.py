"""VOSI and DALI metadata endpoints: availability, capabilities, tables, examples."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from tap_service.exceptions import UnknownTableError, UsageError
from tap_service.handlers import openapi as doc
from tap_service.handlers.dependencies import FactoryDep, base_url
from tap_service.services import vosi

# Routes return their Response themselves; the default class only keeps FastAPI from
# declaring a JSON body in the OpenAPI document (openapi.py declares the real ones).
router = APIRouter(default_response_class=Response)
XML = "text/xml"


@router.get(
    "/availability",
    summary="VOSI availability",
    responses=doc.document("VOSI availability document.", XML),
)
async def availability(factory: FactoryDep) -> Response:
    state = await run_in_threadpool(factory.availability)
    return Response(vosi.availability_document(state), media_type=XML)


@router.get(
    "/capabilities",
    summary="VOSI capabilities with TAPRegExt",
    responses=doc.document("VOSI capabilities document.", XML),
)
async def capabilities(request: Request, factory: FactoryDep) -> Response:
    document = vosi.capabilities_document(
        factory.config, base_url(request), data_models=factory.data_models()
    )
    return Response(document, media_type=XML)


@router.get(
    "/tables",
    summary="VOSI tables (detail=min|max)",
    responses=doc.document("VOSI tableset document.", XML),
    openapi_extra=doc.query_parameters(doc.DETAIL),
)
async def tables(request: Request, factory: FactoryDep) -> Response:
    detail = request.query_params.get("detail", "max").lower()
    if detail not in ("min", "max"):
        raise UsageError(f"detail must be min or max, not {detail!r}")
    model = await run_in_threadpool(lambda: factory.tap_schema.model)
    return Response(vosi.tableset_document(model, detail=detail == "max"), media_type=XML)


@router.get(
    "/tables/{name}",
    summary="VOSI description of one table",
    responses=doc.document("VOSI table document.", XML),
)
async def table(name: str, factory: FactoryDep) -> Response:
    model = await run_in_threadpool(lambda: factory.tap_schema.model)
    found = model.find_table(name)
    if found is None:
        raise UnknownTableError(f"There is no table {name!r}; GET /tables lists them")
    return Response(vosi.table_document(model, found), media_type=XML)


@router.get(
    "/examples",
    summary="DALI examples",
    responses=doc.document("DALI examples (XHTML).", "application/xhtml+xml"),
)
async def examples(factory: FactoryDep) -> HTMLResponse:
    path = factory.examples_path()
    return HTMLResponse(path.read_text(encoding="utf-8"), media_type="application/xhtml+xml")
