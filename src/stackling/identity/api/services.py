"""``/v3/services``: the catalog's services (filters ``type`` and ``name``). Deleting a
service deletes its endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.identity.api.common import authorize, identity, json_body, require_object
from stackling.identity.api.reply import collection, member
from stackling.identity.service import catalog_admin as catalog

router = APIRouter(prefix="/v3/services")


@router.api_route("", methods=["GET", "HEAD"])
async def list_services(request: Request) -> Response:
    await authorize(request, "identity:list_services")
    q = request.query_params
    refs = await catalog.list_services(identity(request).store, q.get("type"), q.get("name"))
    return collection(request, "services", "services", refs)


@router.post("")
async def create_service(request: Request) -> Response:
    await authorize(request, "identity:create_service")
    body = require_object(await json_body(request), "service")
    ref = await catalog.create_service(identity(request).store, body)
    return member(request, "services", "service", ref, status=201)


@router.api_route("/{service_id}", methods=["GET", "HEAD"])
async def get_service(request: Request, service_id: str) -> Response:
    await authorize(request, "identity:get_service")
    ref = await catalog.get_service(identity(request).store, service_id)
    return member(request, "services", "service", ref)


@router.patch("/{service_id}")
async def update_service(request: Request, service_id: str) -> Response:
    await authorize(request, "identity:update_service")
    body = require_object(await json_body(request), "service")
    ref = await catalog.update_service(identity(request).store, service_id, body)
    return member(request, "services", "service", ref)


@router.delete("/{service_id}")
async def delete_service(request: Request, service_id: str) -> Response:
    await authorize(request, "identity:delete_service")
    await catalog.delete_service(identity(request).store, service_id)
    return Response(status_code=204)
