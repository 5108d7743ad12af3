"""``/v3/policies``: stored policy blobs (never enforced), filter ``type``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.identity.api.common import authorize, identity, json_body, require_object
from stackling.identity.api.reply import collection, member
from stackling.identity.service import policy_blobs

router = APIRouter(prefix="/v3/policies")


@router.api_route("", methods=["GET", "HEAD"])
async def list_policies(request: Request) -> Response:
    await authorize(request, "identity:list_policies")
    refs = await policy_blobs.list_policies(identity(request).store,
                                            request.query_params.get("type"))
    return collection(request, "policies", "policies", refs)


@router.post("")
async def create_policy(request: Request) -> Response:
    await authorize(request, "identity:create_policy")
    body = require_object(await json_body(request), "policy")
    ref = await policy_blobs.create_policy(identity(request).store, body)
    return member(request, "policies", "policy", ref, status=201)


@router.api_route("/{policy_id}", methods=["GET", "HEAD"])
async def get_policy(request: Request, policy_id: str) -> Response:
    await authorize(request, "identity:get_policy")
    ref = await policy_blobs.get_policy(identity(request).store, policy_id)
    return member(request, "policies", "policy", ref)


@router.patch("/{policy_id}")
async def update_policy(request: Request, policy_id: str) -> Response:
    await authorize(request, "identity:update_policy")
    body = require_object(await json_body(request), "policy")
    ref = await policy_blobs.update_policy(identity(request).store, policy_id, body)
    return member(request, "policies", "policy", ref)


@router.delete("/{policy_id}")
async def delete_policy(request: Request, policy_id: str) -> Response:
    await authorize(request, "identity:delete_policy")
    await policy_blobs.delete_policy(identity(request).store, policy_id)
    return Response(status_code=204)
