"""``/v2.1/servers/{id}/metadata`` and ``/v2.1/servers/{id}/tags`` (2.26)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, NotFound
from stackling.compute.api.common import caller, compute, invalid, json_body
from stackling.compute.api.microversion import at_least
from stackling.compute.api.server_body import metadata, tags
from stackling.compute.api.servers import load, load_authorized
from stackling.compute.service import quotas, server_meta
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/servers/{server_id}")


async def _authorized(request: Request, server_id: str, rule: str) -> bool:
    ctx = await caller(request)
    await load_authorized(request, ctx, server_id, rule)
    return ctx.is_admin


async def _limit(request: Request, server_id: str) -> int:
    svc = compute(request)
    rec = await load(request, await caller(request), server_id)
    async with svc.store.read() as session:
        limits = await quotas.limits_for(session, rec.row.project_id, svc.conf.quotas)
    return limits["metadata_items"]


def _body(body: dict[str, Any], key: str) -> Any:
    if key not in body:
        raise invalid(key, body, f"'{key}' is a required property")
    if set(body) - {key}:
        raise invalid("body", body, "Additional properties are not allowed")
    return body[key]


@router.get("/metadata")
async def list_metadata(request: Request, server_id: str) -> JSONResponse:
    await _authorized(request, server_id, "os_compute_api:server-metadata:index")
    return JSONResponse({"metadata": await server_meta.get_metadata(compute(request),
                                                                     server_id)})


@router.post("/metadata")
async def merge_metadata(request: Request, server_id: str) -> JSONResponse:
    admin = await _authorized(request, server_id, "os_compute_api:server-metadata:create")
    items = metadata(_body(await json_body(request), "metadata"))
    result = await server_meta.set_metadata(compute(request), server_id, items, replace=False,
                                            is_admin=admin,
                                            limit=await _limit(request, server_id))
    return JSONResponse({"metadata": result})


@router.put("/metadata")
async def replace_metadata(request: Request, server_id: str) -> JSONResponse:
    admin = await _authorized(request, server_id,
                              "os_compute_api:server-metadata:update_all")
    items = metadata(_body(await json_body(request), "metadata"))
    result = await server_meta.set_metadata(compute(request), server_id, items, replace=True,
                                            is_admin=admin,
                                            limit=await _limit(request, server_id))
    return JSONResponse({"metadata": result})


@router.get("/metadata/{key}")
async def show_metadata_item(request: Request, server_id: str, key: str) -> JSONResponse:
    await _authorized(request, server_id, "os_compute_api:server-metadata:show")
    items = await server_meta.get_metadata(compute(request), server_id)
    if key not in items:
        raise NotFound("Metadata item was not found")
    return JSONResponse({"meta": {key: items[key]}})


@router.put("/metadata/{key}")
async def set_metadata_item(request: Request, server_id: str, key: str) -> JSONResponse:
    admin = await _authorized(request, server_id, "os_compute_api:server-metadata:update")
    meta = metadata(_body(await json_body(request), "meta"), "meta")
    if key not in meta:
        raise BadRequest("Request body and URI mismatch")
    if len(meta) > 1:
        raise BadRequest("Request body contains too many items")
    await server_meta.set_metadata(compute(request), server_id, meta, replace=False,
                                   is_admin=admin, limit=await _limit(request, server_id))
    return JSONResponse({"meta": meta})


@router.delete("/metadata/{key}")
async def delete_metadata_item(request: Request, server_id: str, key: str) -> Response:
    admin = await _authorized(request, server_id, "os_compute_api:server-metadata:delete")
    await server_meta.delete_metadata(compute(request), server_id, key, admin)
    return Response(status_code=204)


# -- tags (2.26) --------------------------------------------------------------------------
def _tags_version(request: Request) -> None:
    if not at_least(request, "2.26"):
        raise NotFound("The resource could not be found.")


@router.get("/tags")
async def list_tags(request: Request, server_id: str) -> JSONResponse:
    _tags_version(request)
    await _authorized(request, server_id, "os_compute_api:servers:show")
    return JSONResponse({"tags": await server_meta.get_tags(compute(request), server_id)})


@router.put("/tags")
async def replace_tags(request: Request, server_id: str) -> JSONResponse:
    _tags_version(request)
    admin = await _authorized(request, server_id, "os_compute_api:servers:update")
    new = tags(_body(await json_body(request), "tags"))
    result = await server_meta.replace_tags(compute(request), server_id, new, admin)
    return JSONResponse({"tags": result})


@router.delete("/tags")
async def delete_tags(request: Request, server_id: str) -> Response:
    _tags_version(request)
    admin = await _authorized(request, server_id, "os_compute_api:servers:update")
    await server_meta.delete_tag(compute(request), server_id, None, admin)
    return Response(status_code=204)


@router.get("/tags/{tag}")
async def check_tag(request: Request, server_id: str, tag: str) -> Response:
    _tags_version(request)
    await _authorized(request, server_id, "os_compute_api:servers:show")
    if tag not in await server_meta.get_tags(compute(request), server_id):
        raise NotFound(f"Tag {tag} could not be found.")
    return Response(status_code=204)


@router.put("/tags/{tag}")
async def add_tag(request: Request, server_id: str, tag: str) -> Response:
    _tags_version(request)
    admin = await _authorized(request, server_id, "os_compute_api:servers:update")
    tags([tag])
    created = await server_meta.add_tag(compute(request), server_id, tag, admin)
    headers = {"Location": str(request.url)} if created else None
    return Response(status_code=201 if created else 204, headers=headers)


@router.delete("/tags/{tag}")
async def delete_tag(request: Request, server_id: str, tag: str) -> Response:
    _tags_version(request)
    admin = await _authorized(request, server_id, "os_compute_api:servers:update")
    await server_meta.delete_tag(compute(request), server_id, tag, admin)
    return Response(status_code=204)
