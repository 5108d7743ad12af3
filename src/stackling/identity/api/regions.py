"""``/v3/regions``: list (filter ``parent_region_id``), show, create (POST, or PUT with a
chosen id), update, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.identity.api.common import authorize, identity, json_body, require_object
from stackling.identity.api.reply import collection, member
from stackling.identity.service import catalog_admin as catalog

router = APIRouter(prefix="/v3/regions")


@router.api_route("", methods=["GET", "HEAD"])
async def list_regions(request: Request) -> Response:
    await authorize(request, "identity:list_regions")
    refs = await catalog.list_regions(identity(request).store,
                                      request.query_params.get("parent_region_id"))
    return collection(request, "regions", "regions", refs)


@router.post("")
async def create_region(request: Request) -> Response:
    await authorize(request, "identity:create_region")
    body = require_object(await json_body(request), "region")
    ref = await catalog.create_region(identity(request).store, body)
    return member(request, "regions", "region", ref, status=201)


@router.api_route("/{region_id}", methods=["GET", "HEAD"])
async def get_region(request: Request, region_id: str) -> Response:
    await authorize(request, "identity:get_region")
    ref = await catalog.get_region(identity(request).store, region_id)
    return member(request, "regions", "region", ref)


@router.put("/{region_id}")
async def put_region(request: Request, region_id: str) -> Response:
    await authorize(request, "identity:create_region")
    body = require_object(await json_body(request), "region")
    ref = await catalog.create_region(identity(request).store, body, region_id=region_id)
    return member(request, "regions", "region", ref, status=201)


@router.patch("/{region_id}")
async def update_region(request: Request, region_id: str) -> Response:
    await authorize(request, "identity:update_region")
    body = require_object(await json_body(request), "region")
    ref = await catalog.update_region(identity(request).store, region_id, body)
    return member(request, "regions", "region", ref)


@router.delete("/{region_id}")
async def delete_region(request: Request, region_id: str) -> Response:
    await authorize(request, "identity:delete_region")
    await catalog.delete_region(identity(request).store, region_id)
    return Response(status_code=204)
