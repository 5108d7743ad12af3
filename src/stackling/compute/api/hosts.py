"""``os-services`` (heartbeats -> up/down, enable/disable, forced down), ``os-hypervisors``
(nodes with their placement usage) and ``os-availability-zone``."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, NotFound
from stackling.compute.api.common import (
    authorize,
    boolean,
    caller,
    compute,
    json_body,
    query_bool,
)
from stackling.compute.api.microversion import at_least
from stackling.compute.api.views import usage_time
from stackling.compute.service import hosts
from stackling.web.pagination import page_links, parse_limit
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


# -- os-services ------------------------------------------------------------------------------
def _service(request: Request, v: hosts.ServiceView, forced: bool) -> dict[str, Any]:
    s = v.service
    out: dict[str, Any] = {
        "id": s.uuid if at_least(request, "2.53") else s.id, "binary": s.binary,
        "host": s.host, "zone": v.zone, "status": "disabled" if s.disabled else "enabled",
        "state": "up" if v.up else "down",
        "updated_at": usage_time(s.updated_at or s.last_seen_up),
        "disabled_reason": s.disabled_reason}
    if forced:
        out["forced_down"] = s.forced_down
    return out


@router.get("/os-services")
async def list_services(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-services:list", {})
    svc = compute(request)
    views = await hosts.list_services(svc.store, svc.conf, request.query_params.get("host"),
                                      request.query_params.get("binary"))
    forced = at_least(request, "2.11")
    return JSONResponse({"services": [_service(request, v, forced) for v in views]})


@router.put("/os-services/{action}")
async def update_service(request: Request, action: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-services:update", {})
    body = await json_body(request)
    svc = compute(request)
    if at_least(request, "2.53"):
        return await _update_v253(request, action, body)
    actions = {"enable", "disable", "disable-log-reason"} | (
        {"force-down"} if at_least(request, "2.11") else set())
    if action not in actions:
        raise NotFound("Unknown action")
    host, binary = body.get("host"), body.get("binary")
    if not isinstance(host, str) or not isinstance(binary, str):
        raise BadRequest("Invalid input: 'host' and 'binary' are required strings.")
    if binary != hosts.COMPUTE_BINARY:
        raise BadRequest(f"Updating a {binary} service is not supported. Only nova-compute "
                         "services can be updated.")
    row = await hosts.find_service(svc.store, host, binary)
    out: dict[str, Any] = {"host": host, "binary": binary}
    if action == "force-down":
        if "forced_down" not in body:
            raise BadRequest("Missing forced_down field")
        forced = boolean(body["forced_down"], "forced_down")
        await hosts.update_service(svc.store, row.id, forced_down=forced)
        out["forced_down"] = forced
        return JSONResponse({"service": out})
    reason = None
    if action == "disable-log-reason":
        reason = body.get("disabled_reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 255:
            raise BadRequest("Missing disabled reason field")
    await hosts.update_service(svc.store, row.id, disabled=action != "enable", reason=reason)
    out["status"] = "enabled" if action == "enable" else "disabled"
    if reason:
        out["disabled_reason"] = reason
    return JSONResponse({"service": out})


async def _update_v253(request: Request, ident: str, body: dict[str, Any]) -> JSONResponse:
    if not _UUID.match(ident):
        raise BadRequest(f"Invalid uuid {ident}")
    svc = compute(request)
    row = await hosts.get_service(svc.store, ident, by_uuid=True)
    if row.binary != hosts.COMPUTE_BINARY:
        raise BadRequest(f"Updating a {row.binary} service is not supported. Only "
                         "nova-compute services can be updated.")
    extra = set(body) - {"status", "disabled_reason", "forced_down"}
    if extra:
        raise BadRequest(f"Invalid input: unexpected {sorted(extra)}")
    disabled = reason = forced = None
    if "status" in body:
        if body["status"] not in ("enabled", "disabled"):
            raise BadRequest("Invalid input for field/attribute status.")
        disabled = body["status"] == "disabled"
        reason = body.get("disabled_reason")
        if not disabled and reason:
            raise BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.")
    elif "disabled_reason" in body:
        raise BadRequest("Specifying 'disabled_reason' without status is invalid.")
    if "forced_down" in body:
        forced = boolean(body["forced_down"], "forced_down")
    if disabled is None and forced is None:
        raise BadRequest("No updates were requested. Fields 'status' or 'forced_down' should "
                         "be specified.")
    await hosts.update_service(svc.store, row.id, disabled=disabled, reason=reason,
                               forced_down=forced)
    (view,) = [v for v in await hosts.list_services(svc.store, svc.conf, row.host, row.binary)]
    return JSONResponse({"service": _service(request, view, True)})


@router.delete("/os-services/{ident}")
async def delete_service(request: Request, ident: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-services:delete", {})
    svc = compute(request)
    if at_least(request, "2.53"):
        if not _UUID.match(ident):
            raise BadRequest(f"Invalid uuid {ident}")
        row = await hosts.get_service(svc.store, ident, by_uuid=True)
    else:
        if not ident.isdigit():
            raise BadRequest(f"Invalid ID {ident}: id must be an integer")
        row = await hosts.get_service(svc.store, ident, by_uuid=False)
    await hosts.delete_service(svc.store, row.id)
    return Response(status_code=204)


# -- os-hypervisors ---------------------------------------------------------------------------
def _hypervisor(request: Request, v: hosts.HypervisorView, detail: bool,
                with_servers: bool = False) -> dict[str, Any]:
    n, s = v.node, v.service
    uuids = at_least(request, "2.53")
    out: dict[str, Any] = {"id": n.uuid if uuids else n.id,
                           "hypervisor_hostname": n.hypervisor_hostname,
                           "state": "up" if v.up else "down",
                           "status": "disabled" if s is not None and s.disabled else "enabled"}
    if detail:
        out.update({"hypervisor_type": n.hypervisor_type,
                    "hypervisor_version": n.hypervisor_version, "host_ip": n.host_ip,
                    "service": {"id": (s.uuid if uuids else s.id) if s else None,
                                "host": n.host,
                                "disabled_reason": s.disabled_reason if s else None}})
        if at_least(request, "2.88"):
            out["uptime"] = None
        else:
            out.update({"vcpus": n.vcpus, "memory_mb": n.memory_mb, "local_gb": n.local_gb,
                        "vcpus_used": v.vcpus_used, "memory_mb_used": v.memory_mb_used,
                        "local_gb_used": v.local_gb_used,
                        "free_ram_mb": n.memory_mb - v.memory_mb_used,
                        "free_disk_gb": n.local_gb - v.local_gb_used,
                        "current_workload": 0, "running_vms": v.running_vms,
                        "disk_available_least": n.local_gb - v.local_gb_used,
                        "cpu_info": dict(n.cpu_info) if at_least(request, "2.28")
                        else json.dumps(n.cpu_info)})
    if v.servers:
        out["servers"] = [{"name": name, "uuid": uuid} for name, uuid in v.servers]
    elif with_servers and at_least(request, "2.75"):
        out["servers"] = []
    return out


async def _hypervisors(request: Request, detail: bool) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-hypervisors:list" +
              ("-detail" if detail else ""), {})
    svc = compute(request)
    q = request.query_params
    pattern = q.get("hypervisor_hostname_pattern") if at_least(request, "2.53") else None
    with_servers = at_least(request, "2.53") and query_bool(q.get("with_servers", "false"),
                                                            "with_servers")
    if pattern is not None and ("limit" in q or "marker" in q):
        raise BadRequest("Paging over hypervisors with the hypervisor_hostname_pattern query "
                         "parameter is not supported.")
    views = await hosts.list_hypervisors(svc.store, svc.conf, pattern=pattern,
                                         with_servers=with_servers)
    if pattern is not None and not views:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    limit = None
    if at_least(request, "2.33") and pattern is None:
        limit = parse_limit(q.get("limit"), svc.conf.max_limit)
        marker = q.get("marker")
        if marker is not None:
            ids = [str(v.node.uuid if at_least(request, "2.53") else v.node.id) for v in views]
            if marker not in ids:
                raise BadRequest(f"marker [{marker}] not found")
            views = views[ids.index(marker) + 1:]
        if limit is not None:
            views = views[:limit]
    items = [_hypervisor(request, v, detail, with_servers) for v in views]
    body: dict[str, Any] = {"hypervisors": items}
    if limit is not None:
        nav = page_links(request, items, limit)
        if nav:
            body["hypervisors_links"] = nav
    return JSONResponse(body)


@router.get("/os-hypervisors")
async def list_hypervisors(request: Request) -> JSONResponse:
    return await _hypervisors(request, detail=False)


@router.get("/os-hypervisors/detail")
async def list_hypervisors_detail(request: Request) -> JSONResponse:
    return await _hypervisors(request, detail=True)


@router.get("/os-hypervisors/statistics")
async def hypervisor_statistics(request: Request) -> JSONResponse:
    if at_least(request, "2.88"):
        raise NotFound("The resource could not be found.")
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-hypervisors:statistics", {})
    svc = compute(request)
    views = await hosts.list_hypervisors(svc.store, svc.conf)
    total = {k: 0 for k in ("count", "vcpus", "memory_mb", "local_gb", "vcpus_used",
                            "memory_mb_used", "local_gb_used", "free_ram_mb", "free_disk_gb",
                            "current_workload", "running_vms", "disk_available_least")}
    for v in views:
        n = v.node
        total["count"] += 1
        total["vcpus"] += n.vcpus
        total["memory_mb"] += n.memory_mb
        total["local_gb"] += n.local_gb
        total["vcpus_used"] += v.vcpus_used
        total["memory_mb_used"] += v.memory_mb_used
        total["local_gb_used"] += v.local_gb_used
        total["free_ram_mb"] += n.memory_mb - v.memory_mb_used
        total["free_disk_gb"] += n.local_gb - v.local_gb_used
        total["disk_available_least"] += n.local_gb - v.local_gb_used
        total["running_vms"] += v.running_vms
    return JSONResponse({"hypervisor_statistics": total})


async def _one(request: Request, ident: str, with_servers: bool = False
               ) -> hosts.HypervisorView:
    svc = compute(request)
    if at_least(request, "2.53") and not _UUID.match(ident):
        raise BadRequest(f"Invalid uuid {ident}")
    for v in await hosts.list_hypervisors(svc.store, svc.conf, with_servers=with_servers):
        if ident in (v.node.uuid, str(v.node.id)):
            if at_least(request, "2.53") or ident == str(v.node.id):
                return v
    raise NotFound(f"Hypervisor with ID '{ident}' could not be found.")


@router.get("/os-hypervisors/{ident}")
async def show_hypervisor(request: Request, ident: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-hypervisors:show", {})
    with_servers = at_least(request, "2.53") and query_bool(
        request.query_params.get("with_servers", "false"), "with_servers")
    view = await _one(request, ident, with_servers)
    return JSONResponse({"hypervisor": _hypervisor(request, view, True, with_servers)})


@router.get("/os-hypervisors/{ident}/uptime")
async def hypervisor_uptime(request: Request, ident: str) -> JSONResponse:
    if at_least(request, "2.88"):
        raise NotFound("The resource could not be found.")
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-hypervisors:uptime", {})
    view = await _one(request, ident)
    out = _hypervisor(request, view, False)
    out["uptime"] = " 00:00:00 up 0 min,  0 users,  load average: 0.00, 0.00, 0.00"
    return JSONResponse({"hypervisor": out})


async def _by_pattern(request: Request, pattern: str, servers: bool) -> JSONResponse:
    if at_least(request, "2.53"):
        raise NotFound("The resource could not be found.")
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-hypervisors:search", {})
    svc = compute(request)
    views = await hosts.list_hypervisors(svc.store, svc.conf, pattern=pattern,
                                         with_servers=servers)
    if not views:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return JSONResponse({"hypervisors": [_hypervisor(request, v, False) for v in views]})


@router.get("/os-hypervisors/{pattern}/search")
async def search_hypervisors(request: Request, pattern: str) -> JSONResponse:
    return await _by_pattern(request, pattern, False)


@router.get("/os-hypervisors/{pattern}/servers")
async def hypervisor_servers(request: Request, pattern: str) -> JSONResponse:
    return await _by_pattern(request, pattern, True)


# -- os-availability-zone -----------------------------------------------------------------
@router.get("/os-availability-zone")
async def list_zones(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-availability-zone:list")
    svc = compute(request)
    zones: dict[str, bool] = {}
    for v in await hosts.list_services(svc.store, svc.conf, binary=hosts.COMPUTE_BINARY):
        zones[v.zone] = zones.get(v.zone, False) or not v.service.disabled
    return JSONResponse({"availabilityZoneInfo": [
        {"zoneName": zone, "zoneState": {"available": available}, "hosts": None}
        for zone, available in sorted(zones.items())]})


@router.get("/os-availability-zone/detail")
async def list_zones_detail(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-availability-zone:detail", {})
    svc = compute(request)
    zones: dict[str, dict[str, dict[str, Any]]] = {}
    available: dict[str, bool] = {}
    for v in await hosts.list_services(svc.store, svc.conf):
        s = v.service
        zone_hosts = zones.setdefault(v.zone, {})
        zone_hosts.setdefault(s.host, {})[s.binary] = {
            "available": v.up, "active": not s.disabled,
            "updated_at": usage_time(s.updated_at or s.last_seen_up)}
        internal = v.zone == svc.conf.internal_service_availability_zone
        if s.binary == hosts.COMPUTE_BINARY or internal:
            available[v.zone] = available.get(v.zone, False) or not s.disabled
    return JSONResponse({"availabilityZoneInfo": [
        {"zoneName": zone, "zoneState": {"available": available.get(zone, True)},
         "hosts": zone_hosts} for zone, zone_hosts in sorted(zones.items())]})
