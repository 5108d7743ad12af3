"""Quotas, limits, services, availability zones, pools, hosts and extensions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, Forbidden
from stackling.volume.api.common import authorize, caller, json_body, reply, volumes
from stackling.volume.api.microversion import at_least
from stackling.volume.api.views import ts
from stackling.volume.service import admin as service
from stackling.volume.service.common import live_pools

router = APIRouter()


# -- quotas -----------------------------------------------------------------------------------
@router.get("/v3/os-quota-sets/{project_id}")
async def show_quotas(request: Request, project_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:quotas:show", {"project_id": project_id})
    usage = request.query_params.get("usage", "false").lower() in ("true", "1")
    body: dict[str, Any] = {"id": project_id,
                            **await service.quota_set(volumes(request), project_id, usage)}
    return reply({"quota_set": body})


@router.get("/v3/os-quota-sets/{project_id}/defaults")
async def quota_defaults(request: Request, project_id: str) -> Response:
    await caller(request)
    return reply({"quota_set": {"id": project_id,
                                **await service.quota_defaults(volumes(request))}})


@router.put("/v3/os-quota-sets/{project_id}")
async def update_quotas(request: Request, project_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:quotas:update")
    body = await json_body(request)
    values = body.get("quota_set")
    if not isinstance(values, dict):
        raise BadRequest("Missing required element 'quota_set' in request body.")
    values = {k: v for k, v in values.items() if k not in ("id", "tenant_id")}
    return reply({"quota_set": await service.update_quotas(volumes(request), project_id,
                                                           values)})


@router.delete("/v3/os-quota-sets/{project_id}")
async def delete_quotas(request: Request, project_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:quotas:delete")
    await service.delete_quotas(volumes(request), project_id)
    return Response(status_code=200)


@router.get("/v3/os-quota-class-sets/{class_name}")
async def show_class(request: Request, class_name: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:quota_classes")
    return reply({"quota_class_set": {"id": class_name,
                                      **await service.quota_defaults(volumes(request),
                                                                     class_name)}})


@router.put("/v3/os-quota-class-sets/{class_name}")
async def update_class(request: Request, class_name: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:quota_classes")
    body = await json_body(request)
    values = body.get("quota_class_set")
    if not isinstance(values, dict):
        raise BadRequest("Missing required element 'quota_class_set' in request body.")
    return reply({"quota_class_set": await service.update_class(volumes(request), class_name,
                                                                values)})


@router.get("/v3/limits")
async def limits(request: Request) -> Response:
    ctx = await caller(request)
    project = ctx.project_id or ""
    wanted = request.query_params.get("project_id")
    if wanted and wanted != project:
        if not ctx.is_admin:
            raise Forbidden("Policy doesn't allow limits for another project.")
        project = wanted
    q = await service.quota_set(volumes(request), project, True)

    def get(key: str, part: str) -> int:
        item = q.get(key, {})
        return int(item.get(part, 0)) if isinstance(item, dict) else 0

    absolute = {"maxTotalVolumes": get("volumes", "limit"),
                "maxTotalSnapshots": get("snapshots", "limit"),
                "maxTotalVolumeGigabytes": get("gigabytes", "limit"),
                "maxTotalBackups": get("backups", "limit"),
                "maxTotalBackupGigabytes": get("backup_gigabytes", "limit"),
                "totalVolumesUsed": get("volumes", "in_use"),
                "totalGigabytesUsed": get("gigabytes", "in_use"),
                "totalSnapshotsUsed": get("snapshots", "in_use"),
                "totalBackupsUsed": get("backups", "in_use"),
                "totalBackupGigabytesUsed": get("backup_gigabytes", "in_use")}
    return reply({"limits": {"rate": [], "absolute": absolute}})


# -- services, zones, pools, hosts ------------------------------------------------------------
def _same_host(have: str, want: str) -> bool:
    """Cinder's host filter: ``node`` matches ``node``, ``node@backend`` and
    ``node@backend#pool``; ``node@backend`` matches its pools."""
    if have == want:
        return True
    if "#" in want:
        return False
    return have.startswith(want + "#") or ("@" not in want and have.startswith(want + "@"))


@router.get("/v3/os-services")
async def list_services(request: Request) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:services:index")
    host = request.query_params.get("host")
    binary = request.query_params.get("binary")
    out = []
    for row, up in await service.services(volumes(request)):
        if (host and not _same_host(row.host, host)) or (binary and row.binary != binary):
            continue
        item: dict[str, Any] = {
            "binary": row.binary, "host": row.host, "zone": row.zone,
            "status": "disabled" if row.disabled else "enabled",
            "state": "up" if up else "down", "updated_at": ts(row.updated_at),
            "disabled_reason": row.disabled_reason}
        if row.binary == "cinder-volume":
            item.update({"frozen": row.frozen, "replication_status": "disabled",
                         "active_backend_id": None})
        if at_least(request, "3.7"):
            item["cluster"] = None
        if at_least(request, "3.49") and row.binary == "cinder-volume":
            item["backend_state"] = "up" if up else "down"
        out.append(item)
    return reply({"services": out})


@router.put("/v3/os-services/{verb}")
async def update_service(request: Request, verb: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:services:update")
    if verb not in ("enable", "disable", "disable-log-reason"):
        raise BadRequest(f"Invalid input received: Unknown action {verb}")
    body = await json_body(request)
    host, binary = body.get("host"), body.get("binary")
    if not isinstance(host, str) or not isinstance(binary, str):
        raise BadRequest("Missing required element 'host' and 'binary' in request body.")
    reason = body.get("disabled_reason") if verb == "disable-log-reason" else None
    if verb == "disable-log-reason" and (not isinstance(reason, str) or not reason.strip()):
        raise BadRequest("Disabled reason contains invalid characters or is too long")
    row = await service.set_service(volumes(request), host, binary, verb != "enable",
                                    reason)
    out: dict[str, Any] = {"disabled": row.disabled, "status": "disabled" if row.disabled
                           else "enabled", "host": row.host, "service": row.binary,
                           "binary": row.binary}
    if verb != "disable":
        out["disabled_reason"] = row.disabled_reason
    return reply(out)


@router.get("/v3/os-availability-zone")
async def zones(request: Request) -> Response:
    await caller(request)
    zone = volumes(request).conf.default_availability_zone
    return reply({"availabilityZoneInfo": [{"zoneName": zone,
                                            "zoneState": {"available": True}}]})


@router.get("/v3/scheduler-stats/get_pools")
async def pools(request: Request) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "scheduler_extension:scheduler_stats:get_pools")
    svc = volumes(request)
    async with svc.store.read() as session:
        found = await live_pools(session, svc)
    detail = request.query_params.get("detail", "false").lower() in ("true", "1")
    name = request.query_params.get("name")
    backend = request.query_params.get("volume_backend_name")
    out = []
    for pool in found:
        if name and pool.name != name:
            continue
        if backend and pool.capabilities.get("volume_backend_name") != backend:
            continue
        item: dict[str, Any] = {"name": pool.name}
        if detail:
            item["capabilities"] = {k: v for k, v in pool.stats().items() if k in (
                "QoS_support", "total_capacity_gb", "volume_backend_name", "free_capacity_gb",
                "driver_version", "reserved_percentage", "storage_protocol", "vendor_name",
                "provisioned_capacity_gb", "allocated_capacity_gb",
                "max_over_subscription_ratio", "thin_provisioning_support",
                "thick_provisioning_support", "multiattach")}
        out.append(item)
    return reply({"pools": out})


@router.get("/v3/capabilities/{host}")
async def capabilities(request: Request, host: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:capabilities")
    svc = volumes(request)
    async with svc.store.read() as session:
        found = [p for p in await live_pools(session, svc) if p.name.split("#")[0] == host]
    if not found:
        from stackling.common.errors import NotFound

        raise NotFound(f"Host {host} could not be found.")
    pool = found[0]
    return reply({"namespace": f"OS::Storage::Capabilities::{host}",
                  "vendor_name": "stackling", "volume_backend_name":
                  pool.capabilities.get("volume_backend_name"), "pool_name": None,
                  "driver_version": "1.0", "storage_protocol":
                  pool.capabilities.get("storage_protocol"), "display_name": None,
                  "description": None, "visibility": None, "replication_targets": [],
                  "properties": {}})


@router.get("/v3/os-hosts")
async def hosts(request: Request) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:hosts")
    out = []
    for row, up in await service.services(volumes(request)):
        out.append({"service-status": "available" if up else "unavailable",
                    "service": row.binary, "zone": row.zone,
                    "service-state": "disabled" if row.disabled else "enabled",
                    "host_name": row.host, "last-update": ts(row.updated_at)})
    return reply({"hosts": out})


@router.get("/v3/os-hosts/{host}")
async def host(request: Request, host: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:hosts")
    rows = await service.host_usage(volumes(request), host)
    return reply({"host": [{"resource": r} for r in rows]})


EXTENSIONS = [
    ("AvailabilityZones", "os-availability-zone"), ("Backups", "backups"),
    ("Hosts", "os-hosts"), ("QuotaClasses", "os-quota-class-sets"),
    ("Quotas", "os-quota-sets"), ("Services", "os-services"),
    ("SchedulerStats", "scheduler-stats"), ("TypesManage", "os-types-manage"),
    ("TypesExtraSpecs", "os-types-extra-specs"), ("VolumeActions", "os-volume-actions"),
    ("VolumeTransfer", "os-volume-transfer"), ("VolumeTypeAccess", "os-volume-type-access"),
    ("VolumeImageMetadata", "os-vol-image-meta"), ("VolumeHostAttribute", "os-vol-host-attr"),
    ("VolumeTenantAttribute", "os-vol-tenant-attr"),
    ("VolumeMigStatusAttribute", "os-vol-mig-status-attr"),
    ("AdminActions", "os-admin-actions"), ("ExtendedSnapshotAttributes",
                                           "os-extended-snapshot-attributes"),
    ("SnapshotActions", "os-snapshot-actions"), ("UsedLimits", "os-used-limits"),
    ("Capabilities", "capabilities"),
]


@router.get("/v3/extensions")
async def extensions(request: Request) -> Response:
    await caller(request)
    return reply({"extensions": [
        {"alias": alias, "name": name, "description": f"{name} support.",
         "namespace": f"https://docs.openstack.org/volume/ext/{alias}/api/v1",
         "updated": "2013-04-18T00:00:00+00:00", "links": []}
        for name, alias in EXTENSIONS]})
