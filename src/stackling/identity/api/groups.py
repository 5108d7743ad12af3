"""``/v3/groups``: CRUD and membership."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import NotFound, ValidationError
from stackling.identity.api import resource_fields as f
from stackling.identity.api.common import authorize, caller, identity, json_body, require_object
from stackling.identity.api.users import filtered_users
from stackling.identity.service import groups, users

router = APIRouter(prefix="/v3/groups")


def _check(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "name":
            out[key] = f.name(value, "group.name")
        elif key == "domain_id":
            out[key] = f.ident(value, "group.domain_id", nullable=False)
        elif key == "description":
            out[key] = f.text(value, "group.description")
        elif key == "links":
            continue
        else:
            out[key] = value
    return out


def _body(raw: dict[str, Any]) -> dict[str, Any]:
    extra = set(raw) - {"group"}
    if extra:
        raise ValidationError("Invalid input for field '/': additional properties are not "
                              f"allowed ({', '.join(sorted(extra))} unexpected)")
    return require_object(raw, "group")


async def _authorized_group(request: Request, rule: str, group_id: str) -> dict[str, Any]:
    svc = identity(request)
    ref = await groups.get(svc, group_id)
    await authorize(request, rule, {"group": ref or {}})
    if ref is None:
        raise NotFound(f"Could not find group: {group_id}.")
    return ref


@router.api_route("", methods=["GET", "HEAD"])
async def list_groups(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    target: dict[str, Any] = {"group": {"domain_id": ctx.domain_id}} if ctx.domain_id else {}
    await authorize(request, "identity:list_groups", target, ctx=ctx)
    refs = await groups.list_groups(svc, domain_id=ctx.domain_id)
    refs = [f.with_link(request, "groups", r) for r in refs]
    response = f.collection(request, "groups", refs, f.filters(request, ("domain_id", "name")))
    return f.no_body(request) if request.method == "HEAD" else response


@router.post("")
async def create_group(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    raw = _body(await json_body(request))
    await authorize(request, "identity:create_group", {"group": raw}, ctx=ctx)
    body = _check(raw)
    if "name" not in body:
        raise ValidationError("Invalid input for field 'group': 'name' is a required property")
    extra = {k: v for k, v in f.normalize_keys(body).items()
             if k not in ("name", "domain_id", "description", "id")}
    ref = await groups.create(svc, body["name"], body.get("domain_id") or ctx.domain_id
                              or "default", body.get("description"), extra)
    return f.member(request, "groups", "group", ref, status=201)


@router.api_route("/{group_id}", methods=["GET", "HEAD"])
async def get_group(request: Request, group_id: str) -> Response:
    ref = await _authorized_group(request, "identity:get_group", group_id)
    if request.method == "HEAD":
        return f.no_body(request)
    return f.member(request, "groups", "group", ref)


@router.patch("/{group_id}")
async def update_group(request: Request, group_id: str) -> Response:
    svc = identity(request)
    await _authorized_group(request, "identity:update_group", group_id)
    raw = _body(await json_body(request))
    if not raw:
        raise ValidationError("Invalid input for field 'group': {} does not have enough "
                              "properties")
    if raw.get("id") not in (None, group_id):
        raise ValidationError("Cannot change ID")
    ref = await groups.update(svc, group_id, _check(raw))
    return f.member(request, "groups", "group", ref)


@router.delete("/{group_id}")
async def delete_group(request: Request, group_id: str) -> Response:
    svc = identity(request)
    await _authorized_group(request, "identity:delete_group", group_id)
    await groups.delete_group(svc, group_id)
    return Response(status_code=204)


@router.api_route("/{group_id}/users", methods=["GET", "HEAD"])
async def list_group_users(request: Request, group_id: str) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    group = await groups.get(svc, group_id)
    target: dict[str, Any] = {"group": group} if group is not None else {}
    await authorize(request, "identity:list_users_in_group", target, ctx=ctx)
    ids = await groups.member_ids(svc, group_id)
    refs = await filtered_users(request, await users.list_users(svc, user_ids=ids))
    if ctx.domain_id:
        refs = [r for r in refs if r["domain_id"] == ctx.domain_id]
    response = f.collection(request, "users", refs,
                            f.filters(request, ("domain_id", "enabled", "name")))
    return f.no_body(request) if request.method == "HEAD" else response


async def _membership_target(request: Request, rule: str, group_id: str, user_id: str) -> None:
    svc = identity(request)
    target: dict[str, Any] = {}
    group = await groups.get(svc, group_id)
    user = await users.get(svc, user_id)
    if group is not None:
        target["group"] = group
    if user is not None:
        target["user"] = user
    await authorize(request, rule, target)


@router.api_route("/{group_id}/users/{user_id}", methods=["GET", "HEAD"])
async def check_member(request: Request, group_id: str, user_id: str) -> Response:
    svc = identity(request)
    await _membership_target(request, "identity:check_user_in_group", group_id, user_id)
    if not await groups.is_member(svc, group_id, user_id):
        raise NotFound(f"User '{user_id}' not found in group '{group_id}'")
    return Response(status_code=204)


@router.put("/{group_id}/users/{user_id}")
async def add_member(request: Request, group_id: str, user_id: str) -> Response:
    svc = identity(request)
    await _membership_target(request, "identity:add_user_to_group", group_id, user_id)
    await groups.add_member(svc, group_id, user_id)
    return Response(status_code=204)


@router.delete("/{group_id}/users/{user_id}")
async def remove_member(request: Request, group_id: str, user_id: str) -> Response:
    svc = identity(request)
    await _membership_target(request, "identity:remove_user_from_group", group_id, user_id)
    await groups.remove_member(svc, group_id, user_id)
    return Response(status_code=204)
