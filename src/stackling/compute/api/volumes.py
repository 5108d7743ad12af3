"""``/v2.1/os-volumes`` and ``/v2.1/os-snapshots``: Nova's proxy to the block storage service
(removed in 2.36). Every call goes to the volume service with the caller's own token, so
visibility, quotas and errors are the volume service's; the answers are translated into
Nova's camel-case shapes."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.clients.volume import VolumeClient, VolumeNotFound
from stackling.common.context import RequestContext
from stackling.common.errors import NotFound, Unauthorized
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
)
from stackling.compute.api.microversion import at_least
from stackling.compute.service.volume_attachments import volume_client
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1")
RULE = "os_compute_api:os-volumes:"
_SIZE = re.compile(r"^[0-9]+$")


class _Caller:
    def __init__(self, ctx: RequestContext) -> None:
        if not ctx.token:  # never fall back to the service's own token
            raise Unauthorized()
        self.token: str = ctx.token


async def _start(request: Request, action: str) -> tuple[_Caller, VolumeClient]:
    if at_least(request, "2.36"):
        raise NotFound("The resource could not be found.")
    ctx = await caller(request)
    authorize(request, ctx, RULE + action, {"project_id": ctx.project_id,
                                            "user_id": ctx.user_id})
    return _Caller(ctx), volume_client(compute(request))


def _volume_view(vol: dict[str, Any]) -> dict[str, Any]:
    attachments = [{"id": vol["id"], "volumeId": vol["id"], "serverId": a.get("server_id"),
                    "device": a.get("device")}
                   for a in vol.get("attachments") or [] if a.get("server_id")]
    return {"id": vol["id"], "status": vol.get("status"), "size": vol.get("size"),
            "availabilityZone": vol.get("availability_zone"),
            "createdAt": vol.get("created_at"),
            "attachments": attachments or [{}],
            "displayName": vol.get("name"), "displayDescription": vol.get("description"),
            "volumeType": vol.get("volume_type"), "snapshotId": vol.get("snapshot_id"),
            "metadata": vol.get("metadata") or {}}


def _snapshot_view(snap: dict[str, Any]) -> dict[str, Any]:
    return {"id": snap["id"], "volumeId": snap.get("volume_id"), "status": snap.get("status"),
            "size": snap.get("size"), "createdAt": snap.get("created_at"),
            "displayName": snap.get("name"), "displayDescription": snap.get("description")}


async def _one(client: VolumeClient, caller: _Caller, method: str, kind: str,
               ident: str) -> Any:
    """One volume or snapshot by id (``kind``: "volume" or "snapshot"); 404 in Nova's words."""
    try:
        return await client.send_json(method, f"/{kind}s/{ident}", token=caller.token)
    except VolumeNotFound:
        raise NotFound(f"{kind.capitalize()} {ident} could not be found.") from None


def _paging(request: Request) -> str:
    keep = [f"{k}={v}" for k, v in request.query_params.items() if k in ("limit", "offset")]
    return ("?" + "&".join(keep)) if keep else ""


def _text(body: dict[str, Any], name: str, where: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{where}/{name}", value, f"{value!r} is not of type 'string', 'null'")
    return value


# -- volumes ------------------------------------------------------------------------------------
@router.get("/os-volumes")
@router.get("/os-volumes/detail")
async def list_volumes(request: Request) -> JSONResponse:
    ctx, client = await _start(request, "list" if request.url.path.endswith("-volumes")
                               else "detail")
    answer = await client.send_json("GET", f"/volumes/detail{_paging(request)}",
                                    token=ctx.token)
    return JSONResponse({"volumes": [_volume_view(v) for v in answer.get("volumes", [])]})


@router.get("/os-volumes/{volume_id}")
async def show_volume(request: Request, volume_id: str) -> JSONResponse:
    ctx, client = await _start(request, "show")
    answer = await _one(client, ctx, "GET", "volume", volume_id)
    return JSONResponse({"volume": _volume_view(answer["volume"])})


@router.post("/os-volumes")
async def create_volume(request: Request) -> JSONResponse:
    ctx, client = await _start(request, "create")
    vol = obj(await json_body(request), "volume")
    no_extra(vol, {"size", "display_name", "display_description", "volume_type", "metadata",
                   "availability_zone", "snapshot_id", "imageRef"}, "volume")
    size = required(vol, "size")
    if isinstance(size, bool) or not (isinstance(size, int) or (
            isinstance(size, str) and _SIZE.match(size))) or int(size) < 1:
        raise invalid("volume/size", size, f"{size!r} is not a positive integer")
    metadata = vol.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise invalid("volume/metadata", metadata, f"{metadata!r} is not of type 'object'")
    body: dict[str, Any] = {"size": int(size), "metadata": metadata,
                            "name": _text(vol, "display_name", "volume"),
                            "description": _text(vol, "display_description", "volume")}
    for name in ("volume_type", "availability_zone", "snapshot_id", "imageRef"):
        if vol.get(name) is not None:  # the same names in Cinder's body
            body[name] = _text(vol, name, "volume")
    answer = await client.send_json("POST", "/volumes", token=ctx.token,
                                    body={"volume": body})
    return JSONResponse({"volume": _volume_view(answer["volume"])})


@router.delete("/os-volumes/{volume_id}")
async def delete_volume(request: Request, volume_id: str) -> Response:
    ctx, client = await _start(request, "delete")
    await _one(client, ctx, "DELETE", "volume", volume_id)
    return Response(status_code=202)


# -- snapshots ----------------------------------------------------------------------------------
@router.get("/os-snapshots")
@router.get("/os-snapshots/detail")
async def list_snapshots(request: Request) -> JSONResponse:
    ctx, client = await _start(request, "snapshots:list" if request.url.path.endswith(
        "-snapshots") else "snapshots:detail")
    answer = await client.send_json("GET", f"/snapshots/detail{_paging(request)}",
                                    token=ctx.token)
    return JSONResponse({"snapshots": [_snapshot_view(s)
                                       for s in answer.get("snapshots", [])]})


@router.get("/os-snapshots/{snapshot_id}")
async def show_snapshot(request: Request, snapshot_id: str) -> JSONResponse:
    ctx, client = await _start(request, "snapshots:show")
    answer = await _one(client, ctx, "GET", "snapshot", snapshot_id)
    return JSONResponse({"snapshot": _snapshot_view(answer["snapshot"])})


@router.post("/os-snapshots")
async def create_snapshot(request: Request) -> JSONResponse:
    ctx, client = await _start(request, "snapshots:create")
    snap = obj(await json_body(request), "snapshot")
    no_extra(snap, {"volume_id", "force", "display_name", "display_description"}, "snapshot")
    volume_id = required(snap, "volume_id")
    if not isinstance(volume_id, str):
        raise invalid("snapshot/volume_id", volume_id, f"{volume_id!r} is not a 'string'")
    force = boolean(snap.get("force", False), "snapshot/force")
    body = {"volume_id": volume_id, "force": force,
            "name": _text(snap, "display_name", "snapshot"),
            "description": _text(snap, "display_description", "snapshot")}
    answer = await client.send_json("POST", "/snapshots", token=ctx.token,
                                    body={"snapshot": body})
    return JSONResponse({"snapshot": _snapshot_view(answer["snapshot"])})


@router.delete("/os-snapshots/{snapshot_id}")
async def delete_snapshot(request: Request, snapshot_id: str) -> Response:
    ctx, client = await _start(request, "snapshots:delete")
    await _one(client, ctx, "DELETE", "snapshot", snapshot_id)
    return Response(status_code=202)
