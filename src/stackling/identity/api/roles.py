"""``/v3/roles`` (global and domain-specific), ``/v3/roles/{prior}/implies[/{implied}]`` and
``/v3/role_inferences``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.identity.api.common import (
    authorize,
    caller,
    identity,
    json_body,
    json_response,
    list_response,
    require_object,
    self_link,
)
from stackling.identity.models import Role
from stackling.identity.service import roles_admin
from stackling.identity.service.roles_admin import role_dict

router = APIRouter(prefix="/v3")


def render_role(request: Request, role: Role) -> dict[str, Any]:
    return {**role_dict(role), "links": self_link(request, f"roles/{role.id}")}


def head_or(request: Request, response: Response) -> Response:
    """HEAD answers like GET, without the body."""
    if request.method == "HEAD":
        return Response(status_code=response.status_code, media_type="application/json")
    return response


async def _authorize_on_role(request: Request, action: str, role_id: str) -> Role:
    """Keystone's order: policy first (``identity:<action>_role``, or ``<action>_domain_role``
    for a domain role), then 404, so a refused caller learns nothing about the role."""
    ctx = await caller(request)
    store = identity(request).store
    role = await roles_admin.find_role(store, role_id)
    if role is None:
        await authorize(request, f"identity:{action}_role", {"role": {}}, ctx=ctx)
        return await roles_admin.get_role(store, role_id)  # raises the 404
    domain = "_domain" if roles_admin.public_domain_id(role) else ""
    await authorize(request, f"identity:{action}{domain}_role",
                    {"role": role_dict(role)}, ctx=ctx)
    return role


# -- roles --------------------------------------------------------------------------------

@router.api_route("/roles", methods=["GET", "HEAD"])
async def list_roles(request: Request) -> Response:
    svc = identity(request)
    params = request.query_params
    domain_id = params.get("domain_id") or None
    rule = "identity:list_domain_roles" if domain_id else "identity:list_roles"
    await authorize(request, rule, {"domain_id": domain_id} if domain_id else None)
    roles = await roles_admin.list_roles(svc.store, name=params.get("name"),
                                         domain_id=domain_id)
    return head_or(request, list_response(request, "roles",
                                          [render_role(request, r) for r in roles]))


@router.post("/roles")
async def create_role(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    body = require_object(await json_body(request), "role")
    rule = "identity:create_domain_role" if body.get("domain_id") else "identity:create_role"
    await authorize(request, rule, {"role": body}, ctx=ctx)
    role = await roles_admin.create_role(svc.store, body)
    return json_response({"role": render_role(request, role)}, status=201)


@router.api_route("/roles/{role_id}", methods=["GET", "HEAD"])
async def get_role(request: Request, role_id: str) -> Response:
    role = await _authorize_on_role(request, "get", role_id)
    return head_or(request, json_response({"role": render_role(request, role)}))


@router.patch("/roles/{role_id}")
async def update_role(request: Request, role_id: str) -> Response:
    svc = identity(request)
    await _authorize_on_role(request, "update", role_id)
    body = require_object(await json_body(request), "role")
    role = await roles_admin.update_role(svc.store, role_id, body)
    return json_response({"role": render_role(request, role)})


@router.delete("/roles/{role_id}")
async def delete_role(request: Request, role_id: str) -> Response:
    svc = identity(request)
    await _authorize_on_role(request, "delete", role_id)
    await roles_admin.delete_role(svc.store, svc.revocations, role_id)
    return Response(status_code=204)


# -- implied roles --------------------------------------------------------------------------

def _brief(request: Request, role: Role) -> dict[str, Any]:
    return {"id": role.id, "links": self_link(request, f"roles/{role.id}"), "name": role.name}


async def _implied_policy(request: Request, rule: str, prior_id: str,
                          implied_id: str | None = None) -> None:
    """Authenticate, load both roles (404 first, as Keystone builds its target), enforce."""
    ctx = await caller(request)
    store = identity(request).store
    target: dict[str, Any] = {"prior_role": role_dict(await roles_admin.get_role(store, prior_id))}
    if implied_id is not None:
        target["implied_role"] = role_dict(await roles_admin.get_role(store, implied_id))
    await authorize(request, rule, target, ctx=ctx)


def _inference(request: Request, prior: Role, implied: Role) -> dict[str, Any]:
    return {"role_inference": {"prior_role": _brief(request, prior),
                               "implies": _brief(request, implied)},
            "links": self_link(request, f"roles/{prior.id}/implies/{implied.id}")}


@router.api_route("/roles/{prior_id}/implies", methods=["GET", "HEAD"])
async def list_implied_roles(request: Request, prior_id: str) -> Response:
    await _implied_policy(request, "identity:list_implied_roles", prior_id)
    prior, implied = await roles_admin.list_implied_roles(identity(request).store, prior_id)
    body = {"role_inference": {"prior_role": _brief(request, prior),
                               "implies": [_brief(request, r) for r in implied]},
            "links": self_link(request, f"roles/{prior_id}/implies")}
    return head_or(request, json_response(body))


@router.put("/roles/{prior_id}/implies/{implied_id}")
async def create_implied_role(request: Request, prior_id: str, implied_id: str) -> Response:
    await _implied_policy(request, "identity:create_implied_role", prior_id, implied_id)
    prior, implied = await roles_admin.create_implied_role(identity(request).store, prior_id,
                                                           implied_id)
    return json_response(_inference(request, prior, implied), status=201)


@router.get("/roles/{prior_id}/implies/{implied_id}")
async def get_implied_role(request: Request, prior_id: str, implied_id: str) -> Response:
    await _implied_policy(request, "identity:get_implied_role", prior_id, implied_id)
    prior, implied = await roles_admin.get_implied_role(identity(request).store, prior_id,
                                                        implied_id)
    return json_response(_inference(request, prior, implied))


@router.head("/roles/{prior_id}/implies/{implied_id}")
async def check_implied_role(request: Request, prior_id: str, implied_id: str) -> Response:
    # Keystone enforces both rules on HEAD, and answers 204.
    await _implied_policy(request, "identity:check_implied_role", prior_id, implied_id)
    await _implied_policy(request, "identity:get_implied_role", prior_id, implied_id)
    await roles_admin.get_implied_role(identity(request).store, prior_id, implied_id)
    return Response(status_code=204)


@router.delete("/roles/{prior_id}/implies/{implied_id}")
async def delete_implied_role(request: Request, prior_id: str, implied_id: str) -> Response:
    await _implied_policy(request, "identity:delete_implied_role", prior_id, implied_id)
    await roles_admin.delete_implied_role(identity(request).store, prior_id, implied_id)
    return Response(status_code=204)


@router.api_route("/role_inferences", methods=["GET", "HEAD"])
async def list_role_inferences(request: Request) -> Response:
    await authorize(request, "identity:list_role_inference_rules")
    rules = await roles_admin.list_inferences(identity(request).store)
    body = {"role_inferences": [
        {"prior_role": _brief(request, prior), "implies": [_brief(request, r) for r in implied]}
        for prior, implied in rules]}
    return head_or(request, json_response(body))

