"""``/v2.1/os-networks`` (the nova-network era proxy, removed in 2.36): list and show the
networks the caller sees in the network service, with the caller's token; an empty list when
the cloud has no network service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from stackling.clients.network import Network
from stackling.common.errors import NotFound
from stackling.compute.api.common import caller
from stackling.compute.api.microversion import at_least
from stackling.compute.api.security_groups import present, start
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1")


def _network_view(net: Network, admin: bool) -> dict[str, Any]:
    fields = ("cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "cidr_v6",
              "gateway_v6", "netmask_v6")
    admin_fields = ("created_at", "updated_at", "deleted_at", "deleted", "injected",
                    "bridge", "vlan", "vpn_public_address", "vpn_public_port",
                    "vpn_private_address", "dhcp_start", "project_id", "host",
                    "bridge_interface", "multi_host", "priority", "rxtx_base", "mtu",
                    "dhcp_server", "enable_dhcp", "share_address")
    out: dict[str, Any] = {"id": net.id, "label": net.name}
    for name in fields + (admin_fields if admin else ()):
        out[name] = None
    if admin:
        out["mtu"] = net.mtu
        out["project_id"] = net.project_id
    return out


@router.get("/os-networks")
async def list_networks(request: Request) -> JSONResponse:
    if not at_least(request, "2.36") and await present(request) is None:
        await caller(request)
        return JSONResponse({"networks": []})  # no network service: nothing to show
    ctx, client = await start(request, "os_compute_api:os-networks:list")
    nets = await client.list_networks(token=ctx.token)
    return JSONResponse({"networks": [_network_view(n, ctx.is_admin) for n in nets]})


@router.get("/os-networks/{network_id}")
async def show_network(request: Request, network_id: str) -> JSONResponse:
    ctx, client = await start(request, "os_compute_api:os-networks:view")
    try:
        net = await client.get_network(network_id, token=ctx.token)
    except NotFound:
        raise NotFound("Network not found") from None
    return JSONResponse({"network": _network_view(net, ctx.is_admin)})


def _tenant_network_view(net: Network) -> dict[str, Any]:
    # Nova renders str(network.get("cidr")) of a Neutron network, which has none: "None"
    return {"id": net.id, "label": net.name, "cidr": "None"}


@router.get("/os-tenant-networks")
async def list_tenant_networks(request: Request) -> JSONResponse:
    """The networks the project sees (its own, shared and external), until 2.36."""
    if at_least(request, "2.36"):
        raise NotFound("The resource could not be found.")
    if await present(request) is None:
        await caller(request)
        return JSONResponse({"networks": []})  # no network service: nothing to show
    ctx, client = await start(request, "os_compute_api:os-tenant-networks:list")
    nets = await client.list_networks(token=ctx.token)
    return JSONResponse({"networks": [_tenant_network_view(n) for n in nets]})


@router.get("/os-tenant-networks/{network_id}")
async def show_tenant_network(request: Request, network_id: str) -> JSONResponse:
    if at_least(request, "2.36"):
        raise NotFound("The resource could not be found.")
    ctx, client = await start(request, "os_compute_api:os-tenant-networks:view")
    try:
        net = await client.get_network(network_id, token=ctx.token)
    except NotFound:
        raise NotFound("Network not found") from None
    return JSONResponse({"network": _tenant_network_view(net)})
