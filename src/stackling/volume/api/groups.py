"""``/v3/group_types`` (3.11+), ``/v3/groups`` (3.13+), ``/v3/group_snapshots`` (3.14+)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, NotFound
from stackling.volume.api.common import (
    accepted,
    all_tenants,
    authorize,
    boolean,
    caller,
    json_body,
    optional_str,
    reply,
    section,
    volumes,
)
from stackling.volume.api.microversion import at_least
from stackling.volume.api.views import ts
from stackling.volume.models import Group, GroupSnapshot, GroupType
from stackling.volume.service import groups as service
from stackling.volume.service.common import metadata, parse_sort
from stackling.web.urls import base_url

router = APIRouter()
ADMIN_RULE = "group:group_types_manage"


def _need(request: Request, version: str) -> None:
    if not at_least(request, version):
        raise NotFound("The resource could not be found.")


def _links(request: Request, kind: str, item_id: str) -> list[dict[str, str]]:
    root = base_url(request)
    return [{"rel": "self", "href": f"{root}/v3/{kind}/{item_id}"},
            {"rel": "bookmark", "href": f"{root}/{kind}/{item_id}"}]


def _type(row: GroupType) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description,
            "is_public": row.is_public, "group_specs": dict(row.group_specs)}


async def _group(request: Request, row: Group, detail: bool = True) -> dict[str, Any]:
    if not detail:
        return {"id": row.id, "name": row.name}
    out: dict[str, Any] = {
        "id": row.id, "name": row.name, "description": row.description, "status": row.status,
        "availability_zone": row.availability_zone, "created_at": ts(row.created_at),
        "group_type": row.group_type_id, "volume_types": list(row.volume_type_ids)}
    if at_least(request, "3.14"):
        out["group_snapshot_id"] = row.group_snapshot_id
        out["source_group_id"] = row.source_group_id
    if at_least(request, "3.25") and request.query_params.get("list_volume", "").lower() in (
            "true", "1"):
        out["volumes"] = [v.id for v in await service.members(volumes(request), row.id)]
    if at_least(request, "3.38"):
        out["replication_status"] = "disabled"
    return out


def _gsnap(row: GroupSnapshot, detail: bool = True) -> dict[str, Any]:
    if not detail:
        return {"id": row.id, "name": row.name}
    return {"id": row.id, "name": row.name, "description": row.description,
            "status": row.status, "group_id": row.group_id, "created_at": ts(row.created_at),
            "group_type_id": row.group_type_id}


# -- group types ------------------------------------------------------------------------------
@router.get("/v3/group_types")
async def list_types(request: Request) -> Response:
    _need(request, "3.11")
    ctx = await caller(request)
    q = request.query_params
    rows = await service.list_group_types(
        volumes(request), ctx, q.get("is_public"),
        parse_sort(q.get("sort"), q.get("sort_key"), q.get("sort_dir")))
    return reply({"group_types": [_type(r) for r in rows]})


@router.get("/v3/group_types/{type_id}")
async def show_type(request: Request, type_id: str) -> Response:
    _need(request, "3.11")
    await caller(request)
    return reply({"group_type": _type(await service.group_type(volumes(request), type_id))})


@router.post("/v3/group_types")
async def create_type(request: Request) -> Response:
    _need(request, "3.11")
    ctx = await caller(request)
    authorize(request, ctx, ADMIN_RULE)
    body = section(await json_body(request), "group_type")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Invalid input received: group type name must be given.")
    row = await service.create_group_type(
        volumes(request), name.strip(), optional_str(body, "description"),
        boolean(body.get("is_public", True), "is_public"),
        metadata(body.get("group_specs"), "group_specs"))
    return reply({"group_type": _type(row)}, 202)


@router.put("/v3/group_types/{type_id}")
async def update_type(request: Request, type_id: str) -> Response:
    _need(request, "3.11")
    ctx = await caller(request)
    authorize(request, ctx, ADMIN_RULE)
    body = section(await json_body(request), "group_type")
    changes: dict[str, Any] = {}
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("Invalid input received: group type name can not be empty.")
        changes["name"] = name.strip()
    if "description" in body:
        changes["description"] = optional_str(body, "description")
    if "is_public" in body:
        changes["is_public"] = boolean(body["is_public"], "is_public")
    if not changes:
        raise BadRequest("Invalid input received: Specify group type name, description or "
                         "is_public.")
    return reply({"group_type": _type(await service.update_group_type(volumes(request),
                                                                      type_id, changes))})


@router.delete("/v3/group_types/{type_id}")
async def delete_type(request: Request, type_id: str) -> Response:
    _need(request, "3.11")
    ctx = await caller(request)
    authorize(request, ctx, ADMIN_RULE)
    await service.delete_group_type(volumes(request), type_id)
    return accepted()


@router.get("/v3/group_types/{type_id}/group_specs")
async def list_specs(request: Request, type_id: str) -> Response:
    _need(request, "3.11")
    ctx = await caller(request)
    authorize(request, ctx, ADMIN_RULE)
    row = await service.group_type(volumes(request), type_id)
    return reply({"group_specs": dict(row.group_specs)})


@router.post("/v3/group_types/{type_id}/group_specs")
async def create_specs(request: Request, type_id: str) -> Response:
    _need(request, "3.11")
    ctx = await caller(request)
    authorize(request, ctx, ADMIN_RULE)
    body = await json_body(request)
    specs = metadata(body.get("group_specs"), "group_specs")
    return reply({"group_specs": await service.set_group_specs(volumes(request), type_id,
                                                               specs)}, 202)


@router.get("/v3/group_types/{type_id}/group_specs/{key}")
async def show_spec(request: Request, type_id: str, key: str) -> Response:
    _need(request, "3.11")
    ctx = await caller(request)
    authorize(request, ctx, ADMIN_RULE)
    row = await service.group_type(volumes(request), type_id)
    if key not in row.group_specs:
        raise NotFound(f"Group Type {type_id} has no specs with key {key}.")
    return reply({key: row.group_specs[key]})


@router.put("/v3/group_types/{type_id}/group_specs/{key}")
async def update_spec(request: Request, type_id: str, key: str) -> Response:
    _need(request, "3.11")
    ctx = await caller(request)
    authorize(request, ctx, ADMIN_RULE)
    body = metadata(await json_body(request), "group_specs")
    if key not in body or len(body) != 1:
        raise BadRequest("Request body and URI mismatch")
    await service.set_group_specs(volumes(request), type_id, body)
    return reply(body)


@router.delete("/v3/group_types/{type_id}/group_specs/{key}")
async def delete_spec(request: Request, type_id: str, key: str) -> Response:
    _need(request, "3.11")
    ctx = await caller(request)
    authorize(request, ctx, ADMIN_RULE)
    await service.delete_group_spec(volumes(request), type_id, key)
    return accepted()


# -- groups -----------------------------------------------------------------------------------
@router.post("/v3/groups")
async def create_group(request: Request) -> Response:
    _need(request, "3.13")
    ctx = await caller(request)
    authorize(request, ctx, "group:create")
    body = section(await json_body(request), "group")
    gtype = body.get("group_type")
    vtypes = body.get("volume_types")
    if not isinstance(gtype, str) or not gtype:
        raise BadRequest("Invalid input received: group_type must be provided to create "
                         "group.")
    if not isinstance(vtypes, list) or not all(isinstance(v, str) for v in vtypes):
        raise BadRequest("Invalid input received: volume_types must be provided to create "
                         "group.")
    row = await service.create_group(volumes(request), ctx, optional_str(body, "name"),
                                     optional_str(body, "description"), gtype, vtypes,
                                     optional_str(body, "availability_zone"))
    return reply({"group": {"id": row.id, "name": row.name}}, 202)


@router.post("/v3/groups/action")
async def create_from_source(request: Request) -> Response:
    _need(request, "3.14")
    ctx = await caller(request)
    authorize(request, ctx, "group:create")
    body = section(await json_body(request), "create-from-src")
    row = await service.create_from_source(
        volumes(request), ctx, optional_str(body, "name"), optional_str(body, "description"),
        optional_str(body, "group_snapshot_id"), optional_str(body, "source_group_id"))
    return reply({"group": {"id": row.id, "name": row.name}}, 202)


async def _list_groups(request: Request, detail: bool) -> Response:
    _need(request, "3.13")
    ctx = await caller(request)
    rows = await service.list_groups(volumes(request), ctx, all_tenants(request, ctx))
    return reply({"groups": [await _group(request, r, detail) for r in rows]})


@router.get("/v3/groups")
async def list_groups(request: Request) -> Response:
    return await _list_groups(request, False)


@router.get("/v3/groups/detail")
async def list_groups_detail(request: Request) -> Response:
    return await _list_groups(request, True)


@router.get("/v3/groups/{group_id}")
async def show_group(request: Request, group_id: str) -> Response:
    _need(request, "3.13")
    ctx = await caller(request)
    row = await service.group_row(volumes(request), ctx, group_id)
    return reply({"group": await _group(request, row)})


@router.put("/v3/groups/{group_id}")
async def update_group(request: Request, group_id: str) -> Response:
    _need(request, "3.13")
    ctx = await caller(request)
    authorize(request, ctx, "group:update")
    body = section(await json_body(request), "group")
    changes: dict[str, Any] = {k: optional_str(body, k) for k in ("name", "description")
                               if k in body}
    await service.update_group(volumes(request), ctx, group_id, changes,
                               body.get("add_volumes"), body.get("remove_volumes"))
    return accepted()


@router.post("/v3/groups/{group_id}/action")
async def group_action(request: Request, group_id: str) -> Response:
    _need(request, "3.13")
    ctx = await caller(request)
    body = await json_body(request)
    svc = volumes(request)
    if "delete" in body:
        authorize(request, ctx, "group:delete")
        flags = body["delete"] or {}
        await service.delete_group(svc, ctx, group_id,
                                   boolean(flags.get("delete-volumes", False),
                                           "delete-volumes"))
        return accepted()
    if "reset_status" in body and at_least(request, "3.20"):
        authorize(request, ctx, "group:reset_status")
        await service.reset_group_status(svc, ctx, group_id,
                                         str((body["reset_status"] or {}).get("status")))
        return accepted()
    raise BadRequest("There is no such action: " + ", ".join(sorted(body)))


# -- group snapshots --------------------------------------------------------------------------
@router.post("/v3/group_snapshots")
async def create_gsnap(request: Request) -> Response:
    _need(request, "3.14")
    ctx = await caller(request)
    authorize(request, ctx, "group:create_group_snapshot")
    body = section(await json_body(request), "group_snapshot")
    group_id = body.get("group_id")
    if not isinstance(group_id, str) or not group_id:
        raise BadRequest("Invalid input received: group_id must be provided.")
    row = await service.create_group_snapshot(volumes(request), ctx, group_id,
                                              optional_str(body, "name"),
                                              optional_str(body, "description"))
    return reply({"group_snapshot": {"id": row.id, "name": row.name,
                                     "group_type_id": row.group_type_id}}, 202)


async def _list_gsnaps(request: Request, detail: bool) -> Response:
    _need(request, "3.14")
    ctx = await caller(request)
    rows = await service.list_group_snapshots(volumes(request), ctx,
                                              all_tenants(request, ctx))
    return reply({"group_snapshots": [_gsnap(r, detail) for r in rows]})


@router.get("/v3/group_snapshots")
async def list_gsnaps(request: Request) -> Response:
    return await _list_gsnaps(request, False)


@router.get("/v3/group_snapshots/detail")
async def list_gsnaps_detail(request: Request) -> Response:
    return await _list_gsnaps(request, True)


@router.get("/v3/group_snapshots/{gsnap_id}")
async def show_gsnap(request: Request, gsnap_id: str) -> Response:
    _need(request, "3.14")
    ctx = await caller(request)
    return reply({"group_snapshot": _gsnap(await service.group_snapshot_row(
        volumes(request), ctx, gsnap_id))})


@router.delete("/v3/group_snapshots/{gsnap_id}")
async def delete_gsnap(request: Request, gsnap_id: str) -> Response:
    _need(request, "3.14")
    ctx = await caller(request)
    authorize(request, ctx, "group:delete_group_snapshot")
    await service.delete_group_snapshot(volumes(request), ctx, gsnap_id)
    return accepted()


@router.post("/v3/group_snapshots/{gsnap_id}/action")
async def gsnap_action(request: Request, gsnap_id: str) -> Response:
    _need(request, "3.19")
    ctx = await caller(request)
    body = await json_body(request)
    if "reset_status" not in body:
        raise BadRequest("There is no such action: " + ", ".join(sorted(body)))
    authorize(request, ctx, "group:reset_group_snapshot_status")
    await service.reset_group_snapshot_status(
        volumes(request), ctx, gsnap_id, str((body["reset_status"] or {}).get("status")))
    return accepted()
