"""The network ASGI app (mounted at ``/network`` in the all-in-one cloud): Neutron's v2.0
API with Neutron's error bodies (``{"NeutronError": {"type", "message", "detail"}}``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from stackling.network.api import extras, resources
from stackling.network.errors import (
    NeutronBadRequest,
    NeutronConflict,
    NeutronForbidden,
    NeutronNotFound,
)
from stackling.network.service.core import NetworkService
from stackling.web.app import create_service_app
from stackling.web.auth import TokenValidator
from stackling.web.errors import neutron_error
from stackling.web.responses import JSONResponse

ROUTERS = [extras.root, resources.router, extras.router]
TYPED = (NeutronBadRequest, NeutronConflict, NeutronForbidden, NeutronNotFound)


async def _typed_error(request: Request, exc: Exception) -> Response:
    code = int(getattr(exc, "code", 500))
    message = str(getattr(exc, "message", ""))
    return JSONResponse({"NeutronError": {"type": getattr(exc, "type", "NeutronError"),
                                          "message": message, "detail": ""}},
                        status_code=code)


def create_app(svc: NetworkService, validator: TokenValidator | None) -> FastAPI:
    app = create_service_app("network", ROUTERS, formatter=neutron_error, validator=validator,
                             max_body_bytes=svc.config.api.max_body_bytes,
                             state={"network": svc})
    for cls in TYPED:
        app.add_exception_handler(cls, _typed_error)
    return app
