"""``/v2/info/...`` (import methods, stores, usage) and ``DELETE /v2/stores/{store}/{id}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, Forbidden, NotFound
from stackling.image.api.common import caller, json_response, service
from stackling.image.service import quotas

router = APIRouter()


@router.get("/v2/info/import")
async def import_info(request: Request) -> Response:
    await caller(request)
    svc = service(request)
    return json_response({"import-methods": {
        "description": "Import methods available.", "type": "array",
        "value": list(svc.conf.import_methods)}})


def _stores(request: Request) -> list[dict[str, Any]]:
    svc = service(request)
    out = []
    for name, store in svc.stores.items():
        entry: dict[str, Any] = {"id": name, "description": f"{store.kind} store"}
        if name == svc.store.name:
            entry["default"] = "true"
        out.append(entry)
    return out


@router.get("/v2/info/stores")
async def stores_info(request: Request) -> Response:
    await caller(request)
    return json_response({"stores": _stores(request)})


@router.get("/v2/info/stores/detail")
async def stores_detail(request: Request) -> Response:
    c = await caller(request)
    c.enforce("stores_info_detail")
    svc = service(request)
    stores = _stores(request)
    for entry in stores:
        store = svc.stores[entry["id"]]
        entry.update({"type": store.kind, "properties": store.describe(), "weight": 0})
    return json_response({"stores": stores})


@router.get("/v2/info/usage")
async def usage(request: Request) -> Response:
    c = await caller(request)
    svc = service(request)
    if not c.project_id:
        raise BadRequest("Usage is per project: use a project-scoped token")
    return json_response({"usage": await quotas.report(svc.db, svc.conf, c.project_id)})


@router.delete("/v2/stores/{store_id}/{image_id}")
async def delete_from_store(request: Request, image_id: str, store_id: str) -> Response:
    c = await caller(request)
    c.enforce("delete_image_location")
    svc = service(request)
    if store_id not in svc.stores:
        raise BadRequest(f"Unknown store {store_id}.")
    record = await c.find(image_id)
    if record.status != "active" or record.store != store_id:
        raise NotFound(f"Image {image_id} is not in store {store_id}.")
    raise Forbidden("Cannot delete image data from the only store containing it. Consider "
                    "deleting the image instead.")
