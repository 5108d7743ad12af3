"""Remote consoles: ``POST /servers/{id}/remote-consoles`` (2.6+) and the older
``os-getVNCConsole`` / ``os-getSerialConsole`` actions.

Each answer carries a URL with a one-time token that expires after ``[console] token_ttl``
seconds (:mod:`stackling.compute.console.tokens`); the console proxy mounted at
``/console`` checks it. Before a token is issued the instance's agent must name the console
(a running VM on a driver that has one), else 409 as Nova's ``InstanceNotReady`` / 400 as
``ConsoleTypeUnavailable``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict, NotFound, StacklingError
from stackling.compute import states
from stackling.compute.api.common import caller, compute, json_body
from stackling.compute.api.server_actions import action
from stackling.compute.api.servers import load_authorized
from stackling.compute.console.tokens import ConsoleAuth, load_secret
from stackling.compute.service.instances import ServerRecord
from stackling.web.responses import JSONResponse
from stackling.web.urls import origin

router = APIRouter(prefix="/v2.1/servers")
RULE = "os_compute_api:os-remote-consoles"
#: protocol -> the console types Nova accepts for it; only these two are served here
TYPES = {"vnc": ("novnc", "xvpvnc"), "serial": ("serial",), "spice": ("spice-html5",),
         "rdp": ("rdp-html5",), "mks": ("webmks",)}
SERVED = {("vnc", "novnc"): ("novnc", "vnc"), ("serial", "serial"): ("serial", "serial")}
_auth: dict[Path, ConsoleAuth] = {}


def console_auth(request: Request) -> ConsoleAuth:
    config = compute(request).config
    auth = _auth.get(config.data_dir)
    if auth is None:
        auth = _auth[config.data_dir] = ConsoleAuth(load_secret(config.data_dir),
                                                    config.console.token_ttl)
    return auth


async def console_url(request: Request, rec: ServerRecord, protocol: str,
                      console_type: str) -> str:
    served = SERVED.get((protocol, console_type))
    if served is None:
        raise BadRequest(f"Unavailable console type {console_type}.")
    kind, socket_kind = served
    row = rec.row
    if row.host is None or row.vm_state != states.ACTIVE:
        raise Conflict(f"Instance {row.uuid} is not ready.")
    try:
        await compute(request).agents.get_console_connect(row.host, row.uuid, socket_kind)
    except NotFound:
        raise BadRequest(f"Unavailable console type {console_type}.") from None
    except StacklingError:
        raise Conflict(f"Instance {row.uuid} is not ready.") from None
    token = console_auth(request).issue(row.uuid, row.host, kind)
    config = compute(request).config
    base = (config.console.base_url or f"{origin(request)}/console").rstrip("/")
    if kind == "serial":
        ws = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{ws}/serial?token={token}"
    prefix = base.split("://", 1)[-1].partition("/")[2]
    path = f"{prefix}/websockify?token={token}".lstrip("/")
    return f"{base}/vnc_lite.html?path={quote(path, safe='')}"


@router.post("/{server_id}/remote-consoles")
async def create_remote_console(request: Request, server_id: str) -> JSONResponse:
    ctx = await caller(request)
    body = await json_body(request)
    spec = body.get("remote_console")
    if not isinstance(spec, dict) or set(spec) - {"protocol", "type"}:
        raise BadRequest("Invalid input for field/attribute remote_console.")
    protocol, console_type = spec.get("protocol"), spec.get("type")
    if protocol not in TYPES:
        raise BadRequest(f"Invalid input for field/attribute protocol. Value: {protocol}.")
    if console_type not in TYPES[str(protocol)]:
        raise BadRequest(f"Invalid input for field/attribute type. Value: {console_type}.")
    rec = await load_authorized(request, ctx, server_id, RULE)
    url = await console_url(request, rec, str(protocol), str(console_type))
    return JSONResponse({"remote_console": {"protocol": protocol, "type": console_type,
                                            "url": url}})


def _old_action(protocol: str, name: str) -> None:
    @action(name, RULE)
    async def handler(request: Request, ctx: RequestContext, rec: ServerRecord,
                      arg: Any) -> Response:
        console_type = arg.get("type") if isinstance(arg, dict) else None
        if console_type not in TYPES[protocol]:
            raise BadRequest(f"Invalid input for field/attribute type. Value: {console_type}.")
        url = await console_url(request, rec, protocol, str(console_type))
        return JSONResponse({"console": {"type": console_type, "url": url}})


_old_action("vnc", "os-getVNCConsole")
_old_action("serial", "os-getSerialConsole")
