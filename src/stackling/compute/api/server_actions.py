"""``POST /v2.1/servers/{id}/action``: os-stop, os-start, reboot, pause, unpause, suspend,
resume, lock, unlock, os-getConsoleOutput. Each state change is a compare-and-swap in the
service layer: a conflicting second action gets 409."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict
from stackling.compute.api.common import (
    allowed as allowed_rule,
)
from stackling.compute.api.common import (
    caller,
    compute,
    invalid,
    json_body,
    no_extra,
    required,
    string,
)
from stackling.compute.api.floating_ips import add_floating_ip, remove_floating_ip
from stackling.compute.api.microversion import at_least
from stackling.compute.api.security_groups import change_server_groups
from stackling.compute.api.server_body import ip_address, metadata
from stackling.compute.api.servers import load, load_authorized
from stackling.compute.api.views import server_detail
from stackling.compute.service import actions
from stackling.compute.service import create as creating
from stackling.compute.service import rebuild as rebuilding
from stackling.compute.service import resize as resizing
from stackling.compute.service import snapshot as snapshotting
from stackling.compute.service.instances import ServerRecord
from stackling.compute.service.rebuild import RebuildRequest
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/servers")

#: Nova actions this cloud does not implement yet (a missing server still gets 404)
NOT_YET = {"migrate", "os-migrateLive", "evacuate", "shelve", "shelveOffload", "unshelve",
           "rescue", "unrescue", "changePassword", "trigger_crash_dump",
           "addFixedIp",
           "removeFixedIp", "os-getVNCConsole",
           "os-getSPICEConsole", "os-getSerialConsole", "os-getRDPConsole",
           "os-resetNetwork"}

Handler = Callable[[Request, RequestContext, ServerRecord, Any], Awaitable[Response]]
_ACTIONS: dict[str, tuple[str, Handler]] = {}


def action(name: str, rule: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _ACTIONS[name] = (rule, handler)
        return handler
    return register


@router.post("/{server_id}/action")
async def server_action(request: Request, server_id: str) -> Response:
    ctx = await caller(request)
    body = await json_body(request)
    if len(body) != 1:
        raise BadRequest("Malformed request body: expected exactly one action.")
    name, arg = next(iter(body.items()))
    entry = _ACTIONS.get(name)
    if entry is None:
        if name not in NOT_YET:
            raise BadRequest(f"There is no such action: {name}")
        await load(request, ctx, server_id)  # 404 first, as Nova would
        raise BadRequest(f"The '{name}' action is not supported by this cloud yet.")
    rule, handler = entry
    rec = await load_authorized(request, ctx, server_id, rule)
    return await handler(request, ctx, rec, arg)


def _simple(name: str) -> Handler:
    async def handler(request: Request, ctx: RequestContext, rec: ServerRecord,
                      arg: Any) -> Response:
        await actions.simple_action(compute(request), ctx, rec.row.uuid, name)
        return Response(status_code=202)
    return handler


for _name, _rule, _op in (
        ("os-stop", "os_compute_api:servers:stop", "stop"),
        ("os-start", "os_compute_api:servers:start", "start"),
        ("pause", "os_compute_api:os-pause-server:pause", "pause"),
        ("unpause", "os_compute_api:os-pause-server:unpause", "unpause"),
        ("suspend", "os_compute_api:os-suspend-server:suspend", "suspend"),
        ("resume", "os_compute_api:os-suspend-server:resume", "resume")):
    action(_name, _rule)(_simple(_op))


@action("reboot", "os_compute_api:servers:reboot")
async def reboot(request: Request, ctx: RequestContext, rec: ServerRecord,
                 arg: Any) -> Response:
    if not isinstance(arg, dict) or "type" not in arg:
        raise invalid("reboot", arg, "'type' is a required property")
    kind = str(arg["type"])
    if kind not in ("HARD", "Hard", "hard", "SOFT", "Soft", "soft") or len(arg) > 1:
        raise invalid("reboot/type", arg["type"], "is not one of ['HARD', 'SOFT']")
    await actions.reboot(compute(request), ctx, rec.row.uuid, hard=kind.upper() == "HARD")
    return Response(status_code=202)


@action("lock", "os_compute_api:os-lock-server:lock")
async def lock(request: Request, ctx: RequestContext, rec: ServerRecord,
               arg: Any) -> Response:
    reason = None
    if arg is not None:
        if not isinstance(arg, dict) or (arg and not at_least(request, "2.73")) or (
                set(arg) - {"locked_reason"}):
            raise invalid("lock", arg, "Additional properties are not allowed")
        reason = arg.get("locked_reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 255):
            raise invalid("locked_reason", reason, "is not a string of at most 255 chars")
    await actions.lock(compute(request), ctx, rec.row.uuid, reason)
    return Response(status_code=202)


@action("unlock", "os_compute_api:os-lock-server:unlock")
async def unlock(request: Request, ctx: RequestContext, rec: ServerRecord,
                 arg: Any) -> Response:
    await actions.unlock(compute(request), ctx, rec.row.uuid)
    return Response(status_code=202)


@action("os-getConsoleOutput", "os_compute_api:os-console-output")
async def console_output(request: Request, ctx: RequestContext, rec: ServerRecord,
                         arg: Any) -> Response:
    length = None
    if isinstance(arg, dict) and arg.get("length") is not None:
        raw = arg["length"]
        try:
            length = int(raw)
        except (TypeError, ValueError):
            raise invalid("length", raw, "is not an integer") from None
        if isinstance(raw, bool) or length < -1:
            raise invalid("length", raw, "is less than the minimum of -1")
        if length == -1:
            length = None
    elif arg is not None and not isinstance(arg, dict):
        raise invalid("os-getConsoleOutput", arg, "is not of type 'object'")
    output = await actions.console_output(compute(request), rec.row.uuid, length)
    return JSONResponse({"output": output})


@action("os-resetState", "os_compute_api:os-admin-actions:reset_state")
async def reset_state(request: Request, ctx: RequestContext, rec: ServerRecord,
                      arg: Any) -> Response:
    if not isinstance(arg, dict) or arg.get("state") not in ("active", "error") or (
            set(arg) - {"state"}):
        raise invalid("os-resetState", arg, "'state' must be one of ['active', 'error']")
    await actions.reset_state(compute(request), ctx, rec.row.uuid, arg["state"])
    return Response(status_code=202)


@action("injectNetworkInfo", "os_compute_api:os-admin-actions:inject_network_info")
async def inject_network_info(request: Request, ctx: RequestContext, rec: ServerRecord,
                              arg: Any) -> Response:
    """202, as Nova (409 when locked). There is nothing to push into the guest: with the
    fake and QEMU drivers, as with Nova's libvirt driver, guests get their network
    configuration from DHCP and the metadata service."""
    await actions.inject_network_info(compute(request), ctx, rec.row.uuid)
    return Response(status_code=202)


def _group_name(arg: Any, action_name: str) -> str:
    if not isinstance(arg, dict) or not isinstance(arg.get("name"), str) or \
            not arg["name"].strip():
        raise BadRequest(f"Security group name is required for {action_name}")
    return str(arg["name"])


@action("addSecurityGroup", "os_compute_api:os-security-groups:add")
async def add_security_group(request: Request, ctx: RequestContext, rec: ServerRecord,
                             arg: Any) -> Response:
    name = _group_name(arg, "addSecurityGroup")
    await change_server_groups(request, ctx, rec, name, add=True)
    return Response(status_code=202)


@action("removeSecurityGroup", "os_compute_api:os-security-groups:remove")
async def remove_security_group(request: Request, ctx: RequestContext, rec: ServerRecord,
                                arg: Any) -> Response:
    name = _group_name(arg, "removeSecurityGroup")
    await change_server_groups(request, ctx, rec, name, add=False)
    return Response(status_code=202)


action("addFloatingIp", "os_compute_api:os-floating-ips:add")(add_floating_ip)
action("removeFloatingIp", "os_compute_api:os-floating-ips:remove")(remove_floating_ip)


async def _soft_deleted_only(request: Request, ctx: RequestContext, rec: ServerRecord,
                             name: str) -> Response:
    """restore / forceDelete act on SOFT_DELETED servers; this cloud deletes at once
    (reclaim interval 0), so a live server is always in the wrong state."""
    row = rec.row
    raise Conflict(f"Cannot '{name}' instance {row.uuid} while it is in vm_state "
                   f"{row.vm_state}")


@action("restore", "os_compute_api:os-deferred-delete:restore")
async def restore(request: Request, ctx: RequestContext, rec: ServerRecord,
                  arg: Any) -> Response:
    return await _soft_deleted_only(request, ctx, rec, "restore")


@action("forceDelete", "os_compute_api:os-deferred-delete:force")
async def force_delete(request: Request, ctx: RequestContext, rec: ServerRecord,
                       arg: Any) -> Response:
    return await _soft_deleted_only(request, ctx, rec, "forceDelete")


@action("rebuild", "os_compute_api:servers:rebuild")
async def rebuild(request: Request, ctx: RequestContext, rec: ServerRecord,
                  arg: Any) -> Response:
    if not isinstance(arg, dict):
        raise invalid("rebuild", arg, "is not of type 'object'")
    allowed = {"imageRef", "name", "adminPass", "metadata", "accessIPv4", "accessIPv6",
               "OS-DCF:diskConfig", "preserve_ephemeral"}
    if not at_least(request, "2.57"):
        allowed.add("personality")
    for version, key in (("2.19", "description"), ("2.54", "key_name"),
                         ("2.57", "user_data"), ("2.63", "trusted_image_certificates"),
                         ("2.90", "hostname")):
        if at_least(request, version):
            allowed.add(key)
    no_extra(arg, allowed, "rebuild")
    image_ref = required(arg, "imageRef", "rebuild")
    if not isinstance(image_ref, str):
        raise invalid("imageRef", image_ref, "is not of type 'string'")
    req = RebuildRequest(image_ref=image_ref)
    if "name" in arg:
        req.name = string(arg, "name", min_len=1, max_len=255, name_like=True)
    if "metadata" in arg:
        req.metadata = metadata(arg["metadata"])
    for key, ipv in (("accessIPv4", 4), ("accessIPv6", 6)):
        if key in arg:
            value = ip_address(arg, key, ipv) if arg[key] not in (None, "") else None
            if ipv == 4:
                req.access_ip_v4, req.set_ipv4 = value, True
            else:
                req.access_ip_v6, req.set_ipv6 = value, True
    if "OS-DCF:diskConfig" in arg:
        if arg["OS-DCF:diskConfig"] not in ("AUTO", "MANUAL"):
            raise invalid("OS-DCF:diskConfig", arg["OS-DCF:diskConfig"],
                          "is not one of ['AUTO', 'MANUAL']")
        req.auto_disk_config = arg["OS-DCF:diskConfig"] == "AUTO"
    if "description" in arg:
        req.description = string(arg, "description", max_len=255, nullable=True)
        req.set_description = True
    if "key_name" in arg:
        req.key_name = string(arg, "key_name", min_len=1, max_len=255, nullable=True)
        req.set_key = True
    if "user_data" in arg:
        user_data = arg["user_data"]
        if user_data is not None and (not isinstance(user_data, str) or
                                      len(user_data) > 65535):
            raise invalid("user_data", "...", "is not a base64 string")
        req.user_data, req.set_user_data = user_data, True
    if "hostname" in arg:
        req.hostname = string(arg, "hostname", min_len=1, max_len=255)
    if arg.get("trusted_image_certificates"):
        raise invalid("trusted_image_certificates", "...",
                      "Image certificate validation is not supported by this cloud.")
    password = arg.get("adminPass")
    if password is not None and not isinstance(password, str):
        raise invalid("adminPass", "...", "is not of type 'string'")
    svc = compute(request)
    await rebuilding.rebuild(svc, ctx, rec.row.uuid, req)
    fresh = await load(request, ctx, rec.row.uuid)
    body = server_detail(
        request, fresh, is_admin=ctx.is_admin, full=at_least(request, "2.75"),
        extended=at_least(request, "2.75") and allowed_rule(
            request, ctx, "os_compute_api:os-extended-server-attributes"),
        host_status=at_least(request, "2.75") and allowed_rule(
            request, ctx, "os_compute_api:servers:show:host_status"),
        extra_specs=at_least(request, "2.47") and allowed_rule(
            request, ctx, "os_compute_api:servers:show:flavor-extra-specs"),
        server_groups=at_least(request, "2.71"), show_user_data=False,
        keypair=at_least(request, "2.54") or at_least(request, "2.75"))
    if svc.conf.enable_instance_password:
        body["adminPass"] = password or creating.new_password()
    if at_least(request, "2.57"):
        body["user_data"] = fresh.row.user_data
    return JSONResponse({"server": body}, status_code=202,
                        headers={"Location": body["links"][0]["href"]})


@action("createImage", "os_compute_api:servers:create_image")
async def create_image(request: Request, ctx: RequestContext, rec: ServerRecord,
                       arg: Any) -> Response:
    if not isinstance(arg, dict):
        raise invalid("createImage", arg, "is not of type 'object'")
    no_extra(arg, {"name", "metadata"}, "createImage")
    name = required(arg, "name", "createImage")
    if not isinstance(name, str) or len(name) > 255 or not name.strip():
        raise invalid("name", name, "is not a valid image name")
    meta = metadata(arg.get("metadata", {}))
    svc = compute(request)
    image_id = await snapshotting.create_image(svc, ctx, rec.row.uuid, name.strip(), meta)
    if at_least(request, "2.45"):
        return JSONResponse({"image_id": image_id}, status_code=202)
    assert svc.images is not None
    return Response(status_code=202,
                    headers={"Location": await svc.images.public_url(image_id)})


@action("createBackup", "os_compute_api:os-create-backup")
async def create_backup(request: Request, ctx: RequestContext, rec: ServerRecord,
                        arg: Any) -> Response:
    if not isinstance(arg, dict):
        raise invalid("createBackup", arg, "is not of type 'object'")
    no_extra(arg, {"name", "backup_type", "rotation", "metadata"}, "createBackup")
    name = required(arg, "name", "createBackup")
    backup_type = required(arg, "backup_type", "createBackup")
    rotation = required(arg, "rotation", "createBackup")
    if not isinstance(name, str) or len(name) > 255 or not name.strip():
        raise invalid("name", name, "is not a valid image name")
    if not isinstance(backup_type, str) or not backup_type:
        raise invalid("backup_type", backup_type, "is not of type 'string'")
    if isinstance(rotation, str) and rotation.isdigit():
        rotation = int(rotation)
    if isinstance(rotation, bool) or not isinstance(rotation, int) or rotation < 0:
        raise invalid("rotation", rotation, "must be an integer >= 0")
    meta = metadata(arg.get("metadata", {}))
    svc = compute(request)
    image_id = await snapshotting.create_image(svc, ctx, rec.row.uuid, name.strip(), meta,
                                               backup_type=backup_type, rotation=rotation)
    if at_least(request, "2.45"):
        return JSONResponse({"image_id": image_id}, status_code=202)
    assert svc.images is not None
    return Response(status_code=202,
                    headers={"Location": await svc.images.public_url(image_id)})


@action("resize", "os_compute_api:servers:resize")
async def resize(request: Request, ctx: RequestContext, rec: ServerRecord,
                 arg: Any) -> Response:
    if not isinstance(arg, dict):
        raise invalid("resize", arg, "is not of type 'object'")
    no_extra(arg, {"flavorRef", "OS-DCF:diskConfig"}, "resize")
    flavor_ref = required(arg, "flavorRef", "resize")
    if isinstance(flavor_ref, bool) or not isinstance(flavor_ref, str | int) or \
            str(flavor_ref) == "":
        raise invalid("flavorRef", flavor_ref, "is not a valid flavor reference")
    disk = arg.get("OS-DCF:diskConfig")
    if disk is not None and disk not in ("AUTO", "MANUAL"):
        raise invalid("OS-DCF:diskConfig", disk, "is not one of ['AUTO', 'MANUAL']")
    await resizing.resize(compute(request), ctx, rec.row.uuid, str(flavor_ref),
                          None if disk is None else disk == "AUTO")
    return Response(status_code=202)


@action("confirmResize", "os_compute_api:servers:confirm_resize")
async def confirm_resize(request: Request, ctx: RequestContext, rec: ServerRecord,
                         arg: Any) -> Response:
    await resizing.confirm(compute(request), ctx, rec.row.uuid)
    return Response(status_code=204)


@action("revertResize", "os_compute_api:servers:revert_resize")
async def revert_resize(request: Request, ctx: RequestContext, rec: ServerRecord,
                        arg: Any) -> Response:
    await resizing.revert(compute(request), ctx, rec.row.uuid)
    return Response(status_code=202)
