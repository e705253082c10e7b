"""Application wiring: ``create_app()`` builds the ASGI app around one ``Factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from tap_service import __version__
from tap_service.config import Config
from tap_service.factory import Factory
from tap_service.handlers import auth, datalink, errors, metrics, tap, uws, vosi, web


def create_app(config: Config | None = None, factory: Factory | None = None) -> FastAPI:
    config = config or (factory.config if factory else Config())
    factory = factory or Factory(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Database queries and writers run in worker threads; this bounds how many at once.
        anyio.to_thread.current_default_thread_limiter().total_tokens = config.threads
        # Pay the one-off costs (grammar tables, TAP_SCHEMA snapshot) before the first client.
        await anyio.to_thread.run_sync(factory.warm_up)
        await anyio.to_thread.run_sync(factory.start_jobs)
        yield
        factory.close()

    prefix = config.path_prefix.rstrip("/")
    app = FastAPI(
        title=config.service_title,
        version=__version__,
        lifespan=lifespan,
        openapi_url=f"{prefix}/openapi.json",
        docs_url=f"{prefix}/docs",
        redoc_url=None,
    )
    app.state.factory = factory
    errors.install(app)
    # Credentials (TAP_AUTH__MODE) and the request-rate quota, checked once per request.
    user = [Depends(auth.authenticate)]
    app.include_router(tap.router, prefix=prefix, dependencies=user)
    app.include_router(vosi.router, prefix=prefix, dependencies=user)
    app.include_router(uws.router, prefix=prefix, dependencies=user)
    app.include_router(datalink.router, prefix="/api/datalink", dependencies=user)
    if config.metrics.enabled:
        app.include_router(metrics.router)
    app.add_middleware(metrics.ObservabilityMiddleware, user_header=config.logging.user_header)

    # The web page for people at /; browsers opening the TAP base URL are sent there.
    app.include_router(web.router)
    if prefix:

        @app.get(prefix, include_in_schema=False)
        async def landing(request: Request) -> Response:
            if web.wants_html(request):
                return web.to_page()
            links = "".join(
                f'<li><a href="{prefix}/{name}">{name}</a></li>'
                for name in ("capabilities", "availability", "tables", "examples")
            )
            title = escape(config.service_title)
            return HTMLResponse(
                f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
                f"<h1>{title}</h1><p>IVOA TAP 1.1 service. Point TOPCAT or pyvo at "
                f'this URL, or <a href="/">query it in the browser</a>.</p>'
                f"<ul>{links}</ul></body></html>"
            )

    return app
