"""Unified limits: ``/v3/registered_limits``, ``/v3/limits`` and ``/v3/limits/model``.

Creation takes and returns lists (``{"limits": [...]}``, 201, no collection ``links``), as
Keystone. Listing limits is open to any authenticated caller but narrowed to what the token
reaches: admins, service users and system scope see all; a domain-scoped token sees the
domain's limits and its projects'; a project-scoped token sees its project's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.identity.api.common import authorize, caller, identity, json_body, require_object
from stackling.identity.api.reply import collection, linked, member, reply
from stackling.identity.service import limits
from stackling.identity.service.limits import LimitFilters

router = APIRouter(prefix="/v3")


def _filters(request: Request) -> LimitFilters:
    q = request.query_params
    return LimitFilters(service_id=q.get("service_id"), region_id=q.get("region_id"),
                        resource_name=q.get("resource_name"), project_id=q.get("project_id"),
                        domain_id=q.get("domain_id"))


# --- registered limits ---------------------------------------------------------------------


@router.api_route("/registered_limits", methods=["GET", "HEAD"])
async def list_registered_limits(request: Request) -> Response:
    await authorize(request, "identity:list_registered_limits")
    refs = await limits.list_registered_limits(identity(request).store, _filters(request))
    return collection(request, "registered_limits", "registered_limits", refs)


@router.post("/registered_limits")
async def create_registered_limits(request: Request) -> Response:
    await authorize(request, "identity:create_registered_limits")
    refs = await limits.create_registered_limits(identity(request).store,
                                                 await json_body(request))
    return reply(request, {"registered_limits": [
        linked(request, "registered_limits", r) for r in refs]}, status=201)


@router.api_route("/registered_limits/{reg_id}", methods=["GET", "HEAD"])
async def get_registered_limit(request: Request, reg_id: str) -> Response:
    await authorize(request, "identity:get_registered_limit")
    ref = await limits.get_registered_limit(identity(request).store, reg_id)
    return member(request, "registered_limits", "registered_limit", ref)


@router.patch("/registered_limits/{reg_id}")
async def update_registered_limit(request: Request, reg_id: str) -> Response:
    await authorize(request, "identity:update_registered_limit")
    body = require_object(await json_body(request), "registered_limit")
    ref = await limits.update_registered_limit(identity(request).store, reg_id, body)
    return member(request, "registered_limits", "registered_limit", ref)


@router.delete("/registered_limits/{reg_id}")
async def delete_registered_limit(request: Request, reg_id: str) -> Response:
    await authorize(request, "identity:delete_registered_limit")
    await limits.delete_registered_limit(identity(request).store, reg_id)
    return Response(status_code=204)


# --- limits --------------------------------------------------------------------------------


@router.api_route("/limits/model", methods=["GET", "HEAD"])
async def get_limit_model(request: Request) -> Response:
    await authorize(request, "identity:get_limit_model")
    return reply(request, {"model": dict(limits.MODEL)})


@router.api_route("/limits", methods=["GET", "HEAD"])
async def list_limits(request: Request) -> Response:
    ctx = await authorize(request, "identity:list_limits")
    store = identity(request).store
    wanted = _filters(request)
    roles = {r.lower() for r in ctx.roles}
    if ctx.system_scope or "admin" in roles or "service" in roles:
        refs = await limits.list_limits(store, wanted)
    elif ctx.domain_id:
        in_domain = await limits.project_ids_in_domain(store, ctx.domain_id)
        refs = [r for r in await limits.list_limits(store, wanted)
                if (r["project_id"] in in_domain if r["project_id"]
                    else r["domain_id"] == ctx.domain_id)]
    elif ctx.project_id:
        if wanted.project_id not in (None, ctx.project_id):
            refs = []
        else:
            wanted.project_id = ctx.project_id
            refs = await limits.list_limits(store, wanted)
    else:
        refs = []
    return collection(request, "limits", "limits", refs)


@router.post("/limits")
async def create_limits(request: Request) -> Response:
    await authorize(request, "identity:create_limits")
    refs = await limits.create_limits(identity(request).store, await json_body(request))
    return reply(request, {"limits": [linked(request, "limits", r) for r in refs]},
                 status=201)


@router.api_route("/limits/{limit_id}", methods=["GET", "HEAD"])
async def get_limit(request: Request, limit_id: str) -> Response:
    store = identity(request).store
    ctx = await caller(request)
    target = await limits.limit_target(store, limit_id)
    await authorize(request, "identity:get_limit", target, ctx=ctx)
    ref = await limits.get_limit(store, limit_id)
    return member(request, "limits", "limit", ref)


@router.patch("/limits/{limit_id}")
async def update_limit(request: Request, limit_id: str) -> Response:
    await authorize(request, "identity:update_limit")
    body = require_object(await json_body(request), "limit")
    ref = await limits.update_limit(identity(request).store, limit_id, body)
    return member(request, "limits", "limit", ref)


@router.delete("/limits/{limit_id}")
async def delete_limit(request: Request, limit_id: str) -> Response:
    await authorize(request, "identity:delete_limit")
    await limits.delete_limit(identity(request).store, limit_id)
    return Response(status_code=204)
