"""``/v2.1/os-hosts`` (deprecated in 2.43, answered until then): hosts and their services,
per-host resources, enable/disable. Power actions on hosts are not supported (501)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from stackling.common.errors import BadRequest, NotFound, NotImplementedYet
from stackling.compute.api.common import authorize, caller, compute, json_body
from stackling.compute.api.microversion import at_least
from stackling.compute.service import hosts
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/os-hosts")


async def _admin(request: Request, rule: str) -> None:
    if at_least(request, "2.43"):
        raise NotFound("The resource could not be found.")
    ctx = await caller(request)
    authorize(request, ctx, f"os_compute_api:os-hosts:{rule}", {})


@router.get("")
async def list_hosts(request: Request) -> JSONResponse:
    await _admin(request, "list")
    svc = compute(request)
    zone = request.query_params.get("zone")
    out = []
    for v in await hosts.list_services(svc.store, svc.conf):
        if zone and v.zone != zone:
            continue
        out.append({"host_name": v.service.host,
                    "service": v.service.binary.removeprefix("nova-"), "zone": v.zone})
    return JSONResponse({"hosts": out})


async def _compute_host(request: Request, host: str) -> hosts.HypervisorView:
    svc = compute(request)
    for v in await hosts.list_hypervisors(svc.store, svc.conf):
        if v.node.host == host:
            return v
    raise NotFound(f"Compute host {host} could not be found.")


@router.get("/{host}")
async def show_host(request: Request, host: str) -> JSONResponse:
    await _admin(request, "show")
    v = await _compute_host(request, host)
    n = v.node

    def resource(project: str, cpu: int, memory: int, disk: int) -> dict[str, Any]:
        return {"resource": {"host": host, "project": project, "cpu": cpu,
                             "memory_mb": memory, "disk_gb": disk}}

    return JSONResponse({"host": [
        resource("(total)", n.vcpus, n.memory_mb, n.local_gb),
        resource("(used_now)", v.vcpus_used, v.memory_mb_used, v.local_gb_used),
        resource("(used_max)", v.vcpus_used, v.memory_mb_used, v.local_gb_used)]})


@router.put("/{host}")
async def update_host(request: Request, host: str) -> JSONResponse:
    await _admin(request, "update")
    body = await json_body(request)
    extra = set(body) - {"status", "maintenance_mode"}
    if extra or not body:
        raise BadRequest("'status' or 'maintenance_mode' needed for host update")
    for key in body:
        if body[key] not in ("enable", "disable"):
            raise BadRequest(f"Invalid {key}: {body[key]!r}")
    view = await _compute_host(request, host)
    out: dict[str, Any] = {"host": host}
    if "maintenance_mode" in body:
        raise NotImplementedYet("Virt driver does not implement host maintenance mode.")
    if "status" in body and view.service is not None:
        disabled = body["status"] == "disable"
        await hosts.update_service(compute(request).store, view.service.id,
                                   disabled=disabled, reason=None)
        out["status"] = "disabled" if disabled else "enabled"
    return JSONResponse(out)


@router.get("/{host}/{power}")
async def host_power_action(request: Request, host: str, power: str) -> JSONResponse:
    if power not in ("startup", "shutdown", "reboot"):
        raise NotFound("The resource could not be found.")
    await _admin(request, power)
    await _compute_host(request, host)
    raise NotImplementedYet("Virt driver does not implement host power management.")
