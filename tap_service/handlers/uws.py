"""The /async routes (TAP 1.1 async, UWS 1.1): thin adapters from HTTP to ``JobService``."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tap_service.exceptions import JobNotFoundError, UsageError
from tap_service.handlers import openapi as doc
from tap_service.handlers.auth import JobServiceDep
from tap_service.handlers.dependencies import FactoryDep, base_url
from tap_service.handlers.params import DaliParams, read_params
from tap_service.services.jobs import parse_filter
from tap_service.uws import (
    Phase,
    job_document,
    job_list_document,
    parameters_document,
    results_document,
)
from tap_service.uws.xml import isoformat
from tap_service.votable import error_document

# Routes return their Response themselves; the default class only keeps FastAPI from
# declaring a JSON body in the OpenAPI document (openapi.py declares the real ones).
router = APIRouter(default_response_class=Response)

XML = "application/xml"
VOTABLE = "application/x-votable+xml"


def _values(params: DaliParams) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in params.names():
        # UPLOAD may be repeated (one table each): the job keeps them as one ";" list.
        value = ";".join(params.get_all(name)) if name == "upload" else params.get(name)
        if value is not None:
            values[name] = value
    return values


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _jobs_url(request: Request) -> str:
    return f"{base_url(request)}/async"


@router.get(
    "/async",
    summary="List async jobs",
    responses=doc.document("UWS job list.", XML),
    openapi_extra=doc.query_parameters(doc.PHASE_FILTER, doc.AFTER, doc.LAST),
)
async def list_jobs(request: Request, jobs: JobServiceDep) -> Response:
    phases = [v for k, v in request.query_params.multi_items() if k.lower() == "phase"]
    params = await read_params(request)
    filters = parse_filter(phases, params.get("AFTER"), params.get("LAST"))
    found = await run_in_threadpool(jobs.list_jobs, filters)
    return Response(job_list_document(found, _jobs_url(request)), media_type=XML)


@router.post(
    "/async",
    summary="Create an async job (PHASE=RUN starts it)",
    status_code=303,
    responses=doc.redirect("The new job."),
    openapi_extra=doc.form_body(*doc.TAP_QUERY, doc.PHASE, doc.RUNID),
)
async def create_job(request: Request, jobs: JobServiceDep) -> RedirectResponse:
    dali = await read_params(request)
    job = await run_in_threadpool(partial(jobs.create, _values(dali), parts=dali.parts))
    return _see(f"{_jobs_url(request)}/{job.id}")


@router.get(
    "/async/{job_id}",
    summary="The job document (WAIT blocks for a phase change)",
    responses=doc.document("UWS job document.", XML),
    openapi_extra=doc.query_parameters(doc.WAIT, doc.PHASE_FILTER),
)
async def get_job(
    job_id: str, request: Request, factory: FactoryDep, jobs: JobServiceDep
) -> Response:
    params = await read_params(request)
    wait = params.get("WAIT")
    if wait is not None:
        try:
            seconds = float(wait)
        except ValueError:
            raise UsageError(f"WAIT must be a number of seconds, not {wait!r}") from None
        if seconds < 0:
            seconds = factory.config.uws.wait_max_seconds
        job = await jobs.wait(job_id, seconds, params.get("PHASE"))
    else:
        job = await run_in_threadpool(jobs.get, job_id)
    return Response(job_document(job, f"{_jobs_url(request)}/{job.id}"), media_type=XML)


@router.post(
    "/async/{job_id}",
    summary="ACTION=DELETE, or change a PENDING job",
    status_code=303,
    responses=doc.redirect("The job (the job list after ACTION=DELETE)."),
    openapi_extra=doc.form_body(doc.ACTION, doc.PHASE, *doc.TAP_QUERY, doc.RUNID),
)
async def post_job(job_id: str, request: Request, jobs: JobServiceDep) -> RedirectResponse:
    dali = await read_params(request)
    params = _values(dali)
    action = params.pop("action", None)
    if action is not None:
        if action.strip().upper() != "DELETE":
            raise UsageError(f"ACTION must be DELETE, not {action!r}")
        await run_in_threadpool(jobs.delete, job_id)
        return _see(_jobs_url(request))
    phase = params.pop("phase", None)
    if params:
        await run_in_threadpool(partial(jobs.set_parameters, job_id, params, parts=dali.parts))
    if phase is not None:
        await run_in_threadpool(jobs.change_phase, job_id, phase)
    if not params and phase is None:
        await run_in_threadpool(jobs.get, job_id)
    return _see(f"{_jobs_url(request)}/{job_id}")


@router.delete(
    "/async/{job_id}",
    summary="Delete a job (aborting it if it runs)",
    status_code=303,
    responses=doc.redirect("The job list."),
)
async def delete_job(job_id: str, request: Request, jobs: JobServiceDep) -> RedirectResponse:
    await run_in_threadpool(jobs.delete, job_id)
    return _see(_jobs_url(request))


@router.get(
    "/async/{job_id}/phase",
    response_class=PlainTextResponse,
    responses=doc.document("The phase.", "text/plain"),
)
async def get_phase(job_id: str, jobs: JobServiceDep) -> PlainTextResponse:
    job = await run_in_threadpool(jobs.get, job_id)
    return PlainTextResponse(job.phase.value)


@router.post(
    "/async/{job_id}/phase",
    summary="PHASE=RUN or PHASE=ABORT",
    status_code=303,
    responses=doc.redirect("The job."),
    openapi_extra=doc.form_body(doc.PHASE, required=("PHASE",)),
)
async def post_phase(job_id: str, request: Request, jobs: JobServiceDep) -> RedirectResponse:
    phase = (await read_params(request)).get("PHASE")
    if phase is None:
        raise UsageError("The PHASE parameter is required: RUN or ABORT")
    await run_in_threadpool(jobs.change_phase, job_id, phase)
    return _see(f"{_jobs_url(request)}/{job_id}")


@router.get(
    "/async/{job_id}/executionduration",
    response_class=PlainTextResponse,
    responses=doc.document("Seconds the job may run.", "text/plain"),
)
async def get_duration(job_id: str, jobs: JobServiceDep) -> PlainTextResponse:
    job = await run_in_threadpool(jobs.get, job_id)
    return PlainTextResponse(str(job.execution_duration))


@router.post(
    "/async/{job_id}/executionduration",
    status_code=303,
    responses=doc.redirect("The job."),
    openapi_extra=doc.form_body(doc.EXECUTIONDURATION, required=("EXECUTIONDURATION",)),
)
async def post_duration(job_id: str, request: Request, jobs: JobServiceDep) -> RedirectResponse:
    value = (await read_params(request)).get("EXECUTIONDURATION")
    if value is None:
        raise UsageError("The EXECUTIONDURATION parameter is required")
    await run_in_threadpool(jobs.set_execution_duration, job_id, value)
    return _see(f"{_jobs_url(request)}/{job_id}")


@router.get(
    "/async/{job_id}/destruction",
    response_class=PlainTextResponse,
    responses=doc.document("When the job is deleted (ISO 8601).", "text/plain"),
)
async def get_destruction(job_id: str, jobs: JobServiceDep) -> PlainTextResponse:
    job = await run_in_threadpool(jobs.get, job_id)
    when = job.destruction_time
    return PlainTextResponse(isoformat(when) if when else "")


@router.post(
    "/async/{job_id}/destruction",
    status_code=303,
    responses=doc.redirect("The job."),
    openapi_extra=doc.form_body(doc.DESTRUCTION, required=("DESTRUCTION",)),
)
async def post_destruction(job_id: str, request: Request, jobs: JobServiceDep) -> RedirectResponse:
    value = (await read_params(request)).get("DESTRUCTION")
    if value is None:
        raise UsageError("The DESTRUCTION parameter is required")
    await run_in_threadpool(jobs.set_destruction, job_id, value)
    return _see(f"{_jobs_url(request)}/{job_id}")


@router.get(
    "/async/{job_id}/quote",
    response_class=PlainTextResponse,
    responses=doc.document("Expected end of the job (ISO 8601), or empty.", "text/plain"),
)
async def get_quote(job_id: str, jobs: JobServiceDep) -> PlainTextResponse:
    job = await run_in_threadpool(jobs.get, job_id)
    return PlainTextResponse(isoformat(job.quote) if job.quote else "")


@router.get(
    "/async/{job_id}/owner",
    response_class=PlainTextResponse,
    responses=doc.document("The owner, or empty.", "text/plain"),
)
async def get_owner(job_id: str, jobs: JobServiceDep) -> PlainTextResponse:
    job = await run_in_threadpool(jobs.get, job_id)
    return PlainTextResponse(job.owner or "")


@router.get("/async/{job_id}/parameters", responses=doc.document("UWS parameters.", XML))
async def get_parameters(job_id: str, jobs: JobServiceDep) -> Response:
    job = await run_in_threadpool(jobs.get, job_id)
    return Response(parameters_document(job), media_type=XML)


@router.post(
    "/async/{job_id}/parameters",
    status_code=303,
    responses=doc.redirect("The job."),
    openapi_extra=doc.form_body(*doc.TAP_QUERY, doc.RUNID),
)
async def post_parameters(job_id: str, request: Request, jobs: JobServiceDep) -> RedirectResponse:
    dali = await read_params(request)
    await run_in_threadpool(partial(jobs.set_parameters, job_id, _values(dali), parts=dali.parts))
    return _see(f"{_jobs_url(request)}/{job_id}")


@router.get("/async/{job_id}/results", responses=doc.document("UWS results.", XML))
async def get_results(job_id: str, request: Request, jobs: JobServiceDep) -> Response:
    job = await run_in_threadpool(jobs.get, job_id)
    return Response(results_document(job, f"{_jobs_url(request)}/{job.id}"), media_type=XML)


@router.get(
    "/async/{job_id}/results/{result_id}",
    summary="The result (file or 303 to S3)",
    responses={**doc.results("The result file."), 303: doc.redirect("The result in S3.")[303]},
)
async def get_result(job_id: str, result_id: str, jobs: JobServiceDep) -> Response:
    result, location = await run_in_threadpool(jobs.result, job_id, result_id)
    if location.url is not None:
        return _see(location.url)
    assert location.path is not None
    if not location.path.exists():
        raise JobNotFoundError(f"The result of job {job_id} is gone")
    return FileResponse(location.path, media_type=result.mime_type)


@router.get(
    "/async/{job_id}/error",
    summary="The error document of a failed job",
    responses=doc.document("DALI error document.", VOTABLE),
)
async def get_error(job_id: str, jobs: JobServiceDep) -> Response:
    job = await run_in_threadpool(jobs.get, job_id)
    if job.phase is not Phase.ERROR:
        raise JobNotFoundError(f"Job {job_id} is {job.phase}; it has no error")
    return Response(error_document(job.error_message or "The job failed"), media_type=VOTABLE)
