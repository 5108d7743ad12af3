"""``/v3/types``: volume types, their extra specs and project access."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, NotFound
from stackling.volume.api import views
from stackling.volume.api.common import (
    accepted,
    authorize,
    boolean,
    caller,
    json_body,
    optional_str,
    reply,
    section,
    volumes,
)
from stackling.volume.service import types as service

router = APIRouter()


@router.get("/v3/types")
async def index(request: Request) -> Response:
    ctx = await caller(request)
    rows = await service.list_types(volumes(request), ctx,
                                    request.query_params.get("is_public"))
    return reply({"volume_types": [views.volume_type(request, ctx, r) for r in rows]})


@router.get("/v3/types/{type_id}")
async def show(request: Request, type_id: str) -> Response:
    ctx = await caller(request)
    row = await service.get(volumes(request), ctx, type_id)
    return reply({"volume_type": views.volume_type(request, ctx, row)})


@router.post("/v3/types")
async def create(request: Request) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:types_manage")
    body = section(await json_body(request), "volume_type")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest("Invalid input for field/attribute name. Value: "
                         f"{name}. It must be a non-empty string of at most 255 characters")
    is_public = boolean(body.get("os-volume-type-access:is_public",
                                 body.get("is_public", True)), "is_public")
    row = await service.create(volumes(request), name.strip(),
                               optional_str(body, "description"), is_public,
                               body.get("extra_specs") or {})
    return reply({"volume_type": views.volume_type(request, ctx, row, created=True)})


@router.put("/v3/types/{type_id}")
async def update(request: Request, type_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:types_manage")
    body = section(await json_body(request), "volume_type")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise BadRequest("Invalid input received: Volume type name can not be empty.")
    public = body.get("is_public")
    if name is None and "description" not in body and public is None:
        raise BadRequest("Invalid input received: Specify volume type name, description, "
                         "is_public or a combination thereof.")
    row = await service.update(volumes(request), ctx, type_id, name, optional_str(
        body, "description"), None if public is None else boolean(public, "is_public"),
        "description" in body)
    shown = views.volume_type(request, ctx, row, created=True)
    shown.pop("os-volume-type-access:is_public", None)  # Cinder's update view has no alias
    return reply({"volume_type": shown})


@router.delete("/v3/types/{type_id}")
async def delete(request: Request, type_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:types_manage")
    await service.delete(volumes(request), ctx, type_id)
    return accepted()


@router.get("/v3/types/{type_id}/extra_specs")
async def specs(request: Request, type_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:types_extra_specs:index")
    row = await service.get(volumes(request), ctx, type_id)
    return reply({"extra_specs": views.volume_type(request, ctx, row)["extra_specs"]})


@router.post("/v3/types/{type_id}/extra_specs")
async def create_specs(request: Request, type_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:types_extra_specs:create")
    body = await json_body(request)
    if "extra_specs" not in body:
        raise BadRequest("Missing required element 'extra_specs' in request body.")
    out = await service.set_specs(volumes(request), ctx, type_id, body["extra_specs"])
    return reply({"extra_specs": out})


@router.get("/v3/types/{type_id}/extra_specs/{key}")
async def show_spec(request: Request, type_id: str, key: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:types_extra_specs:show")
    row = await service.get(volumes(request), ctx, type_id)
    shown = views.volume_type(request, ctx, row)["extra_specs"]
    if key not in shown:
        raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
    return reply({key: shown[key]})


@router.put("/v3/types/{type_id}/extra_specs/{key}")
async def update_spec(request: Request, type_id: str, key: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:types_extra_specs:update")
    body: dict[str, Any] = await json_body(request)
    if key not in body:
        raise BadRequest("Request body and URI mismatch")
    if len(body) > 1:
        raise BadRequest("Request body contains too many items")
    out = await service.set_specs(volumes(request), ctx, type_id, body, replace_key=key)
    return reply(out)


@router.delete("/v3/types/{type_id}/extra_specs/{key}")
async def delete_spec(request: Request, type_id: str, key: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:types_extra_specs:delete")
    await service.delete_spec(volumes(request), ctx, type_id, key)
    return accepted()


@router.get("/v3/types/{type_id}/os-volume-type-access")
async def access(request: Request, type_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "volume_extension:volume_type_access")
    rows = await service.access_list(volumes(request), ctx, type_id)
    return reply({"volume_type_access": [
        {"volume_type_id": r.volume_type_id, "project_id": r.project_id} for r in rows]})


@router.post("/v3/types/{type_id}/action")
async def action(request: Request, type_id: str) -> Response:
    ctx = await caller(request)
    body = await json_body(request)
    svc = volumes(request)
    for name, rule, fn in (
            ("addProjectAccess", "volume_extension:volume_type_access:addProjectAccess",
             service.add_access),
            ("removeProjectAccess", "volume_extension:volume_type_access:removeProjectAccess",
             service.remove_access)):
        if name in body:
            authorize(request, ctx, rule)
            project = (body[name] or {}).get("project")
            if not isinstance(project, str) or not project:
                raise BadRequest("Missing required element 'project' in request body.")
            await fn(svc, ctx, type_id, project)
            return accepted()
    raise BadRequest("There is no such action: " + ", ".join(sorted(body)))


# -- encryption specs (recorded; volumes of an encrypted type are refused) --------------------
ENCRYPTION_RULE = "volume_extension:volume_type_encryption"


def _shown(spec: dict[str, Any]) -> dict[str, Any]:
    out = {k: spec.get(k) for k in ("volume_type_id", "encryption_id", "provider", "cipher",
                                     "key_size", "control_location", "created_at",
                                     "updated_at")}
    out["deleted"] = False
    out["deleted_at"] = None
    return out


@router.get("/v3/types/{type_id}/encryption")
async def show_encryption(request: Request, type_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, ENCRYPTION_RULE)
    spec = await service.get_encryption(volumes(request), ctx, type_id)
    return reply(_shown(spec) if spec else {})


@router.get("/v3/types/{type_id}/encryption/{key}")
async def show_encryption_item(request: Request, type_id: str, key: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, ENCRYPTION_RULE)
    spec = await service.get_encryption(volumes(request), ctx, type_id)
    if key not in service.ENCRYPTION_KEYS or key not in spec:
        raise NotFound(f"Volume type encryption for type {type_id} has no {key}.")
    value = spec[key]
    return reply({key: value if value is None else str(value)})


@router.post("/v3/types/{type_id}/encryption")
async def create_encryption(request: Request, type_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, ENCRYPTION_RULE)
    spec = section(await json_body(request), "encryption")
    made = await service.create_encryption(volumes(request), ctx, type_id, spec)
    return reply({"encryption": {k: made.get(k) for k in (
        "volume_type_id", "encryption_id", "provider", "cipher", "key_size",
        "control_location")}})


@router.put("/v3/types/{type_id}/encryption/{encryption_id}")
async def update_encryption(request: Request, type_id: str, encryption_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, ENCRYPTION_RULE)
    spec = section(await json_body(request), "encryption")
    changed = await service.update_encryption(volumes(request), ctx, type_id, encryption_id,
                                              spec)
    return reply({"encryption": changed})


@router.delete("/v3/types/{type_id}/encryption/{encryption_id}")
async def delete_encryption(request: Request, type_id: str, encryption_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, ENCRYPTION_RULE)
    await service.delete_encryption(volumes(request), ctx, type_id, encryption_id)
    return accepted()
