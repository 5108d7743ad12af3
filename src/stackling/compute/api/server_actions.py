"""``POST /v2.1/servers/{id}/action``: os-stop, os-start, reboot, pause, unpause, suspend,
resume, lock, unlock, os-getConsoleOutput. Each state change is a compare-and-swap in the
service layer: a conflicting second action gets 409."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest
from stackling.compute.api.common import authorize, caller, compute, invalid, json_body
from stackling.compute.api.microversion import at_least
from stackling.compute.api.servers import load
from stackling.compute.service import actions
from stackling.compute.service.instances import ServerRecord

router = APIRouter(prefix="/v2.1/servers")

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
        raise BadRequest(f"There is no such action: {name}")
    rule, handler = entry
    rec = await load(request, ctx, server_id)
    authorize(request, ctx, rule, {"project_id": rec.row.project_id,
                                   "user_id": rec.row.user_id})
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
        if not isinstance(arg, dict) or not at_least(request, "2.73") or (
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
