"""``/v3/users``: CRUD, self-service password change, a user's groups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import MethodNotAllowed, NotFound, ValidationError
from stackling.identity.api import resource_fields as f
from stackling.identity.api.common import authorize, caller, identity, json_body, require_object
from stackling.identity.service import groups, users
from stackling.identity.service.listing import expiry_filter

router = APIRouter(prefix="/v3/users")

_FILTERS = ("domain_id", "enabled", "name")
_FEDERATED = ("idp_id", "protocol_id", "unique_id")
_KNOWN = ("name", "domain_id", "enabled", "password", "default_project_id", "description",
          "email", "options", "federated")


def _check(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "name":
            out[key] = f.name(value, "user.name", max_len=255)
        elif key == "domain_id":
            out[key] = f.ident(value, "user.domain_id", nullable=False)
        elif key == "enabled":
            out[key] = f.boolean(value, "user.enabled")
        elif key in ("password", "default_project_id", "description", "email"):
            out[key] = f.text(value, f"user.{key}")
        elif key == "options":
            out[key] = f.options(value, f.USER_OPTIONS, "user.options")
        elif key == "federated":
            if not isinstance(value, list):
                raise f.bad("user.federated", f"{value!r} is not of type 'array'")
        elif key in ("links", "password_expires_at"):
            continue
        else:
            out[key] = value
    return out


def _body(raw: dict[str, Any]) -> dict[str, Any]:
    extra = set(raw) - {"user"}
    if extra:
        raise ValidationError("Invalid input for field '/': additional properties are not "
                              f"allowed ({', '.join(sorted(extra))} unexpected)")
    return require_object(raw, "user")


async def _authorized_user(request: Request, rule: str, user_id: str) -> dict[str, Any]:
    svc = identity(request)
    ref = await users.get(svc, user_id)
    await authorize(request, rule, {"user": ref or {}, "user_id": user_id})
    if ref is None:
        raise NotFound(f"Could not find user: {user_id}.")
    return ref


async def filtered_users(request: Request, refs_rows: list[tuple[dict[str, Any], Any]]
                         ) -> list[dict[str, Any]]:
    """Apply ``password_expires_at`` and the federated filters (no federated users here)."""
    params = request.query_params
    if any(k in params for k in _FEDERATED):
        return []
    if "password_expires_at" in params:
        check = expiry_filter(params["password_expires_at"])
        refs_rows = [(ref, row) for ref, row in refs_rows if check(row.password_expires_at)]
    return [f.with_link(request, "users", ref) for ref, _ in refs_rows]


@router.api_route("", methods=["GET", "HEAD"])
async def list_users(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    target: dict[str, Any] = {"domain_id": ctx.domain_id} if ctx.domain_id else {}
    await authorize(request, "identity:list_users", target, ctx=ctx)
    refs = await filtered_users(request, await users.list_users(svc, domain_id=ctx.domain_id))
    response = f.collection(request, "users", refs, f.filters(request, _FILTERS))
    return f.no_body(request) if request.method == "HEAD" else response


@router.post("")
async def create_user(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    raw = _body(await json_body(request))
    await authorize(request, "identity:create_user", {"user": raw}, ctx=ctx)
    body = _check(raw)
    if "name" not in body:
        raise ValidationError("Invalid input for field 'user': 'name' is a required property")
    extra = {k: v for k, v in f.normalize_keys(body).items() if k not in (*_KNOWN, "id")}
    spec = users.NewUser(
        name=body["name"], domain_id=body.get("domain_id") or ctx.domain_id or "default",
        enabled=body.get("enabled", True), password=body.get("password"),
        default_project_id=body.get("default_project_id"),
        description=body.get("description"), email=body.get("email"),
        options=body.get("options", {}), extra=extra)
    ref = await users.create(svc, spec)
    return f.member(request, "users", "user", ref, status=201)


@router.api_route("/{user_id}", methods=["GET", "HEAD"])
async def get_user(request: Request, user_id: str) -> Response:
    ref = await _authorized_user(request, "identity:get_user", user_id)
    if request.method == "HEAD":
        return f.no_body(request)
    return f.member(request, "users", "user", ref)


@router.patch("/{user_id}")
async def update_user(request: Request, user_id: str) -> Response:
    svc = identity(request)
    await _authorized_user(request, "identity:update_user", user_id)
    raw = _body(await json_body(request))
    if not raw:
        raise ValidationError("Invalid input for field 'user': {} does not have enough "
                              "properties")
    if raw.get("id") not in (None, user_id):
        raise ValidationError("Cannot change user ID")
    ref = await users.update(svc, user_id, _check(raw))
    return f.member(request, "users", "user", ref)


@router.delete("/{user_id}")
async def delete_user(request: Request, user_id: str) -> Response:
    svc = identity(request)
    await _authorized_user(request, "identity:delete_user", user_id)
    await users.delete_user(svc, user_id)
    return Response(status_code=204)


@router.post("/{user_id}/password")
async def change_password(request: Request, user_id: str) -> Response:
    """Self-service password change: no token needed, the original password is the proof."""
    svc = identity(request)
    body = require_object(await json_body(request), "user")
    extra = set(body) - {"password", "original_password"}
    if extra:
        raise ValidationError("Invalid input for field 'user': additional properties are not "
                              f"allowed ({', '.join(sorted(extra))} unexpected)")
    for key in ("original_password", "password"):
        if key not in body:
            raise ValidationError(f"Invalid input for field 'user': {key!r} is a required "
                                  "property")
        if not isinstance(body[key], str):
            raise f.bad(f"user.{key}", "is not of type 'string'")
    await users.change_password(svc, user_id, body["original_password"], body["password"])
    return Response(status_code=204)


@router.get("/{user_id}/password")
async def password_get(user_id: str) -> Response:
    raise MethodNotAllowed("The method is not allowed for the requested URL.")


@router.api_route("/{user_id}/groups", methods=["GET", "HEAD"])
async def list_user_groups(request: Request, user_id: str) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    ref = await users.get(svc, user_id)
    await authorize(request, "identity:list_groups_for_user",
                    {"user": ref or {}, "user_id": user_id}, ctx=ctx)
    refs = await groups.groups_for_user(svc, user_id)
    if ctx.domain_id:
        refs = [r for r in refs if r["domain_id"] == ctx.domain_id]
    refs = [{**f.with_link(request, "groups", r), "membership_expires_at": None} for r in refs]
    response = f.collection(request, "groups", refs, f.filters(request, ("name",)))
    return f.no_body(request) if request.method == "HEAD" else response
