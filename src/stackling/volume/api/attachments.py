"""``/v3/attachments`` (3.27+): the attach flow compute uses since Queens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, NotFound
from stackling.volume.api import views
from stackling.volume.api.common import (
    accepted,
    all_tenants,
    authorize,
    caller,
    json_body,
    reply,
    section,
    volumes,
)
from stackling.volume.api.microversion import at_least
from stackling.volume.service import actions as service

router = APIRouter()


def _need(request: Request) -> None:
    if not at_least(request, "3.27"):
        raise NotFound("The resource could not be found.")


@router.post("/v3/attachments")
async def create(request: Request) -> Response:
    _need(request)
    ctx = await caller(request)
    authorize(request, ctx, "volume:attachment_create")
    body = section(await json_body(request), "attachment")
    volume_id = body.get("volume_uuid")
    if not isinstance(volume_id, str) or not volume_id:
        raise BadRequest("Invalid input received: volume_uuid is required")
    connector = body.get("connector")
    if connector is not None and not isinstance(connector, dict):
        raise BadRequest("Invalid input received: connector must be an object")
    mode = str(body.get("mode") or "rw") if at_least(request, "3.54") else "rw"
    if mode not in ("rw", "ro"):
        raise BadRequest(f"Invalid input received: Invalid attachment mode {mode}")
    row = await service.create_attachment(volumes(request), ctx, volume_id,
                                          body.get("instance_uuid"), connector, mode)
    return reply({"attachment": views.attachment(row)})


@router.get("/v3/attachments")
async def index(request: Request) -> Response:
    _need(request)
    return await _list(request, False)


@router.get("/v3/attachments/detail")
async def detail(request: Request) -> Response:
    _need(request)
    return await _list(request, True)


async def _list(request: Request, detail: bool) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume:attachment_get_all")
    filters = {k: v for k, v in request.query_params.items()
               if k in ("volume_id", "instance_id")}
    rows = await service.list_attachments(volumes(request), ctx, all_tenants(request, ctx),
                                          filters)
    return reply({"attachments": [views.attachment(r, detail=detail) for r in rows]})


@router.get("/v3/attachments/{attachment_id}")
async def show(request: Request, attachment_id: str) -> Response:
    _need(request)
    ctx = await caller(request)
    authorize(request, ctx, "volume:attachment_get")
    att, _ = await service.attachment_row(volumes(request), ctx, attachment_id)
    return reply({"attachment": views.attachment(att)})


@router.put("/v3/attachments/{attachment_id}")
async def update(request: Request, attachment_id: str) -> Response:
    _need(request)
    ctx = await caller(request)
    authorize(request, ctx, "volume:attachment_update")
    body = section(await json_body(request), "attachment")
    connector = body.get("connector")
    if not isinstance(connector, dict):
        raise BadRequest("Invalid input received: connector is required")
    row = await service.update_attachment(volumes(request), ctx, attachment_id, connector)
    return reply({"attachment": views.attachment(row)})


@router.post("/v3/attachments/{attachment_id}/action")
async def action(request: Request, attachment_id: str) -> Response:
    _need(request)
    ctx = await caller(request)
    body: dict[str, Any] = await json_body(request)
    if "os-complete" not in body or not at_least(request, "3.44"):
        raise BadRequest("There is no such action: " + ", ".join(sorted(body)))
    authorize(request, ctx, "volume:attachment_complete")
    await service.complete_attachment(volumes(request), ctx, attachment_id)
    return Response(status_code=204)


@router.delete("/v3/attachments/{attachment_id}")
async def delete(request: Request, attachment_id: str) -> Response:
    _need(request)
    ctx = await caller(request)
    authorize(request, ctx, "volume:attachment_delete")
    await service.delete_attachment(volumes(request), ctx, attachment_id)
    return reply({})


__all__ = ["accepted", "router"]
