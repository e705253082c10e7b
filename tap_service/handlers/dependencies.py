"""Request-scoped access to the process-wide factory."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tap_service.factory import Factory


def get_factory(request: Request) -> Factory:
    factory: Factory = request.app.state.factory
    return factory


def base_url(request: Request) -> str:
    """The service's base URL as the client sees it (configured, or from the request)."""
    factory = get_factory(request)
    if factory.config.public_url:
        return factory.config.public_url.rstrip("/")
    return str(request.base_url).rstrip("/") + factory.config.path_prefix


FactoryDep = Annotated[Factory, Depends(get_factory)]
