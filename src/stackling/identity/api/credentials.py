"""``/v3/credentials``: users' secrets (ec2, totp, cert, ...), encrypted at rest.

Non-admin callers see and manage only their own credentials. A token made from an
application credential may only touch credentials of its own project, and a restricted one
may not create ec2 credentials (Keystone's delegation checks).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Forbidden, NotFound, ValidationError
from stackling.identity.api.app_creds import check_unrestricted
from stackling.identity.api.common import (
    authorize,
    caller,
    head_aware,
    identity,
    json_body,
    json_response,
    list_response,
    require_object,
    self_link,
)
from stackling.identity.service.credentials import EC2, Credentials, ec2_blob

router = APIRouter(prefix="/v3/credentials")

_TYPES = {"blob": (str,), "project_id": (str, type(None)), "type": (str,), "user_id": (str,)}


def credentials_service(request: Request) -> Credentials:
    svc = identity(request)
    return Credentials(svc.store, svc.credential_keys)


def render(request: Request, ref: dict[str, Any]) -> dict[str, Any]:
    return {**ref, "links": self_link(request, f"credentials/{ref['id']}")}


def check_project_scope(ctx: RequestContext, project_id: str | None) -> None:
    """Delegated tokens (here: application credentials) reach only their own project's
    credentials; credentials without a project are out of their reach."""
    if ctx.application_credential_id is None:
        return
    if project_id != ctx.project_id:
        raise Forbidden("You are not authorized to perform the requested action: Credential "
                        "project does not match the project scope of the delegated token.")


def _check_types(spec: dict[str, Any]) -> None:
    for key, types in _TYPES.items():
        if key in spec and not isinstance(spec[key], types):
            raise ValidationError(f"Invalid input for field 'credential/{key}': "
                                  f"{spec[key]!r} is not of type 'string'")


async def _target(request: Request, rule: str, cred_id: str) -> tuple[RequestContext,
                                                                        dict[str, Any]]:
    """Authorize against the stored credential (deferred 404, as Keystone)."""
    ctx = await caller(request)
    found = await credentials_service(request).find(cred_id)
    await authorize(request, rule, {"credential": found or {}}, ctx=ctx)
    if found is None:
        raise NotFound(f"Could not find credential: {cred_id}.")
    check_project_scope(ctx, found.get("project_id"))
    return ctx, found


@router.post("")
async def create_credential(request: Request) -> Response:
    ctx = await caller(request)
    spec = dict(require_object(await json_body(request), "credential"))
    for key in ("blob", "type", "user_id"):
        if key not in spec:
            raise ValidationError(f"Invalid input for field 'credential': '{key}' is a "
                                  "required property")
    _check_types(spec)
    if spec["type"] == EC2 and "project_id" not in spec:
        raise ValidationError("Invalid input for field 'credential': 'project_id' is a "
                              "required property")
    await authorize(request, "identity:create_credential", {"credential": spec},
                    ctx=ctx)
    is_ec2 = str(spec["type"]).lower() == EC2
    if is_ec2:
        await check_unrestricted(request, ctx, "credentials")
    check_project_scope(ctx, spec.get("project_id"))
    if is_ec2 and ctx.application_credential_id is not None:
        # tokens from this credential must stay within the application credential
        blob = ec2_blob(spec["blob"])
        blob["app_cred_id"] = ctx.application_credential_id
        spec["blob"] = json.dumps(blob)
    ref = await credentials_service(request).create(spec)
    return json_response({"credential": render(request, ref)}, status=201)


@router.api_route("", methods=["GET", "HEAD"])
async def list_credentials(request: Request) -> Response:
    ctx = await caller(request)
    target = {} if ctx.system_scope else {"credential": {"user_id": ctx.user_id}}
    await authorize(request, "identity:list_credentials", target, ctx=ctx)
    refs = await credentials_service(request).search(
        user_id=request.query_params.get("user_id"), type=request.query_params.get("type"))
    enforcer = request.app.state.enforcer
    creds = ctx.credentials()
    visible = [
        render(request, r) for r in refs
        if enforcer.enforce("identity:get_credential",
                            {"credential": r, "target": {"credential": r}}, creds)
        and (ctx.application_credential_id is None or r.get("project_id") == ctx.project_id)
    ]
    return head_aware(request, list_response(request, "credentials", visible))


@router.api_route("/{cred_id}", methods=["GET", "HEAD"])
async def get_credential(request: Request, cred_id: str) -> Response:
    _, ref = await _target(request, "identity:get_credential", cred_id)
    return head_aware(request, json_response({"credential": render(request, ref)}))


@router.patch("/{cred_id}")
async def update_credential(request: Request, cred_id: str) -> Response:
    ctx = await caller(request)
    changes = dict(require_object(await json_body(request), "credential"))
    if not changes:
        raise ValidationError("Invalid input for field 'credential': {} does not have enough "
                              "properties")
    _check_types(changes)
    _, current = await _target(request, "identity:update_credential", cred_id)
    if "id" in changes:
        if changes["id"] != cred_id:
            raise BadRequest("Cannot change ID")
        del changes["id"]
    # the caller may not hand the credential to someone else
    await authorize(request, "identity:update_credential",
                    {"credential": {**current, **changes}}, ctx=ctx)
    ref = await credentials_service(request).update(cred_id, changes)
    return json_response({"credential": render(request, ref)})


@router.delete("/{cred_id}")
async def delete_credential(request: Request, cred_id: str) -> Response:
    await _target(request, "identity:delete_credential", cred_id)
    await credentials_service(request).delete(cred_id)
    return Response(status_code=204)
