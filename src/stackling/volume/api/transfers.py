"""``/v3/os-volume-transfer`` and (3.55+) ``/v3/volume-transfers``."""

from __future__ import annotations

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
    optional_str,
    reply,
    section,
    volumes,
)
from stackling.volume.service import transfers as service

router = APIRouter()


async def _create(request: Request) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume:create_transfer")
    body = section(await json_body(request), "transfer")
    volume_id = body.get("volume_id")
    if not isinstance(volume_id, str) or not volume_id:
        raise BadRequest("Incorrect request body format")
    row, key = await service.create(volumes(request), ctx, volume_id,
                                    optional_str(body, "name"),
                                    boolean(body.get("no_snapshots", False), "no_snapshots"))
    out = views.transfer(request, row)
    out["auth_key"] = key
    return reply({"transfer": out}, 202)


async def _list(request: Request, detail: bool) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume:get_all_transfers")
    rows = await service.list_transfers(volumes(request), ctx, all_tenants(request, ctx))
    if detail:
        items = [views.transfer(request, r) for r in rows]
    else:
        items = [{k: v for k, v in views.transfer(request, r, detail=False).items()
                  if k in ("id", "name", "volume_id", "links")} for r in rows]
    return reply({"transfers": items})


async def _show(request: Request, transfer_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume:get_transfer")
    row = await service.get(volumes(request), ctx, transfer_id)
    return reply({"transfer": views.transfer(request, row)})


async def _delete(request: Request, transfer_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume:delete_transfer")
    await service.delete(volumes(request), ctx, transfer_id)
    return accepted()


async def _accept(request: Request, transfer_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume:accept_transfer")
    body = section(await json_body(request), "accept")
    key = body.get("auth_key")
    if not isinstance(key, str) or not key:
        raise BadRequest("Incorrect request body format")
    row = await service.accept(volumes(request), ctx, transfer_id, key)
    out = {"id": row.id, "name": row.name, "volume_id": row.volume_id,
           "links": views.transfer(request, row)["links"]}
    return reply({"transfer": out}, 202)


async def _index(request: Request) -> Response:
    return await _list(request, False)


async def _detail(request: Request) -> Response:
    return await _list(request, True)


for prefix in ("/v3/os-volume-transfer", "/v3/volume-transfers"):
    router.add_api_route(prefix, _create, methods=["POST"])
    router.add_api_route(prefix, _index, methods=["GET"])
    router.add_api_route(f"{prefix}/detail", _detail, methods=["GET"])
    router.add_api_route(prefix + "/{transfer_id}", _show, methods=["GET"])
    router.add_api_route(prefix + "/{transfer_id}", _delete, methods=["DELETE"])
    router.add_api_route(prefix + "/{transfer_id}/accept", _accept, methods=["POST"])
