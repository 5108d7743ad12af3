"""``/v3/snapshots``: create, list (+ detail), show, update, delete, metadata, actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, NotFound
from stackling.volume.api import views
from stackling.volume.api.common import (
    accepted,
    all_tenants,
    authorize,
    boolean,
    caller,
    json_body,
    limit_marker,
    offset,
    optional_str,
    reply,
    section,
    volumes,
)
from stackling.volume.models import Snapshot
from stackling.volume.service import snapshots as service
from stackling.volume.service.common import metadata, parse_sort
from stackling.web.pagination import page_links

router = APIRouter()
STATUSES = {"available", "creating", "deleting", "error", "error_deleting", "unmanaging",
            "backing-up", "restoring"}


@router.post("/v3/snapshots")
async def create(request: Request) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume:create_snapshot")
    snap = section(await json_body(request), "snapshot")
    volume_id = snap.get("volume_id")
    if not isinstance(volume_id, str) or not volume_id:
        raise NotFound(f"Volume {volume_id} could not be found.")
    name = optional_str(snap, "name") if "name" in snap else optional_str(snap,
                                                                          "display_name")
    description = (optional_str(snap, "description") if "description" in snap
                   else optional_str(snap, "display_description"))
    row = await service.create(volumes(request), ctx, volume_id, name, description,
                               metadata(snap.get("metadata")),
                               boolean(snap.get("force", False), "force"))
    return reply({"snapshot": views.snapshot(request, ctx, row, detail=False)}, 202)


async def _list(request: Request, detail: bool) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume:get_all_snapshots")
    q = request.query_params
    limit, marker = limit_marker(request, volumes(request).conf.max_limit)
    filters = {k: v for k, v in q.items() if k in ("name", "status", "volume_id",
                                                   "display_name", "project_id")}
    if not ctx.is_admin:
        filters.pop("project_id", None)
    rows = await service.list_snapshots(
        volumes(request), ctx, filters, all_tenants(request, ctx),
        parse_sort(q.get("sort"), q.get("sort_key"), q.get("sort_dir")), limit, marker,
        offset(request))
    items = [views.snapshot(request, ctx, r, detail=detail) for r in rows]
    body: dict[str, Any] = {"snapshots": items}
    nav = page_links(request, items, limit)
    if nav:
        body["snapshots_links"] = nav
    return reply(body)


@router.get("/v3/snapshots")
async def index(request: Request) -> Response:
    return await _list(request, False)


@router.get("/v3/snapshots/detail")
async def detail(request: Request) -> Response:
    return await _list(request, True)


async def _row(request: Request, ctx: RequestContext, snapshot_id: str, rule: str
               ) -> Snapshot:
    row = await service.get(volumes(request), ctx, snapshot_id)
    authorize(request, ctx, rule, {"project_id": row.project_id, "user_id": row.user_id})
    return row


@router.get("/v3/snapshots/{snapshot_id}")
async def show(request: Request, snapshot_id: str) -> Response:
    ctx = await caller(request)
    row = await _row(request, ctx, snapshot_id, "volume:get_snapshot")
    return reply({"snapshot": views.snapshot(request, ctx, row)})


@router.put("/v3/snapshots/{snapshot_id}")
async def update(request: Request, snapshot_id: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, snapshot_id, "volume:update_snapshot")
    snap = section(await json_body(request), "snapshot")
    changes: dict[str, Any] = {}
    for key, attr in (("name", "name"), ("display_name", "name"),
                      ("description", "description"), ("display_description", "description")):
        if key in snap:
            changes[attr] = optional_str(snap, key)
    if not changes:
        raise BadRequest("Invalid input received: 'name', 'description', 'display_name' or "
                         "'display_description' must be given")
    row = await service.update(volumes(request), ctx, snapshot_id, changes)
    return reply({"snapshot": views.snapshot(request, ctx, row, detail=False)})


@router.delete("/v3/snapshots/{snapshot_id}")
async def delete(request: Request, snapshot_id: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, snapshot_id, "volume:delete_snapshot")
    await service.delete(volumes(request), ctx, snapshot_id)
    return accepted()


@router.post("/v3/snapshots/{snapshot_id}/action")
async def action(request: Request, snapshot_id: str) -> Response:
    ctx = await caller(request)
    body = await json_body(request)
    await _row(request, ctx, snapshot_id, "volume:get_snapshot")
    svc = volumes(request)
    if "os-reset_status" in body:
        authorize(request, ctx, "volume_extension:snapshot_admin_actions:reset_status")
        status = (body["os-reset_status"] or {}).get("status")
        if status not in STATUSES:
            raise BadRequest(f"Invalid input received: Invalid snapshot status: {status}")
        await service.reset_status(svc, ctx, snapshot_id, status)
        return accepted()
    if "os-force_delete" in body:
        authorize(request, ctx, "volume_extension:snapshot_admin_actions:force_delete")
        await service.delete(svc, ctx, snapshot_id, force=True)
        return accepted()
    if "os-update_snapshot_status" in body:
        value = body["os-update_snapshot_status"] or {}
        await service.update(svc, ctx, snapshot_id, {k: v for k, v in (
            ("status", value.get("status")), ("progress", value.get("progress"))) if v})
        return accepted()
    raise BadRequest("There is no such action: " + ", ".join(sorted(body)))


# -- metadata -------------------------------------------------------------------------------
@router.get("/v3/snapshots/{snapshot_id}/metadata")
async def show_metadata(request: Request, snapshot_id: str) -> Response:
    ctx = await caller(request)
    row = await _row(request, ctx, snapshot_id, "volume:get_snapshot")
    return reply({"metadata": dict(row.meta)})


@router.post("/v3/snapshots/{snapshot_id}/metadata")
async def create_metadata(request: Request, snapshot_id: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, snapshot_id, "volume:update_snapshot")
    body = await json_body(request)
    items = metadata(body.get("metadata"))
    return reply({"metadata": await service.set_metadata(volumes(request), ctx, snapshot_id,
                                                         items, False)})


@router.put("/v3/snapshots/{snapshot_id}/metadata")
async def replace_metadata(request: Request, snapshot_id: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, snapshot_id, "volume:update_snapshot")
    body = await json_body(request)
    items = metadata(body.get("metadata"))
    return reply({"metadata": await service.set_metadata(volumes(request), ctx, snapshot_id,
                                                         items, True)})


@router.get("/v3/snapshots/{snapshot_id}/metadata/{key}")
async def show_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    ctx = await caller(request)
    row = await _row(request, ctx, snapshot_id, "volume:get_snapshot")
    if key not in row.meta:
        raise NotFound("Metadata item was not found")
    return reply({"meta": {key: row.meta[key]}})


@router.put("/v3/snapshots/{snapshot_id}/metadata/{key}")
async def update_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, snapshot_id, "volume:update_snapshot")
    body = await json_body(request)
    items = metadata(body.get("meta"), "meta")
    if key not in items:
        raise BadRequest("Request body and URI mismatch")
    if len(items) > 1:
        raise BadRequest("Request body contains too many items")
    await service.set_metadata(volumes(request), ctx, snapshot_id, items, False)
    return reply({"meta": items})


@router.delete("/v3/snapshots/{snapshot_id}/metadata/{key}")
async def delete_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, snapshot_id, "volume:update_snapshot")
    await service.delete_metadata(volumes(request), ctx, snapshot_id, key)
    return Response(status_code=200)
