"""Helpers every volume route uses: the service, the caller, policy, JSON bodies, links,
query parsing."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from fastapi import Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Forbidden
from stackling.volume.service.cinder import VolumeService
from stackling.web.auth import request_context
from stackling.web.pagination import parse_limit
from stackling.web.responses import JSONResponse
from stackling.web.urls import base_url

_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


def volumes(request: Request) -> VolumeService:
    svc: VolumeService = request.app.state.volumes
    return svc


async def caller(request: Request) -> RequestContext:
    ctx = await request_context(request)
    rid = getattr(request.state, "request_id", "")
    return ctx if ctx.request_id or not rid else dataclasses.replace(ctx, request_id=rid)


def allowed(request: Request, ctx: RequestContext, rule: str,
            target: dict[str, Any] | None = None) -> bool:
    target = target if target is not None else {"project_id": ctx.project_id,
                                                "user_id": ctx.user_id}
    result: bool = request.app.state.enforcer.enforce(rule, target, ctx.credentials())
    return result


def authorize(request: Request, ctx: RequestContext, rule: str,
              target: dict[str, Any] | None = None) -> None:
    if not allowed(request, ctx, rule, target):
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        raise BadRequest("The server could not comply with the request since it is either "
                         "malformed or otherwise incorrect.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("Malformed request body") from exc
    if not isinstance(body, dict):
        raise BadRequest("Malformed request body")
    return body


def section(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise BadRequest(f"Missing required element '{key}' in request body.")
    return value


def boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                     f"{value!r} is not a valid boolean.")


def optional_str(body: dict[str, Any], key: str, max_len: int = 255) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}. "
                         f"{value!r} is not of type 'string', 'null'")
    if len(value) > max_len:
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}. "
                         f"'{value[:20]}...' is too long")
    return value


def integer(value: Any, field: str, minimum: int | None = None) -> int:
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}.")
    try:
        number = int(value) if isinstance(value, (int, str)) and str(value).strip().lstrip(
            "-").isdigit() else None
    except ValueError:
        number = None
    if number is None:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         f"{value!r} is not of type 'integer'")
    if minimum is not None and number < minimum:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         f"{value} is less than the minimum of {minimum}")
    return number


def limit_marker(request: Request, max_limit: int) -> tuple[int | None, str | None]:
    limit = parse_limit(request.query_params.get("limit"), max_limit)
    return limit, request.query_params.get("marker") or None


def offset(request: Request) -> int:
    value = request.query_params.get("offset")
    if value is None or value == "":
        return 0
    if not value.strip().isdigit():
        raise BadRequest(f"Invalid input received: offset param must be an integer >= 0: "
                         f"{value}")
    return int(value)


def all_tenants(request: Request, ctx: RequestContext) -> bool:
    value = request.query_params.get("all_tenants")
    if value is None:
        return False
    return ctx.is_admin and (value == "" or value.lower() in _TRUE)


def v3_url(request: Request) -> str:
    return f"{base_url(request)}/v3"


def links(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    root = base_url(request)
    project = request.scope.get("url_project_id")
    scoped = f"{root}/v3/{project}" if project else f"{root}/v3"
    return [{"rel": "self", "href": f"{scoped}/{collection}/{item_id}"},
            {"rel": "bookmark", "href": f"{root}/{collection}/{item_id}"}]


def reply(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)


def accepted() -> Response:
    return Response(status_code=202)
