"""Error rendering: each service answers errors in its own body shape."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from stackling.common import errors
from stackling.web.responses import JSONResponse

log = logging.getLogger(__name__)

# (status code, title, message) -> JSON body
ErrorFormatter = Callable[[int, str, str], dict[str, Any]]

_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict", 410: "Gone", 413:
    "Request Entity Too Large", 415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable",
}


def keystone_error(code: int, title: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "title": title, "message": message}}


def nova_error(code: int, title: str, message: str) -> dict[str, Any]:
    key = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
           409: "conflictingRequest", 413: "overLimit", 429: "overLimit"}.get(code,
                                                                            "computeFault")
    return {key: {"code": code, "message": message}}


def cinder_error(code: int, title: str, message: str) -> dict[str, Any]:
    """Cinder's fault body: ``{"itemNotFound": {"code": 404, "message": ...}}``."""
    key = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
           405: "badMethod", 409: "conflictingRequest", 413: "overLimit",
           415: "badMediaType", 429: "overLimit", 501: "notImplemented",
           503: "serviceUnavailable"}.get(code, "computeFault")
    return {key: {"code": code, "message": message}}


def neutron_error(code: int, title: str, message: str) -> dict[str, Any]:
    kind = {400: "BadRequest", 401: "NotAuthorized", 403: "PolicyNotAuthorized",
            404: "NotFound", 409: "Conflict"}.get(code, "NeutronError")
    return {"NeutronError": {"type": kind, "message": message, "detail": ""}}


def glance_error(code: int, title: str, message: str) -> dict[str, Any]:
    """Glance answers webob exceptions; with ``Accept: application/json`` their body is
    ``{"message": "<explanation><br /><br />\\n<detail>\\n\\n", "code": "404 Not Found",
    "title": "Not Found"}`` (note the status line in ``code``)."""
    return {"message": f"{message}<br /><br />\n\n\n", "code": f"{code} {title}",
            "title": title}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = "/".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"Invalid input for field '{loc}': {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "Invalid input."


def install_error_handlers(app: FastAPI, formatter: ErrorFormatter) -> None:
    """Map every failure to ``formatter``'s body with the right status code."""

    def render(code: int, message: str, headers: dict[str, str] | None = None) -> Response:
        title = _TITLES.get(code, "Error")
        return JSONResponse(formatter(code, title, message), status_code=code, headers=headers)

    @app.exception_handler(errors.StacklingError)
    async def _stackling(request: Request, exc: errors.StacklingError) -> Response:
        # an error class may name response headers (e.g. Accept-Patch with a 415)
        headers = dict(getattr(exc, "headers", None) or {}) or None
        if exc.code == 401:
            headers = {"WWW-Authenticate": f'Keystone uri="{request.base_url}"'}
        return render(exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return render(400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = {404: "The resource could not be found.",
                   405: "The method is not allowed for the requested URL."}.get(
            exc.status_code, str(exc.detail))
        return render(exc.status_code, message, dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(500, errors.StacklingError().message)
