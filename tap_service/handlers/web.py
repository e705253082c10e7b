"""The web page for people at ``/`` and its two assets, read from the package (no network)."""

from __future__ import annotations

from functools import cache
from html import escape
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from tap_service.handlers.dependencies import FactoryDep

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parents[1] / "web" / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}


@cache
def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@router.get("/")
async def page(factory: FactoryDep) -> HTMLResponse:
    html = _read("index.html")
    html = html.replace("{{TAP_BASE}}", escape(factory.config.path_prefix.rstrip("/")))
    html = html.replace("{{TITLE}}", escape(factory.config.service_title))
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/web/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(status_code=404)
    return Response(_read(name), media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})


def wants_html(request: Request) -> bool:
    """A browser navigating (Accept names text/html), not a TAP client reading a document."""
    return "text/html" in request.headers.get("accept", "")


def to_page() -> RedirectResponse:
    return RedirectResponse("/", status_code=303)
