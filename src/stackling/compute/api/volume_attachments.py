"""``/v2.1/servers/{id}/os-volume_attachments``: list, show, attach (POST), detach (DELETE).

Microversions: ``tag`` accepted from 2.49 and shown from 2.70, ``delete_on_termination``
accepted and shown from 2.79, ``attachment_id`` / ``bdm_uuid`` shown from 2.89 (which drops
the redundant ``id``). Swapping a volume (PUT) is not offered.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest
from stackling.compute.api.common import (
    authorize,
    boolean,
    caller,
    compute,
    invalid,
    json_body,
    no_extra,
    obj,
    required,
    string,
)
from stackling.compute.api.microversion import at_least
from stackling.compute.api.servers import load, load_authorized
from stackling.compute.models import BlockDeviceMapping
from stackling.compute.service import volume_attachments as service
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/servers/{server_id}/os-volume_attachments")
RULE = "os_compute_api:os-volumes-attachments:"


def view(request: Request, bdm: BlockDeviceMapping) -> dict[str, Any]:
    out: dict[str, Any] = {"device": bdm.device_name, "serverId": bdm.instance_uuid,
                           "volumeId": bdm.volume_id}
    if not at_least(request, "2.89"):
        out["id"] = bdm.volume_id
    if at_least(request, "2.70"):
        out["tag"] = bdm.tag
    if at_least(request, "2.79"):
        out["delete_on_termination"] = bdm.delete_on_termination
    if at_least(request, "2.89"):
        out["attachment_id"] = bdm.attachment_id
        out["bdm_uuid"] = bdm.uuid
    return out


async def _authorized(request: Request, server_id: str, action: str) -> None:
    await load_authorized(request, await caller(request), server_id, RULE + action)


def _volume_id(att: dict[str, Any]) -> str:
    volume_id = required(att, "volumeId")
    try:
        uuidlib.UUID(str(volume_id))
    except ValueError:
        raise invalid("volumeAttachment/volumeId", volume_id,
                      f"{volume_id!r} is not a 'uuid'") from None
    return str(volume_id)


@router.get("")
async def list_attachments(request: Request, server_id: str) -> JSONResponse:
    await _authorized(request, server_id, "index")
    rows = await service.list_mappings(compute(request), server_id)
    limit, offset = request.query_params.get("limit"), request.query_params.get("offset")
    start = int(offset) if offset and offset.isdigit() else 0
    end = start + int(limit) if limit and limit.isdigit() else None
    return JSONResponse({"volumeAttachments": [view(request, b) for b in rows[start:end]]})


@router.get("/{volume_id}")
async def show_attachment(request: Request, server_id: str, volume_id: str) -> JSONResponse:
    await _authorized(request, server_id, "show")
    bdm = await service.get_mapping(compute(request), server_id, volume_id)
    return JSONResponse({"volumeAttachment": view(request, bdm)})


def _attach_request(request: Request, body: dict[str, Any]) -> service.AttachRequest:
    att = obj(body, "volumeAttachment")
    keys = {"volumeId", "device"}
    if at_least(request, "2.49"):
        keys.add("tag")
    if at_least(request, "2.79"):
        keys.add("delete_on_termination")
    no_extra(att, keys, "volumeAttachment")
    volume_id = _volume_id(att)
    device = string(att, "device", nullable=True) if "device" in att else None
    tag = string(att, "tag", min_len=1, max_len=60) if "tag" in att else None
    if tag is not None and ("/" in tag or "," in tag):
        raise invalid("volumeAttachment/tag", tag, f"{tag!r} does not match '^[^,/]*$'")
    delete = boolean(att["delete_on_termination"], "volumeAttachment/delete_on_termination") \
        if "delete_on_termination" in att else False
    return service.AttachRequest(volume_id=volume_id, device=device or None, tag=tag,
                                 delete_on_termination=delete)


@router.post("")
async def attach(request: Request, server_id: str) -> JSONResponse:
    await _authorized(request, server_id, "create")
    req = _attach_request(request, await json_body(request))
    bdm = await service.attach(compute(request), await caller(request), server_id, req)
    return JSONResponse({"volumeAttachment": view(request, bdm)})


@router.put("/{volume_id}")
async def update_attachment(request: Request, server_id: str, volume_id: str) -> Response:
    """Nova's update: from 2.85, ``delete_on_termination`` of an attached volume (the body
    names the same volume); a different ``volumeId`` asks for a swap, which this cloud's
    drivers cannot do (400). 404 when ``volume_id`` is not attached to the server."""
    ctx = await caller(request)
    rec = await load(request, ctx, server_id)  # 404 before the body's 400s
    att = obj(await json_body(request), "volumeAttachment")
    keys = {"volumeId", "device", "id", "serverId"}
    if at_least(request, "2.70"):
        keys.add("tag")
    if at_least(request, "2.85"):
        keys.add("delete_on_termination")
    if at_least(request, "2.89"):
        keys |= {"attachment_id", "bdm_uuid"}
    no_extra(att, keys, "volumeAttachment")
    swap = _volume_id(att) != volume_id or not at_least(request, "2.85")
    authorize(request, ctx, RULE + ("swap" if swap else "update"),
              {"project_id": rec.row.project_id, "user_id": rec.row.user_id})
    bdm = await service.get_mapping(compute(request), server_id, volume_id)
    if swap:
        raise BadRequest("Swapping an attached volume for another is not supported by this "
                         "cloud's hypervisor drivers.")
    for key, current in (("device", bdm.device_name), ("tag", bdm.tag),
                         ("serverId", bdm.instance_uuid), ("id", bdm.volume_id),
                         ("attachment_id", bdm.attachment_id), ("bdm_uuid", bdm.uuid)):
        if key in att and att[key] != current:
            raise BadRequest(f"The '{key}' of an attached volume cannot be changed.")
    if "delete_on_termination" in att:
        await service.set_delete_on_termination(
            compute(request), server_id, volume_id,
            boolean(att["delete_on_termination"], "volumeAttachment/delete_on_termination"))
    return Response(status_code=202)


@router.delete("/{volume_id}")
async def detach(request: Request, server_id: str, volume_id: str) -> Response:
    await _authorized(request, server_id, "delete")
    await service.detach(compute(request), await caller(request), server_id, volume_id)
    return Response(status_code=202)
