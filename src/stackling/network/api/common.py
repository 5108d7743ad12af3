"""What every network route shares: the service, the caller, request bodies (single and
bulk), and Neutron's list semantics -- filters, ``fields``, sorting, ``limit``/``marker``
pagination with ``<collection>_links``."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.network.errors import NeutronBadRequest
from stackling.network.policies import READ_RULES
from stackling.network.service.core import NetworkService
from stackling.web.auth import request_context
from stackling.web.pagination import page_links, parse_limit
from stackling.web.responses import JSONResponse

RESERVED = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse", "tags",
            "tags-any", "not-tags", "not-tags-any", "tenant_id", "project_id"}
_TRUE = {"true", "1", "t", "yes", "y", "on"}


def service(request: Request) -> NetworkService:
    svc: NetworkService = request.app.state.network
    return svc


async def caller(request: Request) -> RequestContext:
    ctx = await request_context(request)
    rid = getattr(request.state, "request_id", "")
    return ctx if ctx.request_id or not rid else dataclasses.replace(ctx, request_id=rid)


async def body_of(request: Request, singular: str, plural: str | None = None
                  ) -> tuple[list[dict[str, Any]], bool]:
    """The resource bodies and whether the request was a bulk one."""
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise NeutronBadRequest("Malformed request body", "HTTPBadRequest") from None
    if not isinstance(data, dict):
        raise NeutronBadRequest("Malformed request body", "HTTPBadRequest")
    if plural is not None and plural in data:
        items = data[plural]
        if not isinstance(items, list) or not items or not all(
                isinstance(i, dict) for i in items):
            raise NeutronBadRequest(f"Invalid input for {plural}: expected a list of "
                                    "objects", "HTTPBadRequest")
        return items, True
    item = data.get(singular)
    if not isinstance(item, dict):
        raise NeutronBadRequest(f"Failed to parse request. Required attribute '{singular}' "
                                "not specified" if item is None else
                                "Malformed request body", "HTTPBadRequest")
    return [item], False


def hidden(request: Request, ctx: RequestContext) -> frozenset[str]:
    """The attributes the caller may not see (``get_network:provider:*``,
    ``get_port:binding:*`` rules)."""
    cached = getattr(request.state, "hidden_attrs", None)
    if cached is None:
        svc = service(request)
        cached = frozenset(a for a, rule in READ_RULES.items() if not svc.allowed(ctx, rule))
        request.state.hidden_attrs = cached
    return frozenset(cached)


def strip(request: Request, ctx: RequestContext, item: dict[str, Any]) -> dict[str, Any]:
    drop = hidden(request, ctx)
    if not drop:
        return item
    return {k: v for k, v in item.items() if k not in drop}


def fields_of(request: Request) -> list[str]:
    return [f for f in request.query_params.getlist("fields") if f]


def project(item: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    if not fields:
        return item
    return {k: item[k] for k in fields if k in item}


def one(request: Request, ctx: RequestContext, key: str, item: dict[str, Any],
        status: int = 200) -> JSONResponse:
    return JSONResponse({key: project(strip(request, ctx, item), fields_of(request))},
                        status_code=status)


def created(request: Request, ctx: RequestContext, singular: str, plural: str,
            items: list[dict[str, Any]], bulk: bool) -> JSONResponse:
    clean = [strip(request, ctx, i) for i in items]
    body: dict[str, Any] = {plural: clean} if bulk else {singular: clean[0]}
    return JSONResponse(body, status_code=201)


def no_content() -> Response:
    return Response(status_code=204)


def _matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return any((w.lower() in _TRUE) == value for w in wanted)
    if value is None:
        return any(w in ("", "None", "null") for w in wanted)
    if isinstance(value, list):
        if value and isinstance(value[0], dict):  # fixed_ips=ip_address=...
            for w in wanted:
                key, sep, val = w.partition("=")
                if sep and any(str(v.get(key)) == val for v in value):
                    return True
            return False
        return any(w in [str(v) for v in value] for w in wanted)
    return str(value) in wanted


def _tag_filter(request: Request, item: dict[str, Any]) -> bool:
    tags = set(item.get("tags") or [])
    q = request.query_params
    for key in ("tags", "tags-any", "not-tags", "not-tags-any"):
        wanted = {t for raw in q.getlist(key) for t in raw.split(",") if t}
        if not wanted:
            continue
        ok = {"tags": wanted <= tags, "tags-any": bool(wanted & tags),
              "not-tags": not wanted <= tags, "not-tags-any": not (wanted & tags)}[key]
        if not ok:
            return False
    return True


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def _sort_key(key: str, item: dict[str, Any]) -> tuple[int, Any]:
    return _sort_value(item.get(key))


def listing(request: Request, ctx: RequestContext, plural: str,
            items: list[dict[str, Any]], max_limit: int,
            extra: Callable[[dict[str, Any]], bool] | None = None) -> JSONResponse:
    q = request.query_params
    items = [strip(request, ctx, i) for i in items]
    for proj_key in ("tenant_id", "project_id"):
        wanted = q.getlist(proj_key)
        if wanted:
            items = [i for i in items if i.get("project_id") in wanted]
    keys = {k for k in q if k not in RESERVED}
    for key in keys:
        wanted = q.getlist(key)
        items = [i for i in items if key not in i or _matches(i[key], wanted)]
    items = [i for i in items if _tag_filter(request, i)]
    if extra is not None:
        items = [i for i in items if extra(i)]
    sort_keys = q.getlist("sort_key")
    sort_dirs = q.getlist("sort_dir")
    if sort_keys:
        if len(sort_dirs) not in (0, len(sort_keys)):
            raise NeutronBadRequest("The number of sort_keys and sort_dirs must be same",
                                    "HTTPBadRequest")
        for d in sort_dirs:
            if d not in ("asc", "desc"):
                raise NeutronBadRequest(f"{d} is invalid value for sort_dirs, valid value is "
                                        "'asc' and 'desc'", "HTTPBadRequest")
        for k in sort_keys:
            if items and k not in items[0]:
                raise NeutronBadRequest(f"{k} is invalid attribute for sort_keys",
                                        "HTTPBadRequest")
        dirs = sort_dirs or ["asc"] * len(sort_keys)
        for k, d in reversed(list(zip(sort_keys, dirs, strict=True))):
            items.sort(key=functools.partial(_sort_key, k), reverse=d == "desc")
    limit = parse_limit(q.get("limit"), max_limit)
    reverse = q.get("page_reverse", "").lower() == "true"
    marker = q.get("marker")
    has_more = False
    if reverse:
        items.reverse()
    if marker:
        index = next((n for n, i in enumerate(items) if i.get("id") == marker), None)
        if index is not None:
            items = items[index + 1:]
    if limit:
        has_more = len(items) > limit
        items = items[:limit]
    if reverse:
        items.reverse()
    fields = fields_of(request)
    body: dict[str, Any] = {plural: [project(i, fields) for i in items]}
    if limit:
        links = page_links(request, items, limit, previous=True, has_more=has_more)
        if links:
            body[f"{plural}_links"] = links
    return JSONResponse(body)
