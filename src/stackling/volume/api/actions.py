"""``POST /v3/volumes/{id}/action``: one body key names the action."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest
from stackling.volume.api.common import (
    accepted,
    authorize,
    boolean,
    caller,
    integer,
    json_body,
    reply,
    volumes,
)
from stackling.volume.service import actions as service
from stackling.volume.service import volumes as volume_service
from stackling.volume.service.common import metadata

router = APIRouter()

Action = Callable[[Request, RequestContext, str, Any], Awaitable[Response]]
VOLUME_STATUSES = {"available", "creating", "deleting", "error", "error_deleting",
                   "error_extending", "error_restoring", "in-use", "attaching", "detaching",
                   "reserved", "maintenance", "downloading", "uploading", "backing-up",
                   "restoring-backup", "awaiting-transfer", "error_managing", "extending",
                   "retyping", "managing"}


def _dict(value: Any, action: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {action}. Value: {value}. "
                         f"{value!r} is not of type 'object'")
    return value


async def _extend(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    body = _dict(value, "os-extend")
    if "new_size" not in body:
        raise BadRequest("Invalid input for field/attribute os-extend. 'new_size' is a "
                         "required property")
    await service.extend(volumes(request), ctx, vid, integer(body["new_size"], "new_size", 1))
    return accepted()


async def _bootable(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    body = _dict(value, "os-set_bootable")
    if "bootable" not in body:
        raise BadRequest("Invalid input for field/attribute os-set_bootable. 'bootable' is a "
                         "required property")
    await service.set_flag(volumes(request), ctx, vid,
                           bootable=boolean(body["bootable"], "bootable"))
    return Response(status_code=200)


async def _readonly(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    body = _dict(value, "os-update_readonly_flag")
    if "readonly" not in body:
        raise BadRequest("Invalid input for field/attribute os-update_readonly_flag. "
                         "'readonly' is a required property")
    await service.set_flag(volumes(request), ctx, vid,
                           readonly=boolean(body["readonly"], "readonly"))
    return accepted()


async def _reset(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    authorize(request, ctx, "volume_extension:volume_admin_actions:reset_status")
    body = _dict(value, "os-reset_status")
    status = body.get("status")
    attach = body.get("attach_status")
    migration = body.get("migration_status")
    if status is None and attach is None and migration is None:
        raise BadRequest("Must specify 'status', 'attach_status' or 'migration_status' for "
                         "update.")
    if status is not None and status not in VOLUME_STATUSES:
        raise BadRequest(f"Invalid input received: Invalid volume status: {status}")
    if attach is not None and attach not in ("attached", "detached"):
        raise BadRequest(f"Invalid input received: Invalid attach status: {attach}")
    await service.reset_status(volumes(request), ctx, vid, status, attach, migration)
    return accepted()


async def _force_delete(request: Request, ctx: RequestContext, vid: str, value: Any
                        ) -> Response:
    authorize(request, ctx, "volume_extension:volume_admin_actions:force_delete")
    await volume_service.delete(volumes(request), ctx, vid, force=True)
    return accepted()


async def _retype(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    body = _dict(value, "os-retype")
    new_type = body.get("new_type")
    if not isinstance(new_type, str) or not new_type:
        raise BadRequest("Invalid input for field/attribute os-retype. 'new_type' is a "
                         "required property")
    policy = str(body.get("migration_policy") or "never")
    if policy not in ("never", "on-demand"):
        raise BadRequest(f"Invalid input received: Invalid migration policy {policy}")
    await service.retype(volumes(request), ctx, vid, new_type, policy)
    return accepted()


async def _reserve(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    await service.reserve(volumes(request), ctx, vid)
    return accepted()


async def _unreserve(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    await service.unreserve(volumes(request), ctx, vid)
    return accepted()


async def _begin_detaching(request: Request, ctx: RequestContext, vid: str, value: Any
                           ) -> Response:
    await service.begin_detaching(volumes(request), ctx, vid)
    return accepted()


async def _roll_detaching(request: Request, ctx: RequestContext, vid: str, value: Any
                          ) -> Response:
    await service.roll_detaching(volumes(request), ctx, vid)
    return accepted()


async def _attach(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    body = _dict(value, "os-attach")
    instance = body.get("instance_uuid")
    host = body.get("host_name")
    if not instance and not host:
        raise BadRequest("Invalid request to attach volume to an invalid target")
    mountpoint = body.get("mountpoint")
    if not isinstance(mountpoint, str) or not mountpoint:
        raise BadRequest("Invalid input for field/attribute os-attach. 'mountpoint' is a "
                         "required property")
    await service.attach(volumes(request), ctx, vid, instance, host, mountpoint,
                         str(body.get("mode") or "rw"))
    return accepted()


async def _detach(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    body = _dict(value, "os-detach")
    await service.detach(volumes(request), ctx, vid, body.get("attachment_id"))
    return accepted()


async def _force_detach(request: Request, ctx: RequestContext, vid: str, value: Any
                        ) -> Response:
    authorize(request, ctx, "volume_extension:volume_admin_actions:force_detach")
    body = _dict(value, "os-force_detach")
    svc = volumes(request)
    await service.terminate_connection(svc, ctx, vid)
    await service.reset_status(svc, ctx, vid, "available", "detached", None)
    _ = body
    return accepted()


async def _init_conn(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    body = _dict(value, "os-initialize_connection")
    connector = body.get("connector")
    if not isinstance(connector, dict):
        raise BadRequest("Must specify 'connector'")
    info = await service.initialize_connection(volumes(request), ctx, vid, connector)
    return reply({"connection_info": info})


async def _term_conn(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    body = _dict(value, "os-terminate_connection")
    if not isinstance(body.get("connector"), dict):
        raise BadRequest("Must specify 'connector'")
    await service.terminate_connection(volumes(request), ctx, vid)
    return accepted()


async def _upload(request: Request, ctx: RequestContext, vid: str, value: Any) -> Response:
    body = _dict(value, "os-volume_upload_image")
    name = body.get("image_name")
    if not isinstance(name, str) or not name:
        raise BadRequest("No image_name was specified in request.")
    visibility = body.get("visibility")
    if visibility == "public":
        authorize(request, ctx, "volume_extension:volume_actions:upload_public")
    out = await service.upload_to_image(
        volumes(request), ctx, vid, name, str(body.get("disk_format") or "raw"),
        str(body.get("container_format") or "bare"),
        boolean(body.get("force", False), "force"), visibility,
        boolean(body.get("protected", False), "protected"))
    return reply({"os-volume_upload_image": out}, 202)


async def _set_image_meta(request: Request, ctx: RequestContext, vid: str, value: Any
                          ) -> Response:
    body = _dict(value, "os-set_image_metadata")
    items = metadata(body.get("metadata"))
    return reply({"metadata": await service.set_image_metadata(volumes(request), ctx, vid,
                                                               items)})


async def _unset_image_meta(request: Request, ctx: RequestContext, vid: str, value: Any
                            ) -> Response:
    body = _dict(value, "os-unset_image_metadata")
    key = body.get("key")
    if not isinstance(key, str):
        raise BadRequest("Invalid input received: Must specify 'key'.")
    await service.unset_image_metadata(volumes(request), ctx, vid, key)
    return Response(status_code=200)


async def _show_image_meta(request: Request, ctx: RequestContext, vid: str, value: Any
                           ) -> Response:
    row = await volume_service.get(volumes(request), ctx, vid)
    return reply({"metadata": dict(row.image_meta)})


ACTIONS: dict[str, tuple[str, Action]] = {
    "os-extend": ("volume:extend", _extend),
    "os-set_bootable": ("volume:update", _bootable),
    "os-update_readonly_flag": ("volume:update_readonly_flag", _readonly),
    "os-reset_status": ("volume:get", _reset),
    "os-force_delete": ("volume:get", _force_delete),
    "os-retype": ("volume:retype", _retype),
    "os-reserve": ("volume:reserve_volume", _reserve),
    "os-unreserve": ("volume:unreserve_volume", _unreserve),
    "os-begin_detaching": ("volume:begin_detaching", _begin_detaching),
    "os-roll_detaching": ("volume:roll_detaching", _roll_detaching),
    "os-attach": ("volume:attach", _attach),
    "os-detach": ("volume:detach", _detach),
    "os-force_detach": ("volume:get", _force_detach),
    "os-initialize_connection": ("volume:initialize_connection", _init_conn),
    "os-terminate_connection": ("volume:terminate_connection", _term_conn),
    "os-volume_upload_image": ("volume:upload_to_image", _upload),
    "os-set_image_metadata": ("volume_extension:volume_image_metadata:set", _set_image_meta),
    "os-unset_image_metadata": ("volume_extension:volume_image_metadata:remove",
                                _unset_image_meta),
    "os-show_image_metadata": ("volume_extension:volume_image_metadata:show",
                               _show_image_meta),
}


@router.post("/v3/volumes/{volume_id}/action")
async def action(request: Request, volume_id: str) -> Response:
    ctx = await caller(request)
    body = await json_body(request)
    known = [k for k in body if k in ACTIONS]
    if len(known) != 1:
        raise BadRequest("There is no such action: " + ", ".join(sorted(body)) if body
                         else "Malformed request body")
    name = known[0]
    rule, handler = ACTIONS[name]
    row = await volume_service.get(volumes(request), ctx, volume_id)
    authorize(request, ctx, rule, {"project_id": row.project_id, "user_id": row.user_id})
    return await handler(request, ctx, volume_id, body[name])
