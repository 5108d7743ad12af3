"""The ASGI app factory every service uses.

``create_service_app`` gives a FastAPI app with: request ids, a body size limit, the
service's error body shape for every failure, Prometheus metrics, and a token validator on
``app.state`` for the ``request_context`` dependency. Services add their routers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI

from stackling.web.auth import TokenValidator
from stackling.web.bodylimit import BodyLimitMiddleware, ExemptPredicate
from stackling.web.errors import ErrorFormatter, install_error_handlers
from stackling.web.metrics import MetricsMiddleware
from stackling.web.requestid import RequestIdMiddleware


def create_service_app(
    name: str,
    routers: Sequence[APIRouter],
    *,
    formatter: ErrorFormatter,
    validator: TokenValidator | None,
    max_body_bytes: int = 1024 * 1024,
    state: dict[str, Any] | None = None,
    body_limit_exempt: ExemptPredicate | None = None,
    service_types: Sequence[str] = (),
) -> FastAPI:
    """``body_limit_exempt(scope)`` marks requests whose body a route streams (and limits)
    itself, e.g. image uploads; every other request body is capped at ``max_body_bytes``."""
    app = FastAPI(
        title=f"stackling {name}",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.service_name = name
    app.state.validator = validator
    # the catalog types access rules may name for this service (default: its name)
    app.state.service_types = tuple(service_types) or (name,)
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    install_error_handlers(app, formatter)
    for router in routers:
        app.include_router(router)
    app.add_middleware(MetricsMiddleware, service=name)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes, formatter=formatter,
                       exempt=body_limit_exempt)
    app.add_middleware(RequestIdMiddleware)
    return app
