"""OS-EC2: ``/v3/users/{user_id}/credentials/OS-EC2`` (access/secret pairs kept as ``ec2``
credentials) and ``POST /v3/ec2tokens`` / ``POST /v3/s3tokens``, which turn a signed AWS-style
request into a token for the credential's project (used by S3/EC2 front ends, with a
service or admin token)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import MethodNotAllowed, NotFound, ValidationError
from stackling.identity.api.app_creds import check_unrestricted
from stackling.identity.api.common import (
    authorize,
    caller,
    head_aware,
    identity,
    json_body,
    json_response,
    list_response,
    self_link,
)
from stackling.identity.api.credentials import check_project_scope, credentials_service
from stackling.identity.service.credentials import EC2, hash_access_key
from stackling.identity.service.ec2_signature import (
    check_ec2_signature,
    check_s3_signature,
    check_timestamp,
)

router = APIRouter(prefix="/v3")


def _ec2_view(request: Request, ref: dict[str, Any]) -> dict[str, Any]:
    try:
        blob = json.loads(ref["blob"])
    except ValueError:
        blob = {}
    out = {"user_id": ref["user_id"], "tenant_id": ref.get("project_id"),
           "access": blob.get("access"), "secret": blob.get("secret"),
           "trust_id": blob.get("trust_id")}
    out["links"] = self_link(request,
                             f"users/{out['user_id']}/credentials/OS-EC2/{out['access']}")
    return out


@router.post("/users/{user_id}/credentials/OS-EC2")
async def create_ec2(request: Request, user_id: str) -> Response:
    ctx = await authorize(request, "identity:ec2_create_credential",
                          {"credential": {"user_id": user_id}, "user_id": user_id})
    await check_unrestricted(request, ctx, "application credentials")
    service = credentials_service(request)
    await service.require_user(user_id)
    body = await json_body(request)
    tenant_id = body.get("tenant_id")
    await service.require_project(tenant_id)
    check_project_scope(ctx, tenant_id)
    blob: dict[str, Any] = {"access": uuid.uuid4().hex, "secret": uuid.uuid4().hex,
                            "trust_id": None}
    if ctx.application_credential_id is not None:
        # signatures made with it get no more than the application credential had
        blob["app_cred_id"] = ctx.application_credential_id
    ref = await service.create({
        "user_id": user_id, "project_id": tenant_id, "type": EC2, "blob": json.dumps(blob)})
    return json_response({"credential": _ec2_view(request, ref)}, status=201)


@router.api_route("/users/{user_id}/credentials/OS-EC2", methods=["GET", "HEAD"])
async def list_ec2(request: Request, user_id: str) -> Response:
    ctx = await authorize(request, "identity:ec2_list_credentials", {"user_id": user_id})
    service = credentials_service(request)
    await service.require_user(user_id)
    refs = await service.search(user_id=user_id, type=EC2)
    views = [_ec2_view(request, r) for r in refs
             if ctx.application_credential_id is None or r.get("project_id") == ctx.project_id]
    return head_aware(request, list_response(request, "credentials", views))


async def _one(request: Request, rule: str, user_id: str, access: str) -> dict[str, Any]:
    ctx = await caller(request)
    service = credentials_service(request)
    ref = await service.find(hash_access_key(access))
    if ref is None:
        raise NotFound(f"Could not find credential: {hash_access_key(access)}.")
    await authorize(request, rule, {"credential": ref, "user_id": user_id},
                    ctx=ctx)
    await service.require_user(user_id)
    if ref["type"] != EC2:
        raise NotFound("EC2 access key not found.")
    check_project_scope(ctx, ref.get("project_id"))
    return ref


@router.api_route("/users/{user_id}/credentials/OS-EC2/{access}", methods=["GET", "HEAD"])
async def get_ec2(request: Request, user_id: str, access: str) -> Response:
    ref = await _one(request, "identity:ec2_get_credential", user_id, access)
    return head_aware(request, json_response({"credential": _ec2_view(request, ref)}))


@router.delete("/users/{user_id}/credentials/OS-EC2/{access}")
async def delete_ec2(request: Request, user_id: str, access: str) -> Response:
    ref = await _one(request, "identity:ec2_delete_credential", user_id, access)
    await credentials_service(request).delete(ref["id"])
    return Response(status_code=204)


# -- signature -> token --------------------------------------------------------------------

async def _signed_request(request: Request, rule: str) -> dict[str, Any]:
    ctx = await caller(request)
    await authorize(request, rule, {}, ctx=ctx)
    raw = await request.body()
    if not raw:
        raise ValidationError("request must include a request body")
    body = await json_body(request)
    creds = body.get("credentials") or body.get("credential") or body.get("ec2Credentials")
    return creds if isinstance(creds, dict) else {}


async def _token_for(request: Request, credentials: dict[str, Any], s3: bool
                     ) -> tuple[str, dict[str, Any]]:
    svc = identity(request)
    login = await credentials_service(request).ec2_login(
        credentials, check_s3_signature if s3 else check_ec2_signature)
    check_timestamp(credentials)
    vt = await svc.tokens.issue(login.user_id, ("ec2credential",), project_id=login.project_id,
                                app_cred_id=login.app_cred_id)
    return vt.id, await svc.tokens.render(vt)


@router.post("/ec2tokens")
async def ec2tokens(request: Request) -> Response:
    credentials = await _signed_request(request, "identity:ec2tokens_validate")
    token_id, body = await _token_for(request, credentials, s3=False)
    return json_response(body, headers={"X-Subject-Token": token_id})


@router.post("/s3tokens")
async def s3tokens(request: Request) -> Response:
    credentials = await _signed_request(request, "identity:s3tokens_validate")
    _, body = await _token_for(request, credentials, s3=True)
    return json_response(body)


@router.get("/ec2tokens")
@router.get("/s3tokens")
async def signed_tokens_get(request: Request) -> Response:
    raise MethodNotAllowed("The method is not allowed for the requested URL.")

