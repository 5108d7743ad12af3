"""Helpers every compute route uses: the service, the caller, policy, JSON bodies, links,
and Nova's input-validation wording."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from fastapi import Request

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Forbidden, NotFound
from stackling.compute.api.microversion import VERSIONED_PREFIX
from stackling.compute.service.compute import ComputeService
from stackling.web.auth import request_context
from stackling.web.urls import base_url

_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}
NAME_RE = re.compile(r"^(?!\s)[^\x00-\x1f\x7f]*(?<!\s)$")


def compute(request: Request) -> ComputeService:
    svc: ComputeService = request.app.state.compute
    return svc


async def caller(request: Request) -> RequestContext:
    ctx = await request_context(request)
    rid = getattr(request.state, "request_id", "")
    return ctx if ctx.request_id or not rid else dataclasses.replace(ctx, request_id=rid)


def allowed(request: Request, ctx: RequestContext, rule: str,
            target: dict[str, Any] | None = None) -> bool:
    target = target if target is not None else {"project_id": ctx.project_id,
                                                "user_id": ctx.user_id}
    # one answer per rule and target within a request (a listing asks for every server)
    memo: dict[Any, bool] = request.scope.setdefault("stackling.policy", {})
    try:
        key: Any = (rule, frozenset(target.items()))
    except TypeError:  # a target with unhashable values is not memoized
        key = None
    if key is not None and key in memo:
        return memo[key]
    result: bool = request.app.state.enforcer.enforce(rule, target, ctx.credentials())
    if key is not None:
        memo[key] = result
    return result


def authorize(request: Request, ctx: RequestContext, rule: str,
              target: dict[str, Any] | None = None) -> None:
    """403 in Nova's words when ``rule`` refuses the caller."""
    if not allowed(request, ctx, rule, target):
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def owned(ctx: RequestContext, project_id: str, what: NotFound) -> None:
    """Other projects' resources do not exist for non-admins (Nova's project_only)."""
    if not ctx.is_admin and project_id != ctx.project_id:
        raise what


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        raise BadRequest("The request body is empty or not valid JSON.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("Malformed request body") from exc
    if not isinstance(body, dict):
        raise BadRequest("Malformed request body: expected a JSON object.")
    return body


def invalid(field: str, value: Any, reason: str) -> BadRequest:
    """Nova's jsonschema error wording."""
    return BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. {reason}")


def required(body: dict[str, Any], key: str, where: str = "") -> Any:
    if key not in body:
        raise invalid(where or key, body, f"'{key}' is a required property")
    return body[key]


def obj(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = required(body, key)
    if not isinstance(value, dict):
        raise invalid(key, value, f"{value!r} is not of type 'object'")
    return value


def no_extra(body: dict[str, Any], allowed_keys: set[str], where: str) -> None:
    extra = sorted(set(body) - allowed_keys)
    if extra:
        names = ", ".join(f"'{k}'" for k in extra)
        raise invalid(where, body, f"Additional properties are not allowed ({names} "
                                   f"{'was' if len(extra) == 1 else 'were'} unexpected)")


def string(body: dict[str, Any], key: str, *, min_len: int = 0, max_len: int = 255,
           nullable: bool = False, name_like: bool = False) -> str | None:
    value = body.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise invalid(key, value, f"{value!r} is not of type 'string'")
    if len(value) < min_len:
        raise invalid(key, value, f"{value!r} is too short")
    if len(value) > max_len:
        raise invalid(key, value, f"{value!r} is too long")
    if name_like and (not value.strip() or not NAME_RE.match(value)):
        raise invalid(key, value, f"{value!r} does not match a valid name")
    return value


def boolean(value: Any, field: str) -> bool:
    """Nova's parameter_types.boolean: JSON booleans and the usual strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise invalid(field, value, f"{value!r} is not one of the allowed boolean values")


def query_bool(value: str, field: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise BadRequest(f"Invalid value '{value}' for {field}")


def root(request: Request) -> str:
    """The compute root as the client reached it (``http://host/compute``)."""
    return base_url(request)


def links(request: Request, collection: str, ident: str) -> list[dict[str, str]]:
    base = root(request)
    return [{"rel": "self", "href": f"{base}{VERSIONED_PREFIX}/{collection}/{ident}"},
            {"rel": "bookmark", "href": f"{base}/{collection}/{ident}"}]


def bookmark(request: Request, collection: str, ident: str) -> list[dict[str, str]]:
    return [{"rel": "bookmark", "href": f"{root(request)}/{collection}/{ident}"}]
