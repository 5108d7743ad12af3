"""``/v2.1/os-keypairs``: list, show, import or generate, delete (per user; admins may name
another user with ``user_id`` from 2.10)."""

from __future__ import annotations

import re
import string as strings
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest
from stackling.compute.api.common import (
    authorize,
    caller,
    compute,
    invalid,
    json_body,
    no_extra,
    obj,
    required,
)
from stackling.compute.api.microversion import at_least
from stackling.compute.api.views import keypair_basic, keypair_created, keypair_show
from stackling.compute.service import keypairs, quotas
from stackling.web.pagination import page_links, parse_limit
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/os-keypairs")

_SAFE_OLD = set("_- " + strings.digits + strings.ascii_letters)
_NAME_292 = re.compile(r"^[a-zA-Z0-9@._\- ]{1,255}$")


def _user(request: Request, ctx: RequestContext, explicit: Any = None) -> str:
    """Whose keypairs: the caller's, or (2.10+) ``user_id`` from the query or body."""
    user = explicit if explicit is not None else request.query_params.get("user_id")
    if user is not None and at_least(request, "2.10"):
        return str(user)
    return ctx.user_id or ""


def _target(user_id: str) -> dict[str, Any]:
    return {"user_id": user_id}


@router.get("")
async def list_keypairs(request: Request) -> JSONResponse:
    ctx = await caller(request)
    user_id = _user(request, ctx)
    authorize(request, ctx, "os_compute_api:os-keypairs:index", _target(user_id))
    svc = compute(request)
    limit = marker = None
    if at_least(request, "2.35"):
        limit = parse_limit(request.query_params.get("limit"), svc.conf.max_limit)
        marker = request.query_params.get("marker")
    records = await keypairs.list_keypairs(svc.store, user_id, limit, marker)
    items = [{"keypair": keypair_basic(request, k)} for k in records]
    body: dict[str, Any] = {"keypairs": items}
    if limit is not None:
        nav = page_links(request, [{"name": k.name} for k in records], limit,
                         marker_key="name")
        if nav:
            body["keypairs_links"] = nav
    return JSONResponse(body)


@router.get("/{name}")
async def show_keypair(request: Request, name: str) -> JSONResponse:
    ctx = await caller(request)
    user_id = _user(request, ctx)
    authorize(request, ctx, "os_compute_api:os-keypairs:show", _target(user_id))
    record = await keypairs.get(compute(request).store, user_id, name)
    return JSONResponse({"keypair": keypair_show(request, record)})


@router.post("")
async def create_keypair(request: Request) -> JSONResponse:
    ctx = await caller(request)
    kp = obj(await json_body(request), "keypair")
    allowed = {"name", "public_key"}
    if at_least(request, "2.2"):
        allowed.add("type")
    if at_least(request, "2.10"):
        allowed.add("user_id")
    no_extra(kp, allowed, "keypair")
    name = required(kp, "name", "keypair")
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        raise invalid("name", name, "is not a string of 1-255 characters")
    if at_least(request, "2.92"):
        if not _NAME_292.match(name):
            raise invalid("name", name, "does not match the allowed characters")
    elif set(name) - _SAFE_OLD or not name.strip():
        raise BadRequest("Keypair data is invalid: Keypair name contains unsafe characters")
    public_key = kp.get("public_key")
    if public_key is None and at_least(request, "2.92"):
        raise invalid("keypair", kp, "'public_key' is a required property")
    if public_key is not None and not isinstance(public_key, str):
        raise invalid("public_key", public_key, "is not of type 'string'")
    key_type = kp.get("type", "ssh")
    if key_type not in ("ssh", "x509"):
        raise invalid("type", key_type, "is not one of ['ssh', 'x509']")
    user_id = _user(request, ctx, kp.get("user_id"))
    authorize(request, ctx, "os_compute_api:os-keypairs:create", _target(user_id))
    svc = compute(request)
    async with svc.store.read() as session:
        limits = await quotas.limits_for(session, ctx.project_id or "", svc.conf.quotas)
    record = await keypairs.create(svc.store, user_id, name, public_key, key_type,
                                   limits["key_pairs"])
    return JSONResponse({"keypair": keypair_created(request, record)},
                        status_code=201 if at_least(request, "2.2") else 200)


@router.delete("/{name}")
async def delete_keypair(request: Request, name: str) -> Response:
    ctx = await caller(request)
    user_id = _user(request, ctx)
    authorize(request, ctx, "os_compute_api:os-keypairs:delete", _target(user_id))
    await keypairs.delete(compute(request).store, user_id, name)
    return Response(status_code=204 if at_least(request, "2.2") else 202)
