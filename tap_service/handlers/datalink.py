"""DataLink endpoints under ``/api/datalink``: the light curve and ``{links}``."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tap_service.handlers import openapi as doc
from tap_service.handlers.auth import JobServiceDep
from tap_service.handlers.dependencies import FactoryDep, base_url
from tap_service.handlers.params import DaliParams, read_params
from tap_service.handlers.streaming import ClosingStreamingResponse, document
from tap_service.services.datalink import LightCurveRequest, LightCurveService

# Routes return their Response themselves; the default class only keeps FastAPI from
# declaring a JSON body in the OpenAPI document (openapi.py declares the real ones).
router = APIRouter(default_response_class=Response)


def _lightcurve_request(params: DaliParams) -> LightCurveRequest:
    defaults = LightCurveRequest(id=None)
    return LightCurveRequest(
        id=params.get("id"),
        table=params.get("table") or defaults.table,
        id_column=params.get("id_column") or defaults.id_column,
        join_time_column=params.get("join_time_column") or defaults.join_time_column,
        band=params.get("band") or defaults.band,
        detail=params.get("detail") or defaults.detail,
        response_format=params.get("RESPONSEFORMAT") or params.get("FORMAT"),
    )


_LIGHTCURVE = (doc.ID_REQUIRED, doc.BAND, doc.LIGHTCURVE_DETAIL, doc.RESPONSEFORMAT)
_TIMESERIES = "Light curve of one object"
_TIMESERIES_RESPONSES = doc.results(
    "The light curve: RESPONSEFORMAT (or image/png).", (*doc.RESULT_TYPES, "image/png")
)


@router.get(
    "/timeseries",
    operation_id="timeseries_get",
    summary=_TIMESERIES,
    responses=_TIMESERIES_RESPONSES,
    openapi_extra=doc.query_parameters(*_LIGHTCURVE, required=("ID",)),
)
@router.post(
    "/timeseries",
    operation_id="timeseries_post",
    summary=_TIMESERIES,
    responses=_TIMESERIES_RESPONSES,
    openapi_extra=doc.form_body(*_LIGHTCURVE, required=("ID",)),
)
async def timeseries(request: Request, factory: FactoryDep) -> Response:
    lightcurve = _lightcurve_request(await read_params(request))
    media_type, head, rest = await run_in_threadpool(
        _start, factory.lightcurve_service(), lightcurve
    )
    if rest is None:
        return Response(b"".join(head), media_type=media_type)
    return ClosingStreamingResponse(document(head, rest), media_type=media_type)


@router.post(
    "/timeseries/async",
    summary="Light curve as a TAP async (UWS) job",
    status_code=303,
    responses=doc.redirect("The new job."),
    openapi_extra=doc.form_body(*_LIGHTCURVE, doc.PHASE, required=("ID",)),
)
async def timeseries_async(request: Request, factory: FactoryDep, jobs: JobServiceDep) -> Response:
    params = await read_params(request)
    job_params = await run_in_threadpool(
        factory.lightcurve_service().job_parameters,
        _lightcurve_request(params),
        params.get("PHASE"),
    )
    job = await run_in_threadpool(jobs.create, job_params)
    return RedirectResponse(f"{base_url(request)}/async/{job.id}", status_code=303)


_LINKS = "DataLink 1.1 {links}"
_LINKS_RESPONSES = doc.document("DataLink {links} VOTable.", doc.VOTABLE)


@router.get(
    "/links",
    operation_id="links_get",
    summary=_LINKS,
    responses=_LINKS_RESPONSES,
    openapi_extra=doc.query_parameters(doc.ID),
)
@router.post(
    "/links",
    operation_id="links_post",
    summary=_LINKS,
    responses=_LINKS_RESPONSES,
    openapi_extra=doc.form_body(doc.ID),
)
async def links(request: Request, factory: FactoryDep) -> Response:
    ids = await _all_values(request, "id")
    media_type, body = await run_in_threadpool(factory.links_service().links, ids)
    return Response(body, media_type=media_type)


async def _all_values(request: Request, name: str) -> list[str]:
    """Every value of a repeatable DALI parameter (ID), name case-insensitive, query or form."""
    values = [v for k, v in request.query_params.multi_items() if k.lower() == name]
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        values.extend(v for k, v in form.multi_items() if k.lower() == name and isinstance(v, str))
    return values


def _start(
    service: LightCurveService, request: LightCurveRequest
) -> tuple[str, list[bytes], Iterator[bytes] | None]:
    """Run the request; light curves are small, so the document is usually read whole."""
    media_type, document = service.run(request)
    head: list[bytes] = []
    size = 0
    for chunk in document:
        head.append(chunk)
        size += len(chunk)
        if size >= 1 << 20:
            return media_type, head, document
    return media_type, head, None
