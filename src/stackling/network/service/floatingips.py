"""Floating IPs: an address (held by a ``network:floatingip`` port) on an external network,
associated with a port's fixed IPv4 address through the router that joins the port's subnet
to that external network."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import Conflict
from stackling.common.ids import new_uuid
from stackling.network import ipam
from stackling.network.errors import (
    NeutronBadRequest,
    NeutronConflict,
    NeutronForbidden,
    NeutronNotFound,
    not_found,
)
from stackling.network.models import FloatingIP, IPAllocation, Port, Router, Subnet, Tag
from stackling.network.service import allocation, ports, views
from stackling.network.service.common import (
    check_quota,
    get_network,
    owner_of,
    owns,
    string,
    touch,
    unknown_keys,
)
from stackling.network.service.core import NetworkService

FIP_OWNER = "network:floatingip"
KEYS = {"floating_network_id", "floating_ip_address", "subnet_id", "port_id",
        "fixed_ip_address", "description", "tenant_id", "project_id", "tags",
        "dns_name", "dns_domain", "qos_policy_id"}


async def view(session: AsyncSession, rows: list[FloatingIP]) -> list[dict[str, Any]]:
    tags = await views.tags_of(session, [r.id for r in rows])
    out = []
    for row in rows:
        details = None
        if row.fixed_port_id:
            port = await session.get(Port, row.fixed_port_id)
            if port is not None:
                details = {"name": port.name, "network_id": port.network_id,
                           "mac_address": port.mac_address,
                           "admin_state_up": port.admin_state_up, "status": port.status,
                           "device_id": port.device_id, "device_owner": port.device_owner}
        out.append(views.floating_ip(row, tags[row.id], details))
    return out


async def get(session: AsyncSession, ctx: RequestContext, ident: str) -> FloatingIP:
    row = await session.get(FloatingIP, ident)
    if row is None or not owns(ctx, row.project_id):
        raise not_found("floatingip", ident)
    return row


async def list_fips(svc: NetworkService, ctx: RequestContext) -> list[dict[str, Any]]:
    async with svc.store.read() as session:
        query = select(FloatingIP).order_by(FloatingIP.created_at, FloatingIP.id)
        if not ctx.is_admin:
            query = query.where(FloatingIP.project_id == ctx.project_id)
        return await view(session, list((await session.execute(query)).scalars()))


async def show(svc: NetworkService, ctx: RequestContext, ident: str) -> dict[str, Any]:
    async with svc.store.read() as session:
        return (await view(session, [await get(session, ctx, ident)]))[0]


async def _router_for(session: AsyncSession, fip: FloatingIP, subnet: Subnet) -> str:
    """The router with a gateway on the floating network and an interface on ``subnet``."""
    query = select(Port.device_id).join(IPAllocation, IPAllocation.port_id == Port.id).where(
        IPAllocation.subnet_id == subnet.id, Port.device_owner == "network:router_interface")
    for router_id in (await session.execute(query)).scalars():
        router = await session.get(Router, router_id)
        if router is None or router.gw_port_id is None:
            continue
        gw = await session.get(Port, router.gw_port_id)
        if gw is not None and gw.network_id == fip.floating_network_id:
            return router.id
    raise NeutronNotFound(f"External network {fip.floating_network_id} is not reachable from "
                          f"subnet {subnet.id}.  Therefore, cannot associate Port "
                          f"{fip.fixed_port_id} with a Floating IP.",
                          "ExternalGatewayForFloatingIPNotFound")


async def _associate(session: AsyncSession, ctx: RequestContext, fip: FloatingIP,
                     port_id: Any, fixed_ip: Any) -> None:
    if port_id is None:
        fip.fixed_port_id = fip.fixed_ip_address = fip.router_id = None
        fip.status = "DOWN"
        return
    port = await ports.get(session, ctx, str(port_id))
    if not ctx.is_admin and port.project_id != fip.project_id:
        raise not_found("port", str(port_id))
    ips = [a for a in (await allocation.allocations(session, [port.id]))[port.id]
           if ":" not in a.ip_address]
    if fixed_ip is not None:
        ips = [a for a in ips if a.ip_address == str(ipam.parse_ip(fixed_ip,
                                                                    "fixed_ip_address"))]
        if not ips:
            raise NeutronBadRequest(f"Bad floatingip request: Port {port.id} does not have "
                                    f"fixed ip {fixed_ip}.", "BadRequest")
    if not ips:
        raise NeutronBadRequest(f"Bad floatingip request: Port {port.id} does not have any "
                                "IPv4 fixed IPs.", "BadRequest")
    if len(ips) > 1 and fixed_ip is None:
        raise NeutronBadRequest(f"Bad floatingip request: Port {port.id} has multiple fixed "
                                "IPv4 addresses.  Must provide a specific IPv4 address when "
                                "assigning a floating IP.", "BadRequest")
    chosen = ips[0]
    other = (await session.execute(select(FloatingIP.id).where(
        FloatingIP.fixed_port_id == port.id, FloatingIP.fixed_ip_address == chosen.ip_address,
        FloatingIP.id != fip.id))).first()
    if other:
        raise NeutronConflict(f"Cannot associate floating IP {fip.floating_ip_address} "
                              f"({fip.id}) with port {port.id} using fixed IP "
                              f"{chosen.ip_address}, as that fixed IP already has a floating "
                              f"IP on external network {fip.floating_network_id}.",
                              "FloatingIPPortAlreadyAssociated")
    subnet = await session.get(Subnet, chosen.subnet_id)
    assert subnet is not None
    fip.fixed_port_id = port.id
    fip.router_id = await _router_for(session, fip, subnet)
    fip.fixed_ip_address = chosen.ip_address
    fip.status = "ACTIVE"


async def create(svc: NetworkService, ctx: RequestContext,
                 body: dict[str, Any]) -> dict[str, Any]:
    unknown_keys(body, KEYS, "floatingip")
    if "floating_ip_address" in body and not svc.allowed(
            ctx, "create_floatingip:floating_ip_address"):
        forbid_address()
    net_id = body.get("floating_network_id")
    if not isinstance(net_id, str):
        raise NeutronBadRequest("Failed to parse request. Required attribute "
                                "'floating_network_id' not specified", "HTTPBadRequest")
    project = owner_of(ctx, body)
    for attempt in range(5):
        try:
            async with svc.write() as session:
                network = await get_network(session, net_id, ctx)
                if not network.external:
                    raise NeutronBadRequest(f"Bad floatingip request: Network {net_id} is "
                                            "not a valid external network.", "BadRequest")
                await check_quota(session, svc, project, "floatingip")
                fip_id = new_uuid()
                port = Port(id=new_uuid(), project_id="", network_id=net_id,
                            mac_address=await allocation.new_mac(session, net_id,
                                                                 svc.conf.base_mac),
                            device_owner=FIP_OWNER, device_id=fip_id,
                            port_security_enabled=False, security_group_ids=[], status="N/A")
                session.add(port)
                await session.flush()
                request: list[dict[str, str]] | None = None
                if body.get("floating_ip_address") is not None or body.get("subnet_id"):
                    item: dict[str, str] = {}
                    if body.get("floating_ip_address") is not None:
                        item["ip_address"] = str(body["floating_ip_address"])
                    if body.get("subnet_id"):
                        item["subnet_id"] = str(body["subnet_id"])
                    request = [item]
                await allocation.allocate(session, port, network, request)
                v4 = [a for a in (await allocation.allocations(session, [port.id]))[port.id]
                      if ":" not in a.ip_address]
                if not v4:
                    raise NeutronBadRequest(f"Bad floatingip request: Network {net_id} has "
                                            "no IPv4 subnet.", "BadRequest")
                fip = FloatingIP(id=fip_id, project_id=project, floating_network_id=net_id,
                                 floating_port_id=port.id,
                                 floating_ip_address=v4[0].ip_address,
                                 description=string(body.get("description", ""),
                                                    "description"))
                session.add(fip)
                await _associate(session, ctx, fip, body.get("port_id"),
                                 body.get("fixed_ip_address"))
                for tag in body.get("tags") or []:
                    session.add(Tag(resource_id=fip.id, tag=string(tag, "tags")))
                await session.flush()
                return (await view(session, [fip]))[0]
        except Conflict as exc:
            if type(exc) is not Conflict or attempt == 4:
                raise
    raise AssertionError("unreachable")


async def update(svc: NetworkService, ctx: RequestContext, ident: str,
                 body: dict[str, Any]) -> dict[str, Any]:
    unknown_keys(body, {"port_id", "fixed_ip_address", "description", "dns_name",
                        "qos_policy_id"}, "floatingip")
    async with svc.write() as session:
        fip = await get(session, ctx, ident)
        if "description" in body:
            fip.description = string(body["description"], "description")
        if "port_id" in body:
            await _associate(session, ctx, fip, body["port_id"], body.get("fixed_ip_address"))
        elif "fixed_ip_address" in body:
            raise NeutronBadRequest("fixed_ip_address cannot be specified without a port_id",
                                    "BadRequest")
        touch(fip)
        await session.flush()
        return (await view(session, [fip]))[0]


async def delete_fip(svc: NetworkService, ctx: RequestContext, ident: str) -> None:
    async with svc.write() as session:
        fip = await get(session, ctx, ident)
        port = await session.get(Port, fip.floating_port_id)
        if port is not None:
            await ports.remove(session, port)
        await session.execute(delete(Tag).where(Tag.resource_id == ident))
        await session.delete(fip)


def forbid_address() -> None:
    raise NeutronForbidden("(rule:create_floatingip:floating_ip_address) is disallowed "
                               "by policy")
