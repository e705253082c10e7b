"""What /openapi.json says about the IVOA endpoints, declared once here for the route decorators.

The handlers read DALI parameters themselves (case-insensitive names, query string or form
body: ``handlers.params``), so FastAPI cannot infer them; without these declarations the
document would list no parameters and a JSON 200 for every route.  Nothing here changes what a
route does: it only describes it (parameters, request bodies, media types, status codes).
"""

from __future__ import annotations

from typing import Any

VOTABLE = "application/x-votable+xml"
XML_STRING: dict[str, Any] = {"schema": {"type": "string"}}

# Every error is a DALI error document (handlers.errors); 4XX/5XX also keep FastAPI from
# advertising its JSON 422, which this service never sends.
ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "description": "The request is wrong (400), unauthenticated (401), forbidden (403), "
        "names nothing (404), conflicts with the job's phase (409) or exceeds a quota (429): "
        "a DALI error document, QUERY_STATUS=ERROR.",
        "content": {VOTABLE: XML_STRING},
    },
    "5XX": {
        "description": "The service or its database failed (500) or is unavailable (503, "
        "Retry-After): a DALI error document.",
        "content": {VOTABLE: XML_STRING},
    },
}

RESULT_TYPES = (
    VOTABLE,
    "text/xml",
    "text/csv",
    "text/tab-separated-values",
    "application/vnd.apache.parquet",
)


def results(description: str, media_types: tuple[str, ...] = RESULT_TYPES) -> dict[int | str, Any]:
    """A 200 carrying a result document in one of ``media_types``, plus the errors."""
    content = {m: {"schema": {"type": "string", "format": "binary"}} for m in media_types}
    return {200: {"description": description, "content": content}, **ERRORS}


def document(description: str, media_type: str) -> dict[int | str, Any]:
    """A 200 carrying one XML (or text) document, plus the errors."""
    return {200: {"description": description, "content": {media_type: XML_STRING}}, **ERRORS}


def json(description: str) -> dict[int | str, Any]:
    """A 200 carrying a JSON object, plus the errors."""
    content = {"application/json": {"schema": {"type": "object"}}}
    return {200: {"description": description, "content": content}, **ERRORS}


def redirect(description: str) -> dict[int | str, Any]:
    """A 303 See Other (UWS answers every change with one), plus the errors."""
    return {
        303: {
            "description": description,
            "headers": {"Location": {"schema": {"type": "string"}, "description": "Where to go"}},
        },
        **ERRORS,
    }


def _param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "description": description, "schema": schema}


_STRING: dict[str, Any] = {"type": "string"}
QUERY = _param("QUERY", "The ADQL query.", {"type": "string", "minLength": 1})
LANG = _param("LANG", "Query language: ADQL (also ADQL-2.0, ADQL-2.1).", {
    "type": "string", "enum": ["ADQL", "ADQL-2.0", "ADQL-2.1"],
})  # fmt: skip
MAXREC = _param(
    "MAXREC",
    "Most rows returned; more gives QUERY_STATUS=OVERFLOW. Values above the service's hard "
    "limit (TAP_MAXREC_LIMIT, in /capabilities) are capped to it.",
    {"type": "integer", "minimum": 0},
)
RESPONSEFORMAT = _param(
    "RESPONSEFORMAT",
    "Output format: votable (BINARY2), votable/td, votable/b, csv, tsv, parquet or a MIME "
    "type; FORMAT is a synonym.",
    _STRING,
)
REQUEST = _param("REQUEST", "doQuery (optional).", {"type": "string", "enum": ["doQuery"]})
PHASE = _param("PHASE", "RUN to start the job (ABORT to stop it).", {
    "type": "string", "enum": ["RUN", "ABORT"],
})  # fmt: skip
RUNID = _param("RUNID", "A label of the client's choosing, kept with the job.", _STRING)
WAIT = _param(
    "WAIT",
    "Block up to this many seconds for the phase to change (capped at TAP_UWS__WAIT_MAX_SECONDS; "
    "negative: the cap).",
    {"type": "number"},
)
ID = _param("ID", "An identifier (repeatable).", _STRING)
ID_REQUIRED = _param("ID", "The object's identifier.", _STRING)
BAND = _param("band", "Filter band (u, g, r, i, z, y) or all.", _STRING)
LIGHTCURVE_DETAIL = _param("detail", "minimal, principal or full: which columns.", _STRING)
DETAIL = _param("detail", "min: tables only; max (default): with columns and keys.", {
    "type": "string", "enum": ["min", "max"],
})  # fmt: skip
ACTION = _param("ACTION", "DELETE deletes the job.", {"type": "string", "enum": ["DELETE"]})
EXECUTIONDURATION = _param(
    "EXECUTIONDURATION", "Seconds the job may run (capped by the service).", {"type": "integer"}
)
DESTRUCTION = _param(
    "DESTRUCTION", "When the job is deleted (ISO 8601, capped by the service).", _STRING
)
PHASE_FILTER = _param("PHASE", "Only jobs in this phase (repeatable).", _STRING)
AFTER = _param("AFTER", "Only jobs created after this time (ISO 8601).", _STRING)
LAST = _param("LAST", "Only the LAST most recent jobs.", {"type": "integer", "minimum": 1})

TAP_QUERY = (QUERY, LANG, MAXREC, RESPONSEFORMAT, REQUEST)


def query_parameters(*params: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` for a GET whose DALI parameters come in the query string."""
    return {"parameters": [{**p, "in": "query", "required": p["name"] in required} for p in params]}


def form_body(*params: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` for a POST whose DALI parameters come in a form body."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {p["name"]: {**p["schema"], "description": p["description"]} for p in params},
    }
    if required:
        schema["required"] = list(required)
    return {
        "requestBody": {
            "required": bool(required),
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema},
                "multipart/form-data": {"schema": schema},
            },
        }
    }
