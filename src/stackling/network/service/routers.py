"""Routers: the external gateway (a port on an external network, SNAT on or off, chosen
external fixed IPs), interfaces added and removed by subnet or by port, and static routes
(``extraroute``)."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.ids import new_uuid
from stackling.network import ipam
from stackling.network.errors import (
    NeutronBadRequest,
    NeutronConflict,
    NeutronForbidden,
    NeutronNotFound,
    bad_attr,
    not_found,
)
from stackling.network.models import FloatingIP, IPAllocation, Network, Port, Router, Subnet, Tag
from stackling.network.service import allocation, ports, views
from stackling.network.service.common import (
    boolean,
    check_quota,
    get_network,
    owner_of,
    owns,
    string,
    touch,
    unknown_keys,
)
from stackling.network.service.core import NetworkService

GW_OWNER = "network:router_gateway"
IF_OWNER = "network:router_interface"
KEYS = {"name", "description", "admin_state_up", "external_gateway_info", "tenant_id",
        "project_id", "routes", "distributed", "ha", "availability_zone_hints", "tags",
        "flavor_id"}


async def _gateway_view(session: AsyncSession, row: Router) -> dict[str, Any] | None:
    if row.gw_port_id is None:
        return None
    port = await session.get(Port, row.gw_port_id)
    if port is None:
        return None
    ips = (await allocation.allocations(session, [port.id]))[port.id]
    return {"network_id": port.network_id, "enable_snat": row.enable_snat,
            "external_fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                                   for a in ips]}


async def view(session: AsyncSession, rows: list[Router]) -> list[dict[str, Any]]:
    tags = await views.tags_of(session, [r.id for r in rows])
    return [views.router(r, await _gateway_view(session, r), tags[r.id]) for r in rows]


async def get(session: AsyncSession, ctx: RequestContext, ident: str) -> Router:
    row = await session.get(Router, ident)
    if row is None or not owns(ctx, row.project_id):
        raise not_found("router", ident)
    return row


async def list_routers(svc: NetworkService, ctx: RequestContext) -> list[dict[str, Any]]:
    async with svc.store.read() as session:
        query = select(Router).order_by(Router.created_at, Router.id)
        if not ctx.is_admin:
            query = query.where(Router.project_id == ctx.project_id)
        return await view(session, list((await session.execute(query)).scalars()))


async def show(svc: NetworkService, ctx: RequestContext, ident: str) -> dict[str, Any]:
    async with svc.store.read() as session:
        return (await view(session, [await get(session, ctx, ident)]))[0]


async def _set_gateway(svc: NetworkService, ctx: RequestContext, session: AsyncSession,
                       row: Router, info: Any, action: str) -> None:
    if info is None or info == {}:
        await _clear_gateway(session, row)
        return
    if not isinstance(info, dict) or set(info) - {"network_id", "enable_snat",
                                                   "external_fixed_ips", "qos_policy_id"}:
        raise bad_attr("external_gateway_info", f"'{info}' is not a valid gateway")
    for key in ("enable_snat", "external_fixed_ips"):
        if key in info and not svc.allowed(ctx, f"{action}:external_gateway_info:{key}"):
            raise NeutronForbidden(f"(rule:{action}:external_gateway_info:{key}) is "
                                       "disallowed by policy")
    net_id = info.get("network_id")
    if not isinstance(net_id, str):
        raise bad_attr("external_gateway_info", "network_id is required")
    network = await get_network(session, net_id, ctx)
    if not network.external:
        raise NeutronBadRequest(f"Bad router request: Network {net_id} is not an external "
                                "network.", "BadRequest")
    snat = boolean(info.get("enable_snat", True), "enable_snat")
    current = await session.get(Port, row.gw_port_id) if row.gw_port_id else None
    fixed = info.get("external_fixed_ips")
    if current is not None and current.network_id == net_id:
        if fixed is not None:
            have = (await allocation.allocations(session, [current.id]))[current.id]
            await allocation.allocate(session, current, network, fixed, keep=have)
        row.enable_snat = snat
        return
    if current is not None:
        await _clear_gateway(session, row)
    port = Port(id=new_uuid(), project_id="", network_id=net_id,
                mac_address=await allocation.new_mac(session, net_id, svc.conf.base_mac),
                device_owner=GW_OWNER, device_id=row.id, port_security_enabled=False,
                security_group_ids=[], status="DOWN")
    session.add(port)
    await session.flush()
    await allocation.allocate(session, port, network, fixed)
    if not (await allocation.allocations(session, [port.id]))[port.id]:
        raise NeutronBadRequest(f"Bad router request: No subnets on external network "
                                f"{net_id}.", "BadRequest")
    row.gw_port_id = port.id
    row.enable_snat = snat


async def _clear_gateway(session: AsyncSession, row: Router) -> None:
    if row.gw_port_id is None:
        return
    used = (await session.execute(select(FloatingIP.id).where(
        FloatingIP.router_id == row.id))).first()
    if used:
        raise NeutronConflict(f"Gateway cannot be updated for router {row.id}, since a "
                              "gateway to external network is required by one or more "
                              "floating IPs.", "RouterExternalGatewayInUseByFloatingIp")
    port = await session.get(Port, row.gw_port_id)
    row.gw_port_id = None
    if port is not None:
        await ports.remove(session, port)


async def create(svc: NetworkService, ctx: RequestContext,
                 body: dict[str, Any]) -> dict[str, Any]:
    unknown_keys(body, KEYS, "router")
    for key in ("distributed", "ha"):
        if body.get(key):
            raise NeutronBadRequest(f"{key} routers are not supported.", "HTTPBadRequest")
    project = owner_of(ctx, body)
    async with svc.write() as session:
        await check_quota(session, svc, project, "router")
        row = Router(id=new_uuid(), project_id=project,
                     name=string(body.get("name", ""), "name"),
                     description=string(body.get("description", ""), "description"),
                     admin_state_up=boolean(body.get("admin_state_up", True),
                                            "admin_state_up"),
                     availability_zone_hints=body.get("availability_zone_hints") or [])
        session.add(row)
        await session.flush()
        if body.get("external_gateway_info"):
            await _set_gateway(svc, ctx, session, row, body["external_gateway_info"],
                               "create_router")
        for tag in body.get("tags") or []:
            session.add(Tag(resource_id=row.id, tag=string(tag, "tags")))
        await session.flush()
        return (await view(session, [row]))[0]


async def _interface_subnets(session: AsyncSession, router_id: str) -> list[Subnet]:
    query = select(Subnet).join(IPAllocation, IPAllocation.subnet_id == Subnet.id).join(
        Port, Port.id == IPAllocation.port_id).where(Port.device_id == router_id,
                                                    Port.device_owner == IF_OWNER)
    return list((await session.execute(query)).scalars())


def _routes(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise bad_attr("routes", f"'{raw}' is not a list")
    out: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
            raise bad_attr("routes", f"'{item}' is not a valid route")
        try:
            dest = str(ipaddress.ip_network(str(item["destination"]), strict=False))
        except ValueError:
            raise bad_attr("routes", f"'{item['destination']}' is not a valid IP subnet"
                           ) from None
        hop = str(ipam.parse_ip(item["nexthop"], "routes"))
        route = {"destination": dest, "nexthop": hop}
        if route not in out:
            out.append(route)
    return out


async def update(svc: NetworkService, ctx: RequestContext, ident: str,
                 body: dict[str, Any]) -> dict[str, Any]:
    unknown_keys(body, KEYS - {"tenant_id", "project_id", "tags"}, "router")
    async with svc.write() as session:
        row = await get(session, ctx, ident)
        for key in ("name", "description"):
            if key in body:
                setattr(row, key, string(body[key], key))
        if "admin_state_up" in body:
            row.admin_state_up = boolean(body["admin_state_up"], "admin_state_up")
        if "external_gateway_info" in body:
            await _set_gateway(svc, ctx, session, row, body["external_gateway_info"],
                               "update_router")
        if "routes" in body:
            routes = _routes(body["routes"] or [])
            subnets = await _interface_subnets(session, ident)
            gw = await session.get(Port, row.gw_port_id) if row.gw_port_id else None
            if gw is not None:
                gw_subnets = [a.subnet_id for a in (await allocation.allocations(
                    session, [gw.id]))[gw.id]]
                for sid in gw_subnets:
                    sub = await session.get(Subnet, sid)
                    if sub is not None:
                        subnets.append(sub)
            for route in routes:
                if not any(ipam.contains(s.cidr, route["nexthop"]) for s in subnets):
                    raise NeutronBadRequest(f"Invalid format for routes: {[route]}, the "
                                            f"nexthop is not connected with router",
                                            "InvalidRoutes")
            row.routes = routes
        if body.get("distributed") or body.get("ha"):
            raise NeutronBadRequest("distributed and ha routers are not supported.",
                                    "HTTPBadRequest")
        touch(row)
        await session.flush()
        return (await view(session, [row]))[0]


async def delete_router(svc: NetworkService, ctx: RequestContext, ident: str) -> None:
    async with svc.write() as session:
        row = await get(session, ctx, ident)
        interfaces = (await session.execute(select(Port.id).where(
            Port.device_id == ident, Port.device_owner == IF_OWNER))).first()
        if interfaces:
            raise NeutronConflict(f"Router {ident} still has ports", "RouterInUse")
        used = (await session.execute(select(FloatingIP.id).where(
            FloatingIP.router_id == ident))).first()
        if used:
            raise NeutronConflict(f"Router {ident} still has ports", "RouterInUse")
        await _clear_gateway(session, row)
        await session.delete(row)


def _interface_missing(router_id: str, kind: str, ident: str) -> NeutronNotFound:
    if kind == "port":
        return NeutronNotFound(f"Router {router_id} does not have an interface with id "
                               f"{ident}", "RouterInterfaceNotFound")
    return NeutronNotFound(f"Router {router_id} has no interface on subnet {ident}",
                           "RouterInterfaceNotFoundForSubnet")


def _interface_info(row: Router, port: Port, subnet_ids: list[str]) -> dict[str, Any]:
    return {"id": row.id, "tenant_id": row.project_id, "project_id": row.project_id,
            "port_id": port.id, "network_id": port.network_id,
            "subnet_id": subnet_ids[0] if subnet_ids else None, "subnet_ids": subnet_ids}


async def add_interface(svc: NetworkService, ctx: RequestContext, ident: str,
                        body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body, dict) or ("subnet_id" in body) == ("port_id" in body) or set(
            body) - {"subnet_id", "port_id"}:
        raise NeutronBadRequest("Bad router request: Either subnet_id or port_id must be "
                                "specified.", "BadRequest")
    async with svc.write() as session:
        row = await get(session, ctx, ident)
        attached = await _interface_subnets(session, ident)
        if "port_id" in body:
            port = await ports.get(session, ctx, str(body["port_id"]))
            if port.device_id or port.device_owner:
                raise NeutronConflict(f"Port {port.id} has owner {port.device_owner or 'a'} "
                                      f"and therefore cannot be attached.", "PortInUse")
            ips = (await allocation.allocations(session, [port.id]))[port.id]
            if not ips:
                raise NeutronBadRequest("Bad router request: Router port must have at least "
                                        "one fixed IP.", "BadRequest")
            subnet_ids = [a.subnet_id for a in ips]
            await _check_attachable(session, attached, subnet_ids)
            port.device_owner, port.device_id = IF_OWNER, ident
            port.security_group_ids = []
            touch(port)
        else:
            subnet = await session.get(Subnet, str(body["subnet_id"]))
            if subnet is None or (not owns(ctx, subnet.project_id) and not ctx.is_admin):
                net = await session.get(Network, subnet.network_id) if subnet else None
                if subnet is None or net is None or not (owns(ctx, net.project_id)
                                                         or net.shared):
                    raise not_found("subnet", str(body["subnet_id"]))
            if not subnet.gateway_ip:
                raise NeutronBadRequest(f"Bad router request: Subnet {subnet.id} does not "
                                        "have a gateway IP.", "BadRequest")
            await _check_attachable(session, attached, [subnet.id])
            port = Port(id=new_uuid(), project_id=row.project_id,
                        network_id=subnet.network_id,
                        mac_address=await allocation.new_mac(session, subnet.network_id,
                                                             svc.conf.base_mac),
                        device_owner=IF_OWNER, device_id=ident, port_security_enabled=False,
                        security_group_ids=[], status="DOWN")
            subnet_ids = [subnet.id]
            network = await session.get(Network, subnet.network_id)
            assert network is not None
            session.add(port)
            await session.flush()
            await allocation.allocate(session, port, network,
                                      [{"subnet_id": subnet.id, "ip_address":
                                        subnet.gateway_ip}])
        touch(row)
        await session.flush()
        return _interface_info(row, port, subnet_ids)


async def _check_attachable(session: AsyncSession, attached: list[Subnet],
                            subnet_ids: list[str]) -> None:
    for sid in subnet_ids:
        new = await session.get(Subnet, sid)
        assert new is not None
        for other in attached:
            if other.id == sid:
                raise NeutronBadRequest(f"Bad router request: Router already has a port "
                                        f"on subnet {sid}.", "BadRequest")
            if ipam.overlaps(other.cidr, new.cidr):
                raise NeutronBadRequest(f"Bad router request: Cidr {new.cidr} of subnet "
                                        f"{sid} overlaps with cidr {other.cidr} of subnet "
                                        f"{other.id}.", "BadRequest")


async def remove_interface(svc: NetworkService, ctx: RequestContext, ident: str,
                           body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body, dict) or not ({"subnet_id", "port_id"} & set(body)):
        raise NeutronBadRequest("Bad router request: Either subnet_id or port_id must be "
                                "specified.", "BadRequest")
    async with svc.write() as session:
        row = await get(session, ctx, ident)
        candidates = list((await session.execute(select(Port).where(
            Port.device_id == ident, Port.device_owner == IF_OWNER))).scalars())
        ips = await allocation.allocations(session, [p.id for p in candidates])
        port: Port | None = None
        if "port_id" in body:
            port = next((p for p in candidates if p.id == body["port_id"]), None)
            if port is None:
                raise _interface_missing(ident, "port", str(body["port_id"]))
            if "subnet_id" in body and body["subnet_id"] not in {
                    a.subnet_id for a in ips[port.id]}:
                raise NeutronConflict(f"Subnet {body['subnet_id']} is not on port "
                                      f"{port.id}", "SubnetMismatchForPort")
        else:
            port = next((p for p in candidates if any(
                a.subnet_id == body["subnet_id"] for a in ips[p.id])), None)
            if port is None:
                if await session.get(Subnet, str(body["subnet_id"])) is None:
                    raise not_found("subnet", str(body["subnet_id"]))
                raise _interface_missing(ident, "subnet", str(body["subnet_id"]))
        subnet_ids = [a.subnet_id for a in ips[port.id]]
        await _check_fips(session, row, port, ips[port.id])
        info = _interface_info(row, port, subnet_ids)
        await ports.remove(session, port)
        touch(row)
        return info


async def _check_fips(session: AsyncSession, row: Router, port: Port,
                      ips: list[IPAllocation]) -> None:
    subnets = [await session.get(Subnet, a.subnet_id) for a in ips]
    for fip in (await session.execute(select(FloatingIP).where(
            FloatingIP.router_id == row.id))).scalars():
        if fip.fixed_ip_address and any(s is not None and ipam.contains(
                s.cidr, fip.fixed_ip_address) for s in subnets):
            raise NeutronConflict(f"Cannot remove router interface from router {row.id}, "
                                  f"since it is required by one or more floating IPs.",
                                  "RouterInterfaceInUseByFloatingIP")
