"""Subnets (IPv4 and IPv6): CIDR, gateway, allocation pools, DNS servers, host routes,
DHCP; and the network's DHCP port, which the server (not the agent) creates so dnsmasq has
an address on every subnet with ``enable_dhcp``."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.ids import new_uuid
from stackling.network import ipam
from stackling.network.errors import (
    NeutronBadRequest,
    NeutronConflict,
    NeutronForbidden,
    bad_attr,
    invalid,
    not_found,
)
from stackling.network.models import IPAllocation, Network, Port, Subnet, Tag
from stackling.network.service import allocation, subnetpools, views
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

DHCP_OWNER = "network:dhcp"
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
KEYS = {"network_id", "name", "description", "ip_version", "cidr", "gateway_ip",
        "allocation_pools", "dns_nameservers", "host_routes", "enable_dhcp", "ipv6_ra_mode",
        "ipv6_address_mode", "tenant_id", "project_id", "tags", "service_types",
        "subnetpool_id", "prefixlen", "segment_id", "use_default_subnetpool",
        "dns_publish_fixed_ip"}
UPDATE_KEYS = {"name", "description", "gateway_ip", "allocation_pools", "dns_nameservers",
               "host_routes", "enable_dhcp", "service_types", "segment_id"}


async def view(session: AsyncSession, rows: list[Subnet]) -> list[dict[str, Any]]:
    tags = await views.tags_of(session, [r.id for r in rows])
    return [views.subnet(r, tags[r.id]) for r in rows]


async def get(session: AsyncSession, ctx: RequestContext, ident: str) -> Subnet:
    row = await session.get(Subnet, ident)
    if row is None:
        raise not_found("subnet", ident)
    if not owns(ctx, row.project_id):
        net = await session.get(Network, row.network_id)
        if net is None or not (net.shared or owns(ctx, net.project_id)):
            raise not_found("subnet", ident)
    return row


async def list_subnets(svc: NetworkService, ctx: RequestContext) -> list[dict[str, Any]]:
    async with svc.store.read() as session:
        query = select(Subnet).order_by(Subnet.created_at, Subnet.id)
        if not ctx.is_admin:
            # subnets of external networks stay hidden (no subnet-external-network)
            nets = select(Network.id).where((Network.project_id == ctx.project_id)
                                            | Network.shared)
            query = query.where((Subnet.project_id == ctx.project_id)
                                | Subnet.network_id.in_(nets))
        return await view(session, list((await session.execute(query)).scalars()))


async def show(svc: NetworkService, ctx: RequestContext, ident: str) -> dict[str, Any]:
    async with svc.store.read() as session:
        return (await view(session, [await get(session, ctx, ident)]))[0]


def _nameservers(raw: Any) -> list[str]:
    if not isinstance(raw, list):
        raise bad_attr("dns_nameservers", f"'{raw}' is not a list")
    out: list[str] = []
    for item in raw:
        ip = str(ipam.parse_ip(item, "dns_nameservers"))
        if ip in out:
            raise bad_attr("dns_nameservers", f"Duplicate nameserver '{item}'")
        out.append(ip)
    return out


def _routes(raw: Any, version: int) -> list[list[str]]:
    if not isinstance(raw, list):
        raise bad_attr("host_routes", f"'{raw}' is not a list")
    out: list[list[str]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
            raise bad_attr("host_routes", "Validation of dictionary's keys failed. "
                                          "Expected keys: {'destination', 'nexthop'}")
        try:
            dest = ipaddress.ip_network(str(item["destination"]), strict=False)
        except ValueError:
            raise bad_attr("host_routes", f"'{item['destination']}' is not a valid IP "
                                          "subnet") from None
        hop = ipam.parse_ip(item["nexthop"], "host_routes")
        if dest.version != version or hop.version != version:
            raise invalid(f"Host route {item} does not match the subnet's IP version")
        route = [str(dest), str(hop)]
        if route in out:
            raise bad_attr("host_routes", f"Duplicate hostroute '{item}'")
        out.append(route)
    return out


def _gateway(raw: Any, net: ipam.IPNetwork) -> str | None:
    if raw is None:
        return None
    ip = ipam.parse_ip(raw, "gateway_ip")
    if ip.version != net.version:
        raise bad_attr("gateway_ip", f"'{raw}' is not a valid IP address")
    if ip == net.network_address or (net.version == 4 and ip == net.broadcast_address):
        raise invalid("Gateway is not valid on subnet")
    return str(ip)


async def create(svc: NetworkService, ctx: RequestContext, body: dict[str, Any],
                 session: AsyncSession) -> Subnet:
    unknown_keys(body, KEYS, "subnet")
    net_id = body.get("network_id")
    if not isinstance(net_id, str):
        raise NeutronBadRequest("Failed to parse request. Required attribute 'network_id' "
                                "not specified", "HTTPBadRequest")
    network = await get_network(session, net_id, ctx)
    if not owns(ctx, network.project_id):
        raise NeutronForbidden("(rule:create_subnet and rule:create_subnet:network_owner) "
                               "is disallowed by policy")
    project = owner_of(ctx, body)
    if body.get("use_default_subnetpool"):
        raise NeutronBadRequest("There are no default subnet pools.", "HTTPBadRequest")
    if body.get("segment_id") is not None:
        raise NeutronBadRequest("Segments are not supported.", "HTTPBadRequest")
    version = body.get("ip_version", 4)
    if version not in (4, 6) or isinstance(version, bool):
        raise bad_attr("ip_version", f"'{version}' is not in [4, 6]")
    pool_id = body.get("subnetpool_id")
    if "cidr" not in body and pool_id is None:
        raise NeutronBadRequest("Bad subnets request: a subnetpool must be specified in the "
                                "absence of a cidr.", "BadRequest")
    if pool_id is not None:
        requested = str(ipam.parse_cidr(body["cidr"], version)) if "cidr" in body else None
        net = ipam.parse_cidr(await subnetpools.allocate_cidr(
            session, ctx, str(pool_id), requested, body.get("prefixlen"), version), version)
    else:
        net = ipam.parse_cidr(body["cidr"], version)
    cidr = str(net)
    await check_quota(session, svc, project, "subnet")
    for other in await allocation.subnets_of(session, network.id):
        if ipam.overlaps(other.cidr, cidr):
            raise invalid(f"Requested subnet with cidr: {cidr} for network: {network.id} "
                          f"overlaps with another subnet")
    gateway = _gateway(body["gateway_ip"], net) if "gateway_ip" in body \
        else ipam.default_gateway(net)
    if gateway is not None and ipaddress.ip_address(gateway) not in net and version == 4:
        raise invalid("Gateway is not valid on subnet")
    ra, mode = body.get("ipv6_ra_mode"), body.get("ipv6_address_mode")
    if version == 4 and (ra is not None or mode is not None):
        raise invalid("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is "
                      "set to False. or ip_version is 4")
    for attr, value in (("ipv6_ra_mode", ra), ("ipv6_address_mode", mode)):
        if value is not None and value not in IPV6_MODES:
            raise bad_attr(attr, f"'{value}' is not in {list(IPV6_MODES)}")
    if ra is not None and mode is not None and ra != mode:
        raise invalid(f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{mode}' is "
                      "not valid. If both attributes are set, they must be the same value")
    enable_dhcp = boolean(body.get("enable_dhcp", True), "enable_dhcp")
    if "allocation_pools" in body and body["allocation_pools"] is not None:
        if not isinstance(body["allocation_pools"], list):
            raise bad_attr("allocation_pools", "Invalid data format for IP pool")
        pools = ipam.check_pools(body["allocation_pools"], net, gateway)
    else:
        pools = ipam.default_pools(net, gateway)
    row = Subnet(id=new_uuid(), project_id=project, network_id=network.id, cidr=cidr,
                 ip_version=version, gateway_ip=gateway, enable_dhcp=enable_dhcp,
                 allocation_pools=[list(p) for p in pools],
                 dns_nameservers=_nameservers(body.get("dns_nameservers") or []),
                 host_routes=_routes(body.get("host_routes") or [], version),
                 ipv6_ra_mode=ra, ipv6_address_mode=mode,
                 subnetpool_id=str(pool_id) if pool_id is not None else None,
                 name=string(body.get("name", ""), "name"),
                 description=string(body.get("description", ""), "description"))
    session.add(row)
    for tag in body.get("tags") or []:
        session.add(Tag(resource_id=row.id, tag=string(tag, "tags")))
    touch(network)
    await session.flush()
    await sync_dhcp_port(svc, session, network)
    return row


async def create_many(svc: NetworkService, ctx: RequestContext,
                      bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async with svc.write() as session:
        rows = [await create(svc, ctx, body, session) for body in bodies]
        return await view(session, rows)


async def update(svc: NetworkService, ctx: RequestContext, ident: str,
                 body: dict[str, Any]) -> dict[str, Any]:
    for key in ("cidr", "ip_version", "network_id", "ipv6_ra_mode", "ipv6_address_mode"):
        if key in body:
            raise NeutronBadRequest(f"Cannot update read-only attribute {key}",
                                    "HTTPBadRequest")
    unknown_keys(body, UPDATE_KEYS, "subnet")
    async with svc.write() as session:
        row = await get(session, ctx, ident)
        network = await session.get(Network, row.network_id)
        assert network is not None
        if not owns(ctx, row.project_id):
            raise not_found("subnet", ident)
        net = ipaddress.ip_network(row.cidr)
        if "name" in body:
            row.name = string(body["name"], "name")
        if "description" in body:
            row.description = string(body["description"], "description")
        if "gateway_ip" in body:
            gateway = _gateway(body["gateway_ip"], net)
            if gateway is not None and ipam.in_pools(ipaddress.ip_address(gateway),
                                                     row.allocation_pools) \
                    and "allocation_pools" not in body:
                raise NeutronConflict(f"Gateway ip {gateway} conflicts with allocation pool "
                                      f"{row.allocation_pools[0][0]}-"
                                      f"{row.allocation_pools[0][1]}.",
                                      "GatewayConflictWithAllocationPools")
            if gateway is not None and gateway != row.gateway_ip:
                holder = (await session.execute(select(IPAllocation.port_id).where(
                    IPAllocation.subnet_id == ident,
                    IPAllocation.ip_address == gateway))).first()
                if holder:
                    raise NeutronConflict(f"Gateway ip {gateway} conflicts with an allocated "
                                          "address.", "GatewayIpInUse")
            row.gateway_ip = gateway
        if "allocation_pools" in body:
            raw = body["allocation_pools"]
            row.allocation_pools = [list(p) for p in (
                ipam.check_pools(raw, net, row.gateway_ip) if raw
                else ipam.default_pools(net, row.gateway_ip))]
        if "dns_nameservers" in body:
            row.dns_nameservers = _nameservers(body["dns_nameservers"] or [])
        if "host_routes" in body:
            row.host_routes = _routes(body["host_routes"] or [], row.ip_version)
        if "enable_dhcp" in body:
            row.enable_dhcp = boolean(body["enable_dhcp"], "enable_dhcp")
        touch(row)
        await session.flush()
        await sync_dhcp_port(svc, session, network)
        return (await view(session, [row]))[0]


async def delete_subnet(svc: NetworkService, ctx: RequestContext, ident: str) -> None:
    async with svc.write() as session:
        row = await get(session, ctx, ident)
        if not owns(ctx, row.project_id):
            raise not_found("subnet", ident)
        users = (await session.execute(select(Port.id, Port.device_owner).join(
            IPAllocation, IPAllocation.port_id == Port.id).where(
            IPAllocation.subnet_id == ident))).all()
        automatic = row.ip_version == 6 and row.ipv6_address_mode in allocation.SLAAC
        if not automatic and any(owner != DHCP_OWNER for _, owner in users):
            raise NeutronConflict(f"Unable to complete operation on subnet {ident}: One or "
                                  "more ports have an IP allocation from this subnet.",
                                  "SubnetInUse")
        await session.execute(delete(IPAllocation).where(IPAllocation.subnet_id == ident))
        await session.execute(delete(Tag).where(Tag.resource_id == ident))
        await session.delete(row)
        await session.flush()
        network = await session.get(Network, row.network_id)
        if network is not None:
            touch(network)
            await sync_dhcp_port(svc, session, network)


async def sync_dhcp_port(svc: NetworkService, session: AsyncSession, network: Network) -> None:
    """One DHCP port per network with an address on every subnet with DHCP enabled; none
    when no subnet wants DHCP."""
    subnets = [s for s in await allocation.subnets_of(session, network.id)
               if s.enable_dhcp and not (s.ip_version == 6 and s.ipv6_address_mode == "slaac")]
    port = (await session.execute(select(Port).where(
        Port.network_id == network.id, Port.device_owner == DHCP_OWNER))).scalars().first()
    if not subnets:
        if port is not None:
            await session.execute(delete(IPAllocation).where(IPAllocation.port_id == port.id))
            await session.delete(port)
            await session.flush()
        return
    if port is None:
        port = Port(id=new_uuid(), project_id=network.project_id, network_id=network.id,
                    mac_address=await allocation.new_mac(session, network.id,
                                                         svc.conf.base_mac),
                    device_owner=DHCP_OWNER, device_id=f"dhcp-{network.id}",
                    port_security_enabled=False, security_group_ids=[], status="DOWN")
        session.add(port)
        await session.flush()
    current = (await allocation.allocations(session, [port.id]))[port.id]
    have = {a.subnet_id for a in current}
    wanted = {s.id for s in subnets}
    for alloc in current:
        if alloc.subnet_id not in wanted:
            await session.delete(alloc)
    for subnet in subnets:
        if subnet.id in have:
            continue
        taken = await allocation.used(session, subnet.id)
        free = next(ipam.candidates(subnet.allocation_pools, taken), None)
        if free is None:
            continue  # a full subnet: dnsmasq will not serve it until an address frees up
        session.add(IPAllocation(port_id=port.id, subnet_id=subnet.id,
                                 network_id=network.id, ip_address=free))
    await session.flush()
