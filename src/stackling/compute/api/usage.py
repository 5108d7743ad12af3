"""``os-simple-tenant-usage`` (server hours per project over a period),
``os-instance_usage_audit_log`` and ``os-migrations`` (none yet: no move operations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import or_, select

from stackling.common.errors import BadRequest
from stackling.common.timeutils import utcnow
from stackling.compute.api.common import authorize, caller, compute, query_bool
from stackling.compute.api.microversion import at_least
from stackling.compute.api.servers import load
from stackling.compute.models import Instance, Migration
from stackling.compute.service import hosts
from stackling.web.pagination import page_links, parse_limit
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1")

_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _when(value: str | None, name: str) -> datetime:
    if value is None:
        return utcnow()
    for fmt in _FORMATS:
        try:
            return datetime.strptime(value.rstrip("Z"), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise BadRequest(f"Invalid {name} time. The time must be in ISO 8601 format.")


def _period(request: Request) -> tuple[datetime, datetime]:
    start = _when(request.query_params.get("start"), "start")
    end = _when(request.query_params.get("end"), "end")
    if start > end:
        raise BadRequest("Invalid start time. The start time cannot occur after the end "
                         "time.")
    return start, end


def _naive(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat()


async def _usages(request: Request, start: datetime, end: datetime,
                  project: str | None) -> dict[str, dict[str, Any]]:
    svc = compute(request)
    query = select(Instance).where(
        Instance.launched_at.is_not(None), Instance.launched_at < end,
        or_(Instance.terminated_at.is_(None), Instance.terminated_at > start))
    if project is not None:
        query = query.where(Instance.project_id == project)
    async with svc.store.read() as session:
        rows = list((await session.execute(query.order_by(Instance.id))).scalars())
    now = utcnow()
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        assert row.launched_at is not None
        begin = max(row.launched_at, start)
        finish = min(row.terminated_at or now, end)
        hours = max((finish - begin).total_seconds(), 0) / 3600
        local_gb = row.root_gb + row.ephemeral_gb
        t = out.setdefault(row.project_id, {
            "tenant_id": row.project_id, "total_local_gb_usage": 0.0,
            "total_vcpus_usage": 0.0, "total_memory_mb_usage": 0.0, "total_hours": 0.0,
            "start": _naive(start), "stop": _naive(end), "server_usages": []})
        t["total_local_gb_usage"] += local_gb * hours
        t["total_vcpus_usage"] += row.vcpus * hours
        t["total_memory_mb_usage"] += row.memory_mb * hours
        t["total_hours"] += hours
        ended = row.terminated_at
        t["server_usages"].append({
            "instance_id": row.uuid, "name": row.display_name, "hours": hours,
            "memory_mb": row.memory_mb, "local_gb": local_gb, "vcpus": row.vcpus,
            "tenant_id": row.project_id, "flavor": row.flavor.get("name", ""),
            "started_at": _naive(row.launched_at),
            "ended_at": _naive(ended) if ended else None,
            "state": "terminated" if row.deleted else row.vm_state,
            "uptime": int(((ended or now) - row.launched_at).total_seconds())})
    return out


@router.get("/os-simple-tenant-usage")
async def list_usage(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-simple-tenant-usage:list", {})
    start, end = _period(request)
    detailed = query_bool(request.query_params.get("detailed", "0"), "detailed")
    usages = list((await _usages(request, start, end, None)).values())
    limit = None
    if at_least(request, "2.40"):
        limit = parse_limit(request.query_params.get("limit"), compute(request).conf.max_limit)
        marker = request.query_params.get("marker")
        if marker is not None:
            ids = [u["tenant_id"] for u in usages]
            if marker not in ids:
                raise BadRequest(f"marker [{marker}] not found")
            usages = usages[ids.index(marker) + 1:]
        if limit is not None:
            usages = usages[:limit]
    if not detailed:
        for u in usages:
            u.pop("server_usages")
    body: dict[str, Any] = {"tenant_usages": usages}
    if limit is not None:
        nav = page_links(request, usages, limit, marker_key="tenant_id")
        if nav:
            body["tenant_usages_links"] = nav
    return JSONResponse(body)


@router.get("/os-simple-tenant-usage/{project_id}")
async def show_usage(request: Request, project_id: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-simple-tenant-usage:show",
              {"project_id": project_id})
    start, end = _period(request)
    usage = (await _usages(request, start, end, project_id)).get(project_id, {})
    return JSONResponse({"tenant_usage": usage})


# -- instance usage audit log -----------------------------------------------------------------
async def _audit(request: Request, before: datetime) -> dict[str, Any]:
    svc = compute(request)
    views = await hosts.list_services(svc.store, svc.conf, binary=hosts.COMPUTE_BINARY)
    begin = before.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    names = [v.service.host for v in views]
    return {"hosts_not_run": names, "log": {}, "num_hosts": len(names), "num_hosts_done": 0,
            "num_hosts_not_run": len(names), "num_hosts_running": 0,
            "overall_status": f"0 of {len(names)} hosts done. 0 errors.",
            "period_beginning": _naive(begin).replace("T", " "),
            "period_ending": _naive(before).replace("T", " "), "total_errors": 0,
            "total_instances": 0}


@router.get("/os-instance_usage_audit_log")
async def list_audit_log(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-instance-usage-audit-log:list", {})
    return JSONResponse({"instance_usage_audit_logs": await _audit(request, utcnow())})


@router.get("/os-instance_usage_audit_log/{before}")
async def show_audit_log(request: Request, before: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-instance-usage-audit-log:show", {})
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            when = datetime.strptime(before, fmt).replace(tzinfo=UTC)
            break
        except ValueError:
            continue
    else:
        raise BadRequest("Invalid timestamp for date %s" % before)  # noqa: UP031
    return JSONResponse({"instance_usage_audit_log": await _audit(request, when)})


# -- migrations -------------------------------------------------------------------------------
def _migration(request: Request, m: Migration) -> dict[str, Any]:
    out: dict[str, Any] = {
        "created_at": _naive(m.created_at), "dest_compute": m.dest_compute,
        "dest_host": None, "dest_node": m.dest_node, "id": m.id,
        "instance_uuid": m.instance_uuid, "new_instance_type_id": 0,
        "old_instance_type_id": 0, "source_compute": m.source_compute,
        "source_node": m.source_node, "status": m.status,
        "updated_at": _naive(m.updated_at) if m.updated_at else None}
    if at_least(request, "2.23"):
        out["migration_type"] = m.migration_type
    if at_least(request, "2.59"):
        out["uuid"] = m.uuid
    if at_least(request, "2.80"):
        out["user_id"] = m.user_id
        out["project_id"] = m.project_id
    return out


@router.get("/os-migrations")
async def list_migrations(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-migrations:index", {})
    query = select(Migration).order_by(Migration.id.desc())
    q = request.query_params
    for key, column in (("instance_uuid", Migration.instance_uuid),
                        ("status", Migration.status),
                        ("migration_type", Migration.migration_type)):
        if key in q:
            query = query.where(column == q[key])
    if "host" in q:
        query = query.where(or_(Migration.source_compute == q["host"],
                                Migration.dest_compute == q["host"]))
    async with compute(request).store.read() as session:
        rows = list((await session.execute(query)).scalars())
    return JSONResponse({"migrations": [_migration(request, m) for m in rows]})


@router.get("/servers/{server_id}/migrations")
async def list_server_migrations(request: Request, server_id: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:servers:migrations:index", {})
    await load(request, ctx, server_id)
    return JSONResponse({"migrations": []})

