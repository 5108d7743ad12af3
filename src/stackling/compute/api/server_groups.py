"""``/v2.1/os-server-groups``: ``policies`` lists until 2.63, ``policy`` + ``rules`` from
2.64; soft policies from 2.15; project and user ids from 2.13."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest
from stackling.compute.api.common import (
    authorize,
    caller,
    compute,
    invalid,
    json_body,
    no_extra,
    obj,
    query_bool,
    required,
    string,
)
from stackling.compute.api.microversion import at_least
from stackling.compute.service import server_groups
from stackling.web.pagination import parse_limit
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/os-server-groups")


def view(request: Request, rec: server_groups.GroupRecord) -> dict[str, Any]:
    g = rec.group
    out: dict[str, Any] = {"id": g.uuid, "name": g.name, "members": list(rec.members)}
    if at_least(request, "2.64"):
        out["policy"] = g.policy
        out["rules"] = dict(g.rules)
    else:
        out["policies"] = [g.policy]
        out["metadata"] = {}
    if at_least(request, "2.13"):
        out["project_id"] = g.project_id
        out["user_id"] = g.user_id
    return out


def _policy(request: Request, value: Any) -> str:
    allowed = ["affinity", "anti-affinity"]
    if at_least(request, "2.15"):
        allowed += ["soft-affinity", "soft-anti-affinity"]
    if value not in allowed:
        raise invalid("policy", value, f"{value!r} is not one of {allowed}")
    return str(value)


@router.post("")
async def create_group(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-server-groups:create")
    body = obj(await json_body(request), "server_group")
    name = string(body, "name", min_len=1, max_len=255, name_like=True) \
        if "name" in body else required(body, "name", "server_group")
    rules: dict[str, Any] = {}
    if at_least(request, "2.64"):
        no_extra(body, {"name", "policy", "rules"}, "server_group")
        policy = _policy(request, required(body, "policy", "server_group"))
        raw_rules = body.get("rules", {})
        if not isinstance(raw_rules, dict) or set(raw_rules) - {"max_server_per_host"}:
            raise invalid("rules", raw_rules, "only 'max_server_per_host' is allowed")
        if raw_rules:
            if policy != "anti-affinity":
                raise BadRequest("Only anti-affinity policy supports rules.")
            value = raw_rules["max_server_per_host"]
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid("max_server_per_host", value, "must be an integer >= 1")
            rules = {"max_server_per_host": value}
    else:
        no_extra(body, {"name", "policies"}, "server_group")
        policies = required(body, "policies", "server_group")
        if not isinstance(policies, list) or len(policies) != 1:
            raise invalid("policies", policies, "must be a list of exactly one policy")
        policy = _policy(request, policies[0])
    rec = await server_groups.create(compute(request), ctx, str(name), policy, rules)
    return JSONResponse({"server_group": view(request, rec)})


@router.get("")
async def list_groups(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-server-groups:index")
    q = request.query_params
    all_projects = False
    if "all_projects" in q:
        all_projects = q["all_projects"] == "" or query_bool(q["all_projects"],
                                                             "all_projects")
        if all_projects:
            authorize(request, ctx, "os_compute_api:os-server-groups:index:all_projects", {})
    svc = compute(request)
    limit = parse_limit(q.get("limit"), svc.conf.max_limit)
    try:
        offset = int(q.get("offset", "0"))
    except ValueError:
        raise BadRequest("offset param must be an integer") from None
    if offset < 0:
        raise BadRequest("offset param must be positive")
    records = await server_groups.list_groups(svc, ctx, all_projects=all_projects,
                                              limit=limit, offset=offset)
    return JSONResponse({"server_groups": [view(request, r) for r in records]})


@router.get("/{group_id}")
async def show_group(request: Request, group_id: str) -> JSONResponse:
    ctx = await caller(request)
    rec = await server_groups.get(compute(request), ctx, group_id)
    authorize(request, ctx, "os_compute_api:os-server-groups:show",
              {"project_id": rec.group.project_id})
    return JSONResponse({"server_group": view(request, rec)})


@router.delete("/{group_id}")
async def delete_group(request: Request, group_id: str) -> Response:
    ctx = await caller(request)
    rec = await server_groups.get(compute(request), ctx, group_id)
    authorize(request, ctx, "os_compute_api:os-server-groups:delete",
              {"project_id": rec.group.project_id})
    await server_groups.delete(compute(request), ctx, group_id)
    return Response(status_code=204)
