"""``limits``, ``os-quota-sets`` and ``os-quota-class-sets``. The network-era resources
(floating_ips, security_groups, ...) show until 2.35 with fixed values, the injected file
limits until 2.56, as Nova shows them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest
from stackling.compute.api.common import authorize, boolean, caller, compute, json_body, obj
from stackling.compute.api.microversion import at_least
from stackling.compute.service import quotas
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1")

NETWORK = {"floating_ips": 10, "fixed_ips": -1, "security_groups": 10,
           "security_group_rules": 20}
INJECTED = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
ORDER = ("instances", "cores", "ram", "floating_ips", "fixed_ips", "metadata_items",
         "key_pairs", "security_groups", "security_group_rules", "server_groups",
         "server_group_members", *INJECTED)
_MAX = 0x7FFFFFFF


def shown(request: Request, *, classes: bool = False) -> list[str]:
    """The resources this microversion shows."""
    names = list(ORDER)
    if at_least(request, "2.36") or (classes and at_least(request, "2.50")):
        names = [n for n in names if n not in NETWORK]
    if at_least(request, "2.57"):
        names = [n for n in names if n not in INJECTED]
    if classes and not at_least(request, "2.50"):
        names = [n for n in names if n not in ("server_groups", "server_group_members")]
    return names


async def _limits(request: Request, project_id: str) -> tuple[dict[str, int], dict[str, int]]:
    svc = compute(request)
    async with svc.store.read() as session:
        limits = await quotas.limits_for(session, project_id, svc.conf.quotas)
        used = await quotas.usage(session, project_id)
    return {**NETWORK, **limits}, used


# -- limits -----------------------------------------------------------------------------------
@router.get("/limits")
async def show_limits(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:limits")
    project = ctx.project_id or ""
    other = request.query_params.get("tenant_id")
    if other and other != project:
        authorize(request, ctx, "os_compute_api:limits:other_project", {})
        project = other
    limits, used = await _limits(request, project)
    absolute: dict[str, int] = {
        "maxServerMeta": limits["metadata_items"], "maxTotalCores": limits["cores"],
        "maxTotalInstances": limits["instances"], "maxTotalKeypairs": limits["key_pairs"],
        "maxTotalRAMSize": limits["ram"], "maxServerGroups": limits["server_groups"],
        "maxServerGroupMembers": limits["server_group_members"],
        "totalCoresUsed": used["cores"], "totalInstancesUsed": used["instances"],
        "totalRAMUsed": used["ram"], "totalServerGroupsUsed": used["server_groups"]}
    if not at_least(request, "2.36"):
        absolute.update({"maxSecurityGroupRules": limits["security_group_rules"],
                         "maxSecurityGroups": limits["security_groups"],
                         "maxTotalFloatingIps": limits["floating_ips"],
                         "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0})
    if not at_least(request, "2.39"):
        absolute["maxImageMeta"] = limits["metadata_items"]
    if not at_least(request, "2.57"):
        absolute["maxPersonality"] = limits["injected_files"]
        absolute["maxPersonalitySize"] = limits["injected_file_content_bytes"]
    return JSONResponse({"limits": {"rate": [], "absolute": absolute}})


# -- os-quota-sets --------------------------------------------------------------------------
def _target(project_id: str) -> dict[str, Any]:
    return {"project_id": project_id}


@router.get("/os-quota-sets/{project_id}")
async def show_quota_set(request: Request, project_id: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-quota-sets:show", _target(project_id))
    limits, _ = await _limits(request, project_id)
    body: dict[str, Any] = {"id": project_id}
    body.update({r: limits[r] for r in shown(request)})
    return JSONResponse({"quota_set": body})


@router.get("/os-quota-sets/{project_id}/detail")
async def show_quota_set_detail(request: Request, project_id: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-quota-sets:detail", _target(project_id))
    limits, used = await _limits(request, project_id)
    if "key_pairs" not in used:
        used["key_pairs"] = 0
    body: dict[str, Any] = {"id": project_id}
    body.update({r: {"limit": limits[r], "in_use": used.get(r, 0), "reserved": 0}
                 for r in shown(request)})
    return JSONResponse({"quota_set": body})


@router.get("/os-quota-sets/{project_id}/defaults")
async def show_quota_defaults(request: Request, project_id: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-quota-sets:defaults", _target(project_id))
    svc = compute(request)
    async with svc.store.read() as session:
        defaults = {**NETWORK, **await quotas.defaults(session, svc.conf.quotas)}
    body: dict[str, Any] = {"id": project_id}
    body.update({r: defaults[r] for r in shown(request)})
    return JSONResponse({"quota_set": body})


def _values(request: Request, body: dict[str, Any], allowed: list[str],
            where: str) -> tuple[dict[str, int], bool]:
    force = False
    values: dict[str, int] = {}
    for key, raw in body.items():
        if key == "force" and where == "quota_set":
            force = boolean(raw, "force")
            continue
        if key not in allowed:
            raise BadRequest(f"Invalid input for field/attribute {where}. Value: {body}. "
                             f"Additional properties are not allowed ('{key}' was "
                             "unexpected)")
        if isinstance(raw, str) and raw.lstrip("-").isdigit():
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int) or not -1 <= raw <= _MAX:
            raise BadRequest(f"Invalid input for field/attribute {key}. Value: {raw}. "
                             f"{raw!r} is not a valid quota limit")
        values[key] = raw
    return values, force


@router.put("/os-quota-sets/{project_id}")
async def update_quota_set(request: Request, project_id: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-quota-sets:update", _target(project_id))
    body = obj(await json_body(request), "quota_set")
    values, force = _values(request, body, shown(request), "quota_set")
    limits, used = await _limits(request, project_id)
    if not force:
        for resource, limit in values.items():
            if 0 <= limit < used.get(resource, 0):
                raise BadRequest(f"Quota limit {limit} for {resource} must be greater than or "
                                 f"equal to already used and reserved {used[resource]}.")
    await quotas.set_project_limits(compute(request).store, project_id, values)
    limits.update(values)
    return JSONResponse({"quota_set": {r: limits[r] for r in shown(request)}})


@router.delete("/os-quota-sets/{project_id}")
async def delete_quota_set(request: Request, project_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-quota-sets:delete", _target(project_id))
    await quotas.reset_project_limits(compute(request).store, project_id)
    return Response(status_code=202)


# -- os-quota-class-sets ------------------------------------------------------------------
async def _class_limits(request: Request, name: str) -> dict[str, int]:
    svc = compute(request)
    async with svc.store.read() as session:
        limits = {**NETWORK, **await quotas.defaults(session, svc.conf.quotas)}
    if name != quotas.DEFAULT_CLASS:
        limits.update(await quotas.class_limits(svc.store, name))
    return limits


@router.get("/os-quota-class-sets/{name}")
async def show_quota_class(request: Request, name: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-quota-class-sets:show", {"quota_class": name})
    limits = await _class_limits(request, name)
    body: dict[str, Any] = {"id": name}
    body.update({r: limits[r] for r in shown(request, classes=True)})
    return JSONResponse({"quota_class_set": body})


@router.put("/os-quota-class-sets/{name}")
async def update_quota_class(request: Request, name: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-quota-class-sets:update", {})
    if not name or len(name) > 255:
        raise BadRequest("Invalid quota class name")
    body = obj(await json_body(request), "quota_class_set")
    values, _ = _values(request, body, shown(request, classes=True), "quota_class_set")
    await quotas.set_class_limits(compute(request).store, name, values)
    limits = await _class_limits(request, name)
    return JSONResponse({"quota_class_set": {r: limits[r]
                                             for r in shown(request, classes=True)}})
