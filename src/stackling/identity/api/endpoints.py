"""``/v3/endpoints``: the catalog's endpoints (filters ``interface``, ``service_id``,
``region_id``). Responses carry the legacy ``region`` beside ``region_id``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.identity.api.common import authorize, identity, json_body, require_object
from stackling.identity.api.reply import collection, member
from stackling.identity.service import catalog_admin as catalog
from stackling.identity.service import fieldcheck as check

router = APIRouter(prefix="/v3/endpoints")


@router.api_route("", methods=["GET", "HEAD"])
async def list_endpoints(request: Request) -> Response:
    await authorize(request, "identity:list_endpoints")
    q = request.query_params
    check.choice(q, "interface", catalog.INTERFACES)
    refs = await catalog.list_endpoints(identity(request).store, q.get("interface"),
                                        q.get("service_id"), q.get("region_id"))
    return collection(request, "endpoints", "endpoints", refs)


@router.post("")
async def create_endpoint(request: Request) -> Response:
    await authorize(request, "identity:create_endpoint")
    body = require_object(await json_body(request), "endpoint")
    ref = await catalog.create_endpoint(identity(request).store, body)
    return member(request, "endpoints", "endpoint", ref, status=201)


@router.api_route("/{endpoint_id}", methods=["GET", "HEAD"])
async def get_endpoint(request: Request, endpoint_id: str) -> Response:
    await authorize(request, "identity:get_endpoint")
    ref = await catalog.get_endpoint(identity(request).store, endpoint_id)
    return member(request, "endpoints", "endpoint", ref)


@router.patch("/{endpoint_id}")
async def update_endpoint(request: Request, endpoint_id: str) -> Response:
    await authorize(request, "identity:update_endpoint")
    body = require_object(await json_body(request), "endpoint")
    ref = await catalog.update_endpoint(identity(request).store, endpoint_id, body)
    return member(request, "endpoints", "endpoint", ref)


@router.delete("/{endpoint_id}")
async def delete_endpoint(request: Request, endpoint_id: str) -> Response:
    await authorize(request, "identity:delete_endpoint")
    await catalog.delete_endpoint(identity(request).store, endpoint_id)
    return Response(status_code=204)
