"""Helpers every identity route uses: the service object, the caller, policy, JSON I/O."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import ValidationError
from stackling.identity.service.identity import Identity
from stackling.web.auth import request_context
from stackling.web.urls import base_url as base_url  # the identity root as clients see it


def identity(request: Request) -> Identity:
    svc: Identity = request.app.state.identity
    return svc


async def caller(request: Request) -> RequestContext:
    return await request_context(request)


async def authorize(request: Request, rule: str, target: dict[str, Any] | None = None,
                    ctx: RequestContext | None = None) -> RequestContext:
    """Authenticate the caller and check ``rule`` against ``target`` (403 on refusal).

    Rules see the target both as ``%(target.user.id)s`` (Keystone's secure-RBAC defaults)
    and flat as ``%(user_id)s`` (older rules in operators' policy files)."""
    ctx = ctx or await caller(request)
    target = target or {}
    request.app.state.enforcer.authorize(rule, {**target, "target": target},
                                         ctx.credentials())
    return ctx


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        raise ValidationError("The request you have made requires a valid body.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("Malformed request body: the body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ValidationError("Malformed request body: expected a JSON object.")
    return body


def require_object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        raise ValidationError(f"Invalid input for field '{key}': '{key}' is a required "
                              "property")
    if not isinstance(value, dict):
        raise ValidationError(f"Invalid input for field '{key}': expected an object.")
    return value


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status,
                    headers=headers, media_type="application/json")


def query_flag(request: Request, name: str) -> bool:
    """Keystone's query flags: present with no value, or a true-ish value."""
    if name not in request.query_params:
        return False
    value = request.query_params[name].lower()
    return value in ("", "1", "true", "yes", "on")


def self_link(request: Request, path: str) -> dict[str, str]:
    """``{"self": <identity root>/v3/<path>}``, for an entity's ``links``."""
    return {"self": f"{base_url(request)}/v3/{path.lstrip('/')}"}


def list_response(request: Request, key: str, items: list[dict[str, Any]],
                  truncated: bool = False) -> Response:
    """Keystone's collection shape: ``{key: [...], "links": {self, previous, next}}``."""
    url = f"{base_url(request)}{request.url.path.split('/identity', 1)[-1]}"
    if request.url.query:
        url = f"{url}?{request.url.query}"
    body: dict[str, Any] = {key: items, "links": {"self": url, "previous": None, "next": None}}
    if truncated:
        body["truncated"] = True
    return json_response(body)


def bool_query(request: Request, name: str) -> bool | None:
    """A boolean filter like ``?enabled=false``: None when absent, 400 when not a bool."""
    if name not in request.query_params:
        return None
    value = request.query_params[name].lower()
    if value in ("", "1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValidationError(f"Invalid input for field '{name}': expected a boolean.")


def head_aware(request: Request, response: Response) -> Response:
    """For routes serving both GET and HEAD (as Keystone's do): HEAD gets the status and
    headers of the GET answer, without its body."""
    if request.method != "HEAD":
        return response
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(status_code=response.status_code, headers=headers)
