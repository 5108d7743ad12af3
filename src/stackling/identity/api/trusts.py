"""``/v3/OS-TRUST/trusts``: create, list, show and delete trusts, and their roles.

A trust that is missing, expired or used up is a 404 before any policy check (as Keystone,
lp#1840288). Tokens from application credentials may not touch trusts at all (403).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, NotFound, ValidationError
from stackling.common.timeutils import isotime, parse_isotime
from stackling.identity.api.common import (
    authorize,
    base_url,
    caller,
    head_aware,
    identity,
    json_body,
    json_response,
    list_response,
    require_object,
    self_link,
)
from stackling.identity.models import Trust
from stackling.identity.service.trusts import (
    NewTrust,
    Trusts,
    forbidden_action,
    trust_not_found,
)

router = APIRouter(prefix="/v3/OS-TRUST")

# Attributes a client may not set (server-made) or that are only read.
_NOT_EXTRA = {"trustor_user_id", "trustee_user_id", "impersonation", "project_id",
              "remaining_uses", "expires_at", "allow_redelegation", "redelegation_count",
              "redelegated_trust_id", "roles", "id", "links", "roles_links", "deleted_at"}


def _trusts(request: Request) -> Trusts:
    return Trusts(identity(request).store)


def _no_app_cred(ctx: RequestContext) -> None:
    if "application_credential" in ctx.methods:
        raise forbidden_action("Using method 'application_credential' is not allowed for "
                               "managing trusts")


def _caller_trust_id(ctx: RequestContext) -> str | None:
    trust = ctx.extra.get("trust")
    return trust.get("id") if isinstance(trust, dict) else None


def _target(trust: Trust) -> dict[str, Any]:
    return {"trust": {"id": trust.id, "trustor_user_id": trust.trustor_user_id,
                      "trustee_user_id": trust.trustee_user_id,
                      "project_id": trust.project_id}}


def _role_refs(request: Request, roles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "links": self_link(request, f"roles/{r['id']}")} for r in roles]


def _roles_links(request: Request, trust_id: str) -> dict[str, Any]:
    return {"self": f"{base_url(request)}/v3/OS-TRUST/trusts/{trust_id}/roles",
            "next": None, "previous": None}


def _render(request: Request, trust: Trust,
            roles: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = dict(trust.extra or {})
    if roles is not None:
        out["roles"] = _role_refs(request, roles)
    out.update(
        id=trust.id, trustor_user_id=trust.trustor_user_id,
        trustee_user_id=trust.trustee_user_id, project_id=trust.project_id,
        impersonation=trust.impersonation,
        expires_at=isotime(trust.expires_at) if trust.expires_at else None,
        remaining_uses=trust.remaining_uses, deleted_at=None,
        redelegated_trust_id=trust.redelegated_trust_id,
        redelegation_count=trust.redelegation_count,
    )
    if roles is not None:
        out["roles_links"] = _roles_links(request, trust.id)
    out["links"] = self_link(request, f"OS-TRUST/trusts/{trust.id}")
    return out


# -- parsing -----------------------------------------------------------------------------------

def _invalid(field: str, reason: str) -> ValidationError:
    return ValidationError(f"Invalid input for field '{field}': {reason}")


def _opt_int(spec: dict[str, Any], key: str, minimum: int) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(key, f"{value!r} is not of type 'integer', 'null'")
    if value < minimum:
        raise _invalid(key, f"{value!r} is less than the minimum of {minimum}")
    return value


def _roles(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid("roles", f"{value!r} is not of type 'array'")
    roles: list[dict[str, str]] = []
    for item in value:
        if (not isinstance(item, dict) or len(item) != 1 or not set(item) <= {"id", "name"}
                or not isinstance(next(iter(item.values())), str)
                or not next(iter(item.values())).strip()):
            raise _invalid("roles", f"{item!r} must be an object with exactly one of 'id' or "
                                    "'name'")
        roles.append(item)
    return roles


def _parse_create(spec: dict[str, Any]) -> NewTrust:
    for key in ("trustor_user_id", "trustee_user_id", "impersonation"):
        if key not in spec:
            raise _invalid("trust", f"'{key}' is a required property")
    for key in ("trustor_user_id", "trustee_user_id"):
        if not isinstance(spec[key], str):
            raise _invalid(key, f"{spec[key]!r} is not of type 'string'")
    for key in ("project_id", "expires_at", "redelegated_trust_id"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise _invalid(key, f"{spec[key]!r} is not of type 'string', 'null'")
    if not isinstance(spec["impersonation"], bool):
        raise _invalid("impersonation", f"{spec['impersonation']!r} is not of type 'boolean'")
    allow = spec.get("allow_redelegation")
    if allow is not None and not isinstance(allow, bool):
        raise _invalid("allow_redelegation", f"{allow!r} is not of type 'boolean', 'null'")
    expires_at = None
    if spec.get("expires_at"):
        try:
            expires_at = parse_isotime(spec["expires_at"])
        except ValueError as exc:
            raise BadRequest("Timestamp not in expected format. The server could not comply "
                             "with the request since it is either malformed or otherwise "
                             "incorrect. The client is assumed to be in error.") from exc
    return NewTrust(
        trustor_user_id=spec["trustor_user_id"], trustee_user_id=spec["trustee_user_id"],
        impersonation=spec["impersonation"], project_id=spec.get("project_id") or None,
        roles=_roles(spec.get("roles")), expires_at=expires_at,
        remaining_uses=_opt_int(spec, "remaining_uses", 1),
        allow_redelegation=bool(allow),
        redelegation_count=_opt_int(spec, "redelegation_count", 0),
        extra={k: v for k, v in spec.items() if k not in _NOT_EXTRA},
    )


# -- routes ------------------------------------------------------------------------------------

@router.post("/trusts")
async def create_trust(request: Request) -> Response:
    ctx = await caller(request)
    spec = require_object(await json_body(request), "trust")
    new = _parse_create(spec)
    await authorize(request, "identity:create_trust", {"trust": spec}, ctx=ctx)
    _no_app_cred(ctx)
    if new.project_id and not new.roles:
        raise forbidden_action("At least one role should be specified")
    if ctx.user_id != new.trustor_user_id:
        raise forbidden_action("The authenticated user should match the trustor")
    if "oauth1" in ctx.extra:
        raise forbidden_action("Redelegation allowed for delegated by trust only")
    view = await _trusts(request).create(new, _caller_trust_id(ctx))
    return json_response({"trust": _render(request, view.trust, view.roles)}, status=201)


@router.api_route("/trusts", methods=["GET", "HEAD"])
@router.api_route("/trusts/", methods=["GET", "HEAD"])  # Tempest's client asks this one
async def list_trusts(request: Request) -> Response:
    ctx = await caller(request)
    trustor = request.query_params.get("trustor_user_id")
    trustee = request.query_params.get("trustee_user_id")
    if trustor:
        await authorize(request, "identity:list_trusts_for_trustor",
                        {"trust": {"trustor_user_id": trustor}}, ctx=ctx)
    elif trustee:
        await authorize(request, "identity:list_trusts_for_trustee",
                        {"trust": {"trustee_user_id": trustee}}, ctx=ctx)
    else:
        await authorize(request, "identity:list_trusts", ctx=ctx)
    _no_app_cred(ctx)
    trusts = _trusts(request)
    if not request.query_params:
        found = await trusts.list()
    elif trustor:
        found = await trusts.list(trustor_user_id=trustor)
    elif trustee:
        found = await trusts.list(trustee_user_id=trustee)
    else:
        found = []  # as Keystone: other filters match nothing
    return head_aware(request, list_response(request, "trusts",
                                             [_render(request, t) for t in found]))


async def _visible(request: Request, rule: str, trust_id: str) -> Trust:
    """The trust, for a caller the rule lets see it (404 first when it is not there)."""
    ctx = await caller(request)
    trust = await _trusts(request).find(trust_id)
    if trust is None:
        raise trust_not_found(trust_id)
    await authorize(request, rule, _target(trust), ctx=ctx)
    _no_app_cred(ctx)
    return trust


@router.api_route("/trusts/{trust_id}", methods=["GET", "HEAD"])
async def get_trust(request: Request, trust_id: str) -> Response:
    await _visible(request, "identity:get_trust", trust_id)
    view = await _trusts(request).get(trust_id)
    return head_aware(request, json_response(
        {"trust": _render(request, view.trust, view.roles)}))


@router.delete("/trusts/{trust_id}")
async def delete_trust(request: Request, trust_id: str) -> Response:
    await _visible(request, "identity:delete_trust", trust_id)
    await _trusts(request).delete(trust_id)
    return Response(status_code=204)


@router.api_route("/trusts/{trust_id}/roles", methods=["GET", "HEAD"])
async def list_trust_roles(request: Request, trust_id: str) -> Response:
    await _visible(request, "identity:list_roles_for_trust", trust_id)
    view = await _trusts(request).get(trust_id)
    return head_aware(request, json_response({"roles": _role_refs(request, view.roles),
                                              "links": _roles_links(request, trust_id)}))


@router.api_route("/trusts/{trust_id}/roles/{role_id}", methods=["GET", "HEAD"])
async def get_trust_role(request: Request, trust_id: str, role_id: str) -> Response:
    await _visible(request, "identity:get_role_for_trust", trust_id)
    view = await _trusts(request).get(trust_id)
    for role in view.roles:
        if role["id"] == role_id:
            return head_aware(request, json_response(
                {"role": _role_refs(request, [role])[0]}))
    raise NotFound(f"Could not find role: {role_id}.")
