"""``/v3/backups``: create, list (+ detail), show, delete, restore, reset status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest
from stackling.volume.api import views
from stackling.volume.api.common import (
    accepted,
    all_tenants,
    authorize,
    boolean,
    caller,
    json_body,
    limit_marker,
    optional_str,
    reply,
    section,
    volumes,
)
from stackling.volume.service import backups as service
from stackling.volume.service.common import metadata, parse_sort
from stackling.web.pagination import page_links

router = APIRouter()


@router.post("/v3/backups")
async def create(request: Request) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "backup:create")
    body = section(await json_body(request), "backup")
    volume_id = body.get("volume_id")
    if not isinstance(volume_id, str) or not volume_id:
        raise BadRequest("Invalid input for field/attribute backup. 'volume_id' is a "
                         "required property")
    row = await service.create(
        volumes(request), ctx, volume_id, optional_str(body, "name"),
        optional_str(body, "description"), boolean(body.get("force", False), "force"),
        optional_str(body, "snapshot_id"),
        boolean(body.get("incremental", False), "incremental"),
        metadata(body.get("metadata")))
    return reply({"backup": views.backup_brief(request, row)}, 202)


async def _list(request: Request, detail: bool) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "backup:get_all")
    q = request.query_params
    limit, marker = limit_marker(request, volumes(request).conf.max_limit)
    filters = {k: v for k, v in q.items() if k in ("name", "status", "volume_id")}
    rows = await service.list_backups(
        volumes(request), ctx, filters, all_tenants(request, ctx),
        parse_sort(q.get("sort"), q.get("sort_key"), q.get("sort_dir")), limit, marker)
    items = [views.backup(request, ctx, r) if detail else views.backup_brief(request, r)
             for r in rows]
    body: dict[str, Any] = {"backups": items}
    nav = page_links(request, items, limit)
    if nav:
        body["backups_links"] = nav
    return reply(body)


@router.get("/v3/backups")
async def index(request: Request) -> Response:
    return await _list(request, False)


@router.get("/v3/backups/detail")
async def detail(request: Request) -> Response:
    return await _list(request, True)


@router.get("/v3/backups/{backup_id}")
async def show(request: Request, backup_id: str) -> Response:
    ctx = await caller(request)
    row = await service.backup_row(volumes(request), ctx, backup_id)
    authorize(request, ctx, "backup:get", {"project_id": row.project_id})
    return reply({"backup": views.backup(request, ctx, row)})


@router.put("/v3/backups/{backup_id}")
async def update(request: Request, backup_id: str) -> Response:
    ctx = await caller(request)
    row = await service.backup_row(volumes(request), ctx, backup_id)
    authorize(request, ctx, "backup:update", {"project_id": row.project_id})
    body = section(await json_body(request), "backup")
    svc = volumes(request)
    async with svc.store.write() as session:
        from stackling.volume.models import Backup

        current = await session.get(Backup, backup_id)
        if current is not None:
            if "name" in body:
                current.name = optional_str(body, "name")
            if "description" in body:
                current.description = optional_str(body, "description")
            if "metadata" in body:
                current.meta = metadata(body["metadata"])
            row = current
    return reply({"backup": views.backup_brief(request, row)})


@router.delete("/v3/backups/{backup_id}")
async def delete(request: Request, backup_id: str) -> Response:
    ctx = await caller(request)
    row = await service.backup_row(volumes(request), ctx, backup_id)
    authorize(request, ctx, "backup:delete", {"project_id": row.project_id})
    await service.delete(volumes(request), ctx, backup_id)
    return accepted()


@router.post("/v3/backups/{backup_id}/restore")
async def restore(request: Request, backup_id: str) -> Response:
    ctx = await caller(request)
    row = await service.backup_row(volumes(request), ctx, backup_id)
    authorize(request, ctx, "backup:restore", {"project_id": row.project_id})
    body = section(await json_body(request), "restore")
    backup, vol = await service.restore(volumes(request), ctx, backup_id,
                                        optional_str(body, "volume_id"),
                                        optional_str(body, "name"))
    return reply({"restore": {"backup_id": backup.id, "volume_id": vol.id,
                              "volume_name": vol.name}}, 202)


@router.post("/v3/backups/{backup_id}/action")
async def action(request: Request, backup_id: str) -> Response:
    ctx = await caller(request)
    body = await json_body(request)
    svc = volumes(request)
    if "os-reset_status" in body:
        authorize(request, ctx, "volume_extension:backup_admin_actions:reset_status")
        status = (body["os-reset_status"] or {}).get("status")
        if status not in ("available", "error", "creating", "restoring", "deleting"):
            raise BadRequest(f"Invalid input received: Invalid backup status: {status}")
        await service.reset_status(svc, ctx, backup_id, status)
        return accepted()
    if "os-force_delete" in body:
        authorize(request, ctx, "volume_extension:backup_admin_actions:force_delete")
        await service.delete(svc, ctx, backup_id, force=True)
        return accepted()
    raise BadRequest("There is no such action: " + ", ".join(sorted(body)))


@router.get("/v3/backups/{backup_id}/export_record")
async def export_record(request: Request, backup_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "backup:export-import")
    record = await service.export_record(volumes(request), ctx, backup_id)
    return reply({"backup-record": record})


@router.post("/v3/backups/import_record")
async def import_record(request: Request) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "backup:export-import")
    body = section(await json_body(request), "backup-record")
    svc_name, url = body.get("backup_service"), body.get("backup_url")
    if not isinstance(svc_name, str) or not isinstance(url, str):
        raise BadRequest("Incorrect request body format.")
    row = await service.import_record(volumes(request), ctx, svc_name, url)
    return reply({"backup": views.backup_brief(request, row)}, 201)
