"""Nova's deprecated floating-IP proxy (``/v2.1/os-floating-ips``,
``/v2.1/os-floating-ip-pools``, the addFloatingIp / removeFloatingIp actions), forwarded to
the network service with the caller's token.
A pool is an external network (by name or ID). Gone (404) from microversion 2.36 on."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.clients.network import Network, NetworkClient
from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stackling.compute.api.common import json_body
from stackling.compute.api.security_groups import network, start
from stackling.compute.service.instances import ServerRecord
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1")
RULE = "os_compute_api:os-floating-ips"
DEFAULT_POOL = "public"


async def _view(client: NetworkClient, ctx: RequestContext, fips: list[dict[str, Any]]
                ) -> list[dict[str, Any]]:
    nets = {n.id: n.name for n in await client.list_networks(token=ctx.token)}
    devices: dict[str, str] = {}
    port_ids = {f["port_id"] for f in fips if f.get("port_id")}
    if port_ids:
        devices = {p.id: p.device_id for p in await client.list_ports(id=sorted(port_ids))}
    out = []
    for fip in fips:
        port_id = fip.get("port_id")
        out.append({"id": fip["id"], "ip": fip.get("floating_ip_address"),
                    "fixed_ip": fip.get("fixed_ip_address"),
                    "instance_id": (devices.get(port_id) or None) if port_id else None,
                    "pool": nets.get(fip.get("floating_network_id") or "",
                                     fip.get("floating_network_id"))})
    return out


async def _fip(client: NetworkClient, ctx: RequestContext, fip_id: str) -> dict[str, Any]:
    try:
        return await client.get_floating_ip(fip_id, token=ctx.token)
    except NotFound:
        raise NotFound(f"Floating IP not found for ID {fip_id}") from None


@router.get("/os-floating-ips")
async def list_fips(request: Request) -> JSONResponse:
    ctx, client = await start(request, f"{RULE}:list")
    fips = await client.list_floating_ips(token=ctx.token, project_id=ctx.project_id)
    return JSONResponse({"floating_ips": await _view(client, ctx, fips)})


@router.get("/os-floating-ips/{fip_id}")
async def show_fip(request: Request, fip_id: str) -> JSONResponse:
    ctx, client = await start(request, f"{RULE}:show")
    fip = await _fip(client, ctx, fip_id)
    return JSONResponse({"floating_ip": (await _view(client, ctx, [fip]))[0]})


async def _pool(client: NetworkClient, ctx: RequestContext, pool: str) -> Network:
    external = await client.list_networks(token=ctx.token, **{"router:external": True})
    for match in ([n for n in external if n.name == pool], [n for n in external
                                                            if n.id == pool]):
        if len(match) > 1:
            raise Conflict(f"Multiple floating IP pools match for name '{pool}'")
        if match:
            return match[0]
    raise NotFound("Floating IP pool not found.")


@router.post("/os-floating-ips")
async def allocate(request: Request) -> JSONResponse:
    ctx, client = await start(request, f"{RULE}:create")
    raw = await request.body()
    body = await json_body(request) if raw.strip() else {}
    pool_name = body.get("pool") if isinstance(body, dict) else None
    if pool_name is not None and not isinstance(pool_name, str):
        raise BadRequest("Invalid input for field/attribute pool.")
    pool = await _pool(client, ctx, pool_name or DEFAULT_POOL)
    try:
        fip = await client.create_floating_ip({"floating_network_id": pool.id},
                                              token=ctx.token)
    except Conflict:
        raise NotFound(f"No more floating IPs in pool {pool.name}.") from None
    except (Forbidden, BadRequest) as exc:
        if "quota" in exc.message.lower():
            raise Forbidden("Maximum number of floating IPs exceeded") from None
        raise
    return JSONResponse({"floating_ip": (await _view(client, ctx, [fip]))[0]})


@router.delete("/os-floating-ips/{fip_id}")
async def release(request: Request, fip_id: str) -> Response:
    ctx, client = await start(request, f"{RULE}:delete")
    await _fip(client, ctx, fip_id)
    await client.delete_floating_ip(fip_id, token=ctx.token)
    return Response(status_code=202)


@router.get("/os-floating-ip-pools")
async def pools(request: Request) -> JSONResponse:
    ctx, client = await start(request, "os_compute_api:os-floating-ip-pools:list")
    external = await client.list_networks(token=ctx.token, **{"router:external": True})
    return JSONResponse({"floating_ip_pools": [{"name": n.name} for n in external]})


async def _by_address(client: NetworkClient, ctx: RequestContext,
                      address: str) -> dict[str, Any]:
    found = await client.list_floating_ips(token=ctx.token, floating_ip_address=address)
    if not found:
        raise NotFound(f"Floating IP not found for address {address}.")
    return found[0]


def _address(arg: Any, action: str) -> str:
    if not isinstance(arg, dict) or "address" not in arg:
        raise BadRequest(f"Invalid input for field/attribute {action}. Value: {arg}. "
                         "'address' is a required property")
    address = arg["address"]
    try:
        ipaddress.ip_address(str(address))
    except ValueError:
        raise BadRequest(f"Invalid input for field/attribute address. Value: {address}. "
                         f"'{address}' is not a 'ipv4'") from None
    return str(address)


async def add_floating_ip(request: Request, ctx: RequestContext, rec: ServerRecord,
                          arg: Any) -> Response:
    client = await network(request)
    address = _address(arg, "addFloatingIp")
    fixed = arg.get("fixed_address")
    ports = await client.list_ports(device_id=rec.row.uuid)
    pairs = [(p, f["ip_address"]) for p in ports for f in p.fixed_ips]
    if not pairs:
        raise BadRequest("No fixed IPs associated to instance")
    if fixed is not None:
        pairs = [(p, ip) for p, ip in pairs if ip == fixed]
        if not pairs:
            raise BadRequest("Specified fixed address not assigned to instance")
    else:
        v4 = [(p, ip) for p, ip in pairs if ipaddress.ip_address(ip).version == 4]
        if not v4:
            raise BadRequest("Unable to associate floating IP "
                             f"{address} to any fixed IPs for instance {rec.row.uuid}. "
                             "Instance has no fixed IPv4 addresses to associate.")
        pairs = v4
    port, ip = pairs[0]
    fip = await _by_address(client, ctx, address)
    try:
        await client.update_floating_ip(fip["id"], {"port_id": port.id,
                                                    "fixed_ip_address": ip},
                                        token=ctx.token)
    except (NotFound, Conflict) as exc:
        raise BadRequest(f"Unable to associate floating IP {address} to fixed IP {ip} "
                         f"for instance {rec.row.uuid}. Error: {exc.message}") from None
    return Response(status_code=202)


async def remove_floating_ip(request: Request, ctx: RequestContext, rec: ServerRecord,
                             arg: Any) -> Response:
    client = await network(request)
    address = _address(arg, "removeFloatingIp")
    fip = await _by_address(client, ctx, address)
    port_id = fip.get("port_id")
    if not port_id:
        raise BadRequest("Floating IP is not associated")
    ports = {p.id for p in await client.list_ports(device_id=rec.row.uuid)}
    if port_id not in ports:
        raise Conflict(f"Floating IP {address} is not associated with instance "
                       f"{rec.row.uuid}.")
    await client.update_floating_ip(fip["id"], {"port_id": None}, token=ctx.token)
    return Response(status_code=202)
