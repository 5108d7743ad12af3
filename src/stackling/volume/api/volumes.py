"""``/v3/volumes``: create, list (+ detail, summary), show, update, delete, metadata."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
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
    integer,
    json_body,
    limit_marker,
    offset,
    optional_str,
    reply,
    section,
    volumes,
)
from stackling.volume.api.microversion import at_least
from stackling.volume.models import Volume, VolumeType
from stackling.volume.service import volumes as service
from stackling.volume.service.cinder import VolumeService
from stackling.volume.service.common import metadata, parse_sort
from stackling.web.pagination import page_links

router = APIRouter()

_CREATE_KEYS = {"size", "name", "display_name", "description", "display_description",
                "metadata", "volume_type", "availability_zone", "snapshot_id",
                "source_volid", "imageRef", "image_id", "backup_id", "multiattach",
                "consistencygroup_id", "group_id", "source_replica", "scheduler_hints"}


async def type_names(svc: VolumeService) -> dict[str, str]:
    async with svc.store.read() as session:
        return {t.id: t.name for t in (await session.execute(select(VolumeType))).scalars()}


async def render(request: Request, ctx: RequestContext, rows: list[Volume],
                 created: bool = False) -> list[dict[str, Any]]:
    svc = volumes(request)
    names = await type_names(svc)
    atts = await service.attachments_of(svc, [r.id for r in rows])
    return [views.volume(request, ctx, r, names, atts[r.id], created=created) for r in rows]


@router.post("/v3/volumes")
async def create(request: Request) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume:create")
    body = await json_body(request)
    vol = section(body, "volume")
    hints = body.get("OS-SCH-HNT:scheduler_hints") or vol.get("scheduler_hints") or {}
    size = vol.get("size")
    req = service.NewVolume(
        size=None if size is None else integer(size, "size", 1),
        name=optional_str(vol, "name") if "name" in vol else optional_str(vol, "display_name"),
        description=(optional_str(vol, "description") if "description" in vol
                     else optional_str(vol, "display_description")),
        metadata=metadata(vol.get("metadata")),
        volume_type=optional_str(vol, "volume_type"),
        availability_zone=optional_str(vol, "availability_zone"),
        snapshot_id=optional_str(vol, "snapshot_id"),
        source_volid=optional_str(vol, "source_volid"),
        image_ref=optional_str(vol, "imageRef") or optional_str(vol, "image_id"),
        backup_id=optional_str(vol, "backup_id") if at_least(request, "3.47") else None,
        multiattach=boolean(vol.get("multiattach", False), "multiattach"),
        group_id=optional_str(vol, "group_id") if at_least(request, "3.13") else None,
        scheduler_hints=hints if isinstance(hints, dict) else {})
    if req.size is None and not (req.snapshot_id or req.source_volid or req.image_ref
                                 or req.backup_id):
        raise BadRequest("Invalid input received: Volume size '' must be an integer and "
                         "greater than 0")
    if req.image_ref:
        authorize(request, ctx, "volume:create_from_image")
    row = await service.create(volumes(request), ctx, req)
    return reply({"volume": (await render(request, ctx, [row], created=True))[0]}, 202)


def _listing(request: Request, ctx: RequestContext) -> service.Listing:
    q = request.query_params
    svc = volumes(request)
    limit, marker = limit_marker(request, svc.conf.max_limit)
    filters: dict[str, str] = {}
    meta: dict[str, str] | None = None
    for key, value in q.items():
        base = key.rstrip("~")
        if key == "metadata":
            try:
                parsed = json.loads(value.replace("'", '"'))
            except ValueError:
                raise BadRequest("Invalid input received: Invalid filter metadata") from None
            meta = {str(k): str(v) for k, v in (parsed or {}).items()} \
                if isinstance(parsed, dict) else None
        elif base in service.FILTERS:
            if base == "project_id" and not ctx.is_admin:
                continue
            filters[key] = value
    return service.Listing(
        filters=filters, metadata=meta, all_tenants=all_tenants(request, ctx),
        sort=parse_sort(q.get("sort"), q.get("sort_key"), q.get("sort_dir")),
        limit=limit, marker=marker, offset=offset(request))


async def _list(request: Request, detail: bool) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume:get_all")
    listing = _listing(request, ctx)
    rows = await service.list_volumes(volumes(request), ctx, listing)
    if detail:
        items = await render(request, ctx, rows)
    else:
        items = [views.volume_brief(request, r) for r in rows]
    body: dict[str, Any] = {"volumes": items}
    nav = page_links(request, items, listing.limit)
    if nav:
        body["volumes_links"] = nav
    if at_least(request, "3.45") and request.query_params.get("with_count", "").lower() in (
            "true", "1"):
        everything = service.Listing(filters=listing.filters, metadata=listing.metadata,
                                     all_tenants=listing.all_tenants, sort=listing.sort)
        body["count"] = len(await service.list_volumes(volumes(request), ctx, everything))
    return reply(body)


@router.get("/v3/volumes")
async def index(request: Request) -> Response:
    return await _list(request, detail=False)


@router.get("/v3/volumes/detail")
async def detail(request: Request) -> Response:
    return await _list(request, detail=True)


@router.get("/v3/volumes/summary")
async def summary(request: Request) -> Response:
    if not at_least(request, "3.12"):
        raise NotFound("The resource could not be found.")
    ctx = await caller(request)
    authorize(request, ctx, "volume:get_all")
    rows = await service.list_volumes(volumes(request), ctx, service.Listing(
        all_tenants=all_tenants(request, ctx)))
    out: dict[str, Any] = {"total_size": sum(r.size for r in rows), "total_count": len(rows)}
    if at_least(request, "3.36"):
        meta: dict[str, list[str]] = {}
        for r in rows:
            for k, v in r.meta.items():
                meta.setdefault(k, [])
                if v not in meta[k]:
                    meta[k].append(v)
        out["metadata"] = meta
    return reply({"volume-summary": out})


async def _row(request: Request, ctx: RequestContext, volume_id: str, rule: str) -> Volume:
    row = await service.get(volumes(request), ctx, volume_id)
    authorize(request, ctx, rule, {"project_id": row.project_id, "user_id": row.user_id})
    return row


@router.get("/v3/volumes/{volume_id}")
async def show(request: Request, volume_id: str) -> Response:
    ctx = await caller(request)
    row = await _row(request, ctx, volume_id, "volume:get")
    return reply({"volume": (await render(request, ctx, [row]))[0]})


@router.put("/v3/volumes/{volume_id}")
async def update(request: Request, volume_id: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, volume_id, "volume:update")
    vol = section(await json_body(request), "volume")
    changes: dict[str, Any] = {}
    for key, attr in (("name", "name"), ("display_name", "name"),
                      ("description", "description"), ("display_description", "description")):
        if key in vol:
            changes[attr] = optional_str(vol, key)
    if "metadata" in vol:
        changes["meta"] = metadata(vol["metadata"])
    if not changes and not vol:
        raise BadRequest("Invalid input received: Missing required element 'volume' in "
                         "request body.")
    row = await service.update(volumes(request), ctx, volume_id, changes)
    return reply({"volume": (await render(request, ctx, [row], created=True))[0]})


@router.delete("/v3/volumes/{volume_id}")
async def delete(request: Request, volume_id: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, volume_id, "volume:delete")
    q = request.query_params
    cascade = q.get("cascade", "false").lower() in ("true", "1")
    force = q.get("force", "false").lower() in ("true", "1")
    if force:
        authorize(request, ctx, "volume_extension:volume_admin_actions:force_delete")
    await service.delete(volumes(request), ctx, volume_id, cascade=cascade, force=force)
    return accepted()


# -- metadata -------------------------------------------------------------------------------
@router.get("/v3/volumes/{volume_id}/metadata")
async def show_metadata(request: Request, volume_id: str) -> Response:
    ctx = await caller(request)
    row = await _row(request, ctx, volume_id, "volume:get_volume_metadata")
    return reply({"metadata": dict(row.meta)})


@router.post("/v3/volumes/{volume_id}/metadata")
async def create_metadata(request: Request, volume_id: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, volume_id, "volume:create_volume_metadata")
    body = await json_body(request)
    if "metadata" not in body:
        raise BadRequest("Malformed request body")
    items = metadata(body["metadata"])
    merged = await service.set_metadata(volumes(request), ctx, volume_id, items, False)
    return reply({"metadata": merged})


@router.put("/v3/volumes/{volume_id}/metadata")
async def replace_metadata(request: Request, volume_id: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, volume_id, "volume:update_volume_metadata")
    body = await json_body(request)
    if "metadata" not in body:
        raise BadRequest("Malformed request body")
    items = metadata(body["metadata"])
    return reply({"metadata": await service.set_metadata(volumes(request), ctx, volume_id,
                                                         items, True)})


@router.get("/v3/volumes/{volume_id}/metadata/{key}")
async def show_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    ctx = await caller(request)
    row = await _row(request, ctx, volume_id, "volume:get_volume_metadata")
    if key not in row.meta:
        raise NotFound("Metadata item was not found")
    return reply({"meta": {key: row.meta[key]}})


@router.put("/v3/volumes/{volume_id}/metadata/{key}")
async def update_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, volume_id, "volume:update_volume_metadata")
    body = await json_body(request)
    meta = body.get("meta")
    if not isinstance(meta, dict):
        raise BadRequest("Malformed request body")
    items = metadata(meta, "meta")
    if key not in items:
        raise BadRequest("Request body and URI mismatch")
    if len(items) > 1:
        raise BadRequest("Request body contains too many items")
    await service.set_metadata(volumes(request), ctx, volume_id, items, False)
    return reply({"meta": items})


@router.delete("/v3/volumes/{volume_id}/metadata/{key}")
async def delete_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    ctx = await caller(request)
    await _row(request, ctx, volume_id, "volume:delete_volume_metadata")
    await service.delete_metadata(volumes(request), ctx, volume_id, key)
    return Response(status_code=200)
