"""Role grants and ``GET /v3/role_assignments``.

Grant URLs (each with ``PUT``, ``GET``/``HEAD`` (check, 204) and ``DELETE``, plus a ``roles``
collection answering ``GET``/``HEAD``)::

    /v3/{projects|domains}/{id}/{users|groups}/{id}/roles/{role_id}
    /v3/OS-INHERIT/{projects|domains}/{id}/{users|groups}/{id}/roles/{role_id}/inherited_to_projects
    /v3/system/{users|groups}/{id}/roles/{role_id}

They are registered from one table below rather than written out twenty times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import ValidationError
from stackling.identity.api.common import authorize, base_url, caller, identity, list_response
from stackling.identity.api.roles import head_or, render_role
from stackling.identity.models import SYSTEM_TARGET
from stackling.identity.service import assignments as grants
from stackling.identity.service import role_assignments
from stackling.identity.service.assignments import Grant

router = APIRouter(prefix="/v3")

Endpoint = Callable[[Request], Awaitable[Response]]
_CHECK = {"GET": "check", "HEAD": "check", "PUT": "create", "DELETE": "revoke"}


def _grant(request: Request, actor: str, target: str, inherited: bool) -> Grant:
    p = request.path_params
    return Grant(actor=actor, actor_id=p["actor_id"], target=target,
                 target_id=SYSTEM_TARGET if target == "system" else p["target_id"],
                 role_id=p.get("role_id", ""), inherited=inherited)


def _rule(target: str, actor: str, verb: str) -> str:
    if target == "system":
        noun = "grants" if verb == "list" else "grant"
        return f"identity:{verb}_system_{noun}_for_{actor}"
    return f"identity:{verb}_grants" if verb == "list" else f"identity:{verb}_grant"


def _member(actor: str, target: str, inherited: bool) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        svc = identity(request)
        ctx = await caller(request)
        grant = _grant(request, actor, target, inherited)
        verb = _CHECK[request.method]
        policy_target = await grants.policy_target(svc.store, grant,
                                                   allow_missing_actor=verb == "revoke")
        await authorize(request, _rule(target, actor, verb), policy_target, ctx=ctx)
        if verb == "create":
            await grants.create_grant(svc.store, grant)
        elif verb == "revoke":
            await grants.delete_grant(svc.store, svc.revocations, grant)
        else:
            await grants.check_grant(svc.store, grant)
        return Response(status_code=204)

    return endpoint


def _collection(actor: str, target: str, inherited: bool) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        svc = identity(request)
        ctx = await caller(request)
        grant = _grant(request, actor, target, inherited)
        policy_target = await grants.policy_target(svc.store, grant, with_role=False)
        await authorize(request, _rule(target, actor, "list"), policy_target,
                        ctx=ctx)
        roles = await grants.list_grants(svc.store, grant)
        return head_or(request, list_response(request, "roles",
                                              [render_role(request, r) for r in roles]))

    return endpoint


def _register() -> None:
    for actor in ("user", "group"):
        for target in ("project", "domain", "system"):
            base = (f"/system/{actor}s/{{actor_id}}/roles" if target == "system" else
                    f"/{target}s/{{target_id}}/{actor}s/{{actor_id}}/roles")
            variants = [(base, "", False)]
            if target != "system":
                variants.append((f"/OS-INHERIT{base}", "/inherited_to_projects", True))
            for prefix, suffix, inherited in variants:
                router.add_api_route(f"{prefix}/{{role_id}}{suffix}",
                                     _member(actor, target, inherited),
                                     methods=["PUT", "GET", "HEAD", "DELETE"])
                router.add_api_route(f"{prefix}{suffix}", _collection(actor, target, inherited),
                                     methods=["GET", "HEAD"])


_register()


# -- /v3/role_assignments -------------------------------------------------------------------

def _flag(request: Request, name: str) -> bool:
    """Keystone's query flags: present and not ``0``."""
    return name in request.query_params and request.query_params[name] != "0"


def _check_filters(request: Request, effective: bool, inherited: bool | None) -> None:
    p = request.query_params
    pairs = (("scope.domain.id", "scope.project.id", "Specify a domain or project, not both"),
             ("scope.domain.id", "scope.system", "Specify system or domain, not both"),
             ("scope.project.id", "scope.system", "Specify system or project, not both"),
             ("user.id", "group.id", "Specify a user or group, not both"))
    for first, second, message in pairs:
        if p.get(first) and p.get(second):
            raise ValidationError(message)
    if effective and p.get("group.id"):
        raise ValidationError("Combining effective and group filter will always result in an "
                              "empty list.")
    if effective and inherited and p.get("scope.domain.id"):
        raise ValidationError("Combining effective, domain and inherited filters will always "
                              "result in an empty list.")


def _named(ref: dict[str, Any], kind: str, with_domain: bool = True) -> dict[str, Any]:
    if f"{kind}_name" not in ref:
        return {"id": ref[f"{kind}_id"]}
    out: dict[str, Any] = {"id": ref[f"{kind}_id"], "name": ref[f"{kind}_name"]}
    if with_domain:
        out["domain"] = {"id": ref[f"{kind}_domain_id"], "name": ref[f"{kind}_domain_name"]}
    return out


def _format(root: str, ref: dict[str, Any]) -> dict[str, Any]:
    """One assignment as Keystone renders it, ``links`` pointing at the grant behind it."""
    indirect: dict[str, Any] = ref.get("indirect", {})
    out: dict[str, Any] = {"links": {}}
    inherited = bool(ref.get("inherited_to_projects"))
    link = ""
    if "project_id" in ref:
        out["scope"] = {"project": _named(ref, "project")}
        if "domain_id" in indirect:
            inherited, link = True, f"/domains/{indirect['domain_id']}"
        elif "project_id" in indirect:
            inherited, link = True, f"/projects/{indirect['project_id']}"
        else:
            link = f"/projects/{ref['project_id']}"
    elif "domain_id" in ref:
        out["scope"] = {"domain": _named(ref, "domain", with_domain=False)}
        link = f"/domains/{ref['domain_id']}"
    else:
        out["scope"] = {"system": ref["system"]}
        link = "/system"
    if "user_id" in ref:
        out["user"] = _named(ref, "user")
        if "group_id" in indirect:
            out["links"]["membership"] = (f"{root}/groups/{indirect['group_id']}"
                                          f"/users/{ref['user_id']}")
            link += f"/groups/{indirect['group_id']}"
        else:
            link += f"/users/{ref['user_id']}"
    else:
        out["group"] = _named(ref, "group")
        link += f"/groups/{ref['group_id']}"
    out["role"] = _named(ref, "role", with_domain="role_domain_id" in ref)
    prior = indirect.get("role_id")
    link += f"/roles/{prior or ref['role_id']}"
    if inherited:
        out["scope"]["OS-INHERIT:inherited_to"] = "projects"
        link = f"/OS-INHERIT{link}/inherited_to_projects"
    out["links"]["assignment"] = f"{root}{link}"
    if prior:
        # Keystone's own (odd) shape for this link, kept for compatibility.
        out["links"]["prior_role"] = f"{root}/prior_role/{ref['role_id']}/implies/{prior}"
    return out


@router.api_route("/role_assignments", methods=["GET", "HEAD"])
async def list_role_assignments(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    p = request.query_params
    subtree = _flag(request, "include_subtree")
    project_id = p.get("scope.project.id") or None
    if subtree:
        target: dict[str, Any] = {}
        if project_id:
            project = await grants.get_project_ref(svc.store, project_id)
            target = {"project": project, "domain_id": project["domain_id"]}
        await authorize(request, "identity:list_role_assignments_for_tree",
                        target, ctx=ctx)
        if not project_id:
            raise ValidationError("scope.project.id must be specified if include_subtree is "
                                  "also specified")
    else:
        target = {"domain_id": ctx.domain_id} if ctx.domain_id else {}
        await authorize(request, "identity:list_role_assignments", target, ctx=ctx)
    inherited = (p["scope.OS-INHERIT:inherited_to"] == "projects"
                 if "scope.OS-INHERIT:inherited_to" in p else None)
    effective = _flag(request, "effective")
    _check_filters(request, effective, inherited)
    query = role_assignments.Query(
        role_id=p.get("role.id") or None, user_id=p.get("user.id") or None,
        group_id=p.get("group.id") or None,
        system=not subtree and p.get("scope.system") == "all",
        domain_id=p.get("scope.domain.id") or None, project_id=project_id,
        include_subtree=subtree, inherited=inherited, effective=effective,
        include_names=_flag(request, "include_names"),
        visible_domain=None if subtree else ctx.domain_id)
    refs = await role_assignments.list_assignments(svc.store, query)
    root = f"{base_url(request)}/v3"
    return head_or(request, list_response(request, "role_assignments",
                                          [_format(root, r) for r in refs]))
