"""``/servers/{id}/os-interface``: the server's ports (list, show), hot-plug one more
(attach: an existing port of the caller, or a new one on a network, optionally with a fixed
IP) and unplug one (detach: a port compute made is deleted, the caller's is given back)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.clients.network import NetworkClient, Port
from stackling.common.errors import BadRequest, NotFound
from stackling.compute import states
from stackling.compute.api.common import authorize, caller, compute, invalid, json_body, obj
from stackling.compute.api.microversion import at_least
from stackling.compute.api.servers import load
from stackling.compute.service import requested_networks
from stackling.compute.service.instances import invalid_state
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/servers/{server_id}/os-interface")

# the states attach and detach accept (Nova's check_instance_state for them)
_STATES = (states.ACTIVE, states.PAUSED, states.STOPPED, states.SUSPENDED)


def _view(request: Request, port: dict[str, Any]) -> dict[str, Any]:
    view = {"net_id": port.get("network_id"), "port_id": port.get("id"),
            "mac_addr": port.get("mac_address"), "port_state": port.get("status"),
            "fixed_ips": [{"subnet_id": f.get("subnet_id"), "ip_address": f.get("ip_address")}
                          for f in port.get("fixed_ips") or []]}
    if at_least(request, "2.70"):
        view["tag"] = None
    return view


def _network(request: Request) -> NetworkClient:
    client = compute(request).network
    if client is None:
        raise BadRequest("This cloud has no network service.")
    return client


async def _ports(request: Request, server_id: str) -> list[Port]:
    return await _network(request).list_ports(device_id=server_id)


@router.get("")
async def list_interfaces(request: Request, server_id: str) -> JSONResponse:
    ctx = await caller(request)
    rec = await load(request, ctx, server_id)
    authorize(request, ctx, "os_compute_api:os-attach-interfaces:list",
              {"project_id": rec.row.project_id})
    ports = await _ports(request, rec.row.uuid)
    return JSONResponse({"interfaceAttachments": [_view(request, p.raw) for p in ports]})


@router.get("/{port_id}")
async def show_interface(request: Request, server_id: str, port_id: str) -> JSONResponse:
    ctx = await caller(request)
    rec = await load(request, ctx, server_id)
    authorize(request, ctx, "os_compute_api:os-attach-interfaces:show",
              {"project_id": rec.row.project_id})
    for port in await _ports(request, rec.row.uuid):
        if port.id == port_id:
            return JSONResponse({"interfaceAttachment": _view(request, port.raw)})
    raise NotFound(f"Instance {server_id} does not have an interface attached to port "
                   f"{port_id}.")


@router.post("")
async def attach_interface(request: Request, server_id: str) -> JSONResponse:
    ctx = await caller(request)
    rec = await load(request, ctx, server_id)
    authorize(request, ctx, "os_compute_api:os-attach-interfaces:create",
              {"project_id": rec.row.project_id})
    body = await json_body(request)
    att = obj(body, "interfaceAttachment") if "interfaceAttachment" in body else {}
    allowed = {"net_id", "port_id", "fixed_ips"} | ({"tag"} if at_least(request, "2.49")
                                                     else set())
    extra = set(att) - allowed
    if extra:
        raise invalid("interfaceAttachment", att, "Additional properties are not allowed "
                      f"({', '.join(sorted(repr(k) for k in extra))} were unexpected)")
    net_id, port_id = att.get("net_id"), att.get("port_id")
    fixed = att.get("fixed_ips") or []
    if net_id and port_id:
        raise BadRequest("Must not input both network_id and port_id")
    if fixed and not net_id:
        raise BadRequest("Must input network_id when request IP address")
    if not isinstance(fixed, list) or len(fixed) > 1 or any(
            not isinstance(f, dict) or "ip_address" not in f for f in fixed):
        raise invalid("fixed_ips", fixed, "must be a list of one {'ip_address': ...}")
    row = rec.row
    if row.vm_state not in _STATES or row.task_state is not None:
        raise invalid_state(row, "attach_interface")
    if row.host is None:
        raise invalid_state(row, "attach_interface")
    _network(request)
    if net_id or port_id:
        item: dict[str, Any] = {"uuid": net_id} if net_id else {"port": port_id}
        if fixed:
            item["fixed_ip"] = fixed[0]["ip_address"]
        if att.get("tag"):
            item["tag"] = att["tag"]
        wanted = await requested_networks.resolve(compute(request).network, ctx, [item], 1)
    else:
        wanted = await requested_networks.resolve(compute(request).network, ctx, "auto", 1)
    port = await compute(request).agents.attach_interface(row.host, row.uuid, wanted[0],
                                                          ctx.request_id)
    return JSONResponse({"interfaceAttachment": _view(request, port)})


@router.delete("/{port_id}")
async def detach_interface(request: Request, server_id: str, port_id: str) -> Response:
    ctx = await caller(request)
    rec = await load(request, ctx, server_id)
    authorize(request, ctx, "os_compute_api:os-attach-interfaces:delete",
              {"project_id": rec.row.project_id})
    row = rec.row
    if row.vm_state not in _STATES or row.task_state is not None or row.host is None:
        raise invalid_state(row, "detach_interface")
    if port_id not in {p.id for p in await _ports(request, row.uuid)}:
        raise NotFound(f"Port {port_id} is not attached")
    await compute(request).agents.detach_interface(row.host, row.uuid, port_id,
                                                   ctx.request_id)
    return Response(status_code=202)
