"""The desired state of one host (:class:`~stackling.network.rpcapi.HostState`), built from
the database for ``GetHostState``, and the port status changes ``PortsWired`` reports.

Scheduling is claim-on-fetch: a network's DHCP port that no host serves yet is bound to the
first ``dhcp`` agent that asks, a router no host serves yet to the first ``l3`` agent (as
Neutron's schedulers do, one agent each).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.network import ipam
from stackling.network.models import (
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)
from stackling.network.rpcapi import (
    FixedIP,
    FloatingIPState,
    HostState,
    NetworkState,
    PortState,
    RouterGatewayState,
    RouterInterfaceState,
    RouterState,
    SecurityGroupRuleState,
    SecurityGroupState,
    SubnetState,
)
from stackling.network.service import agents
from stackling.network.service.allocation import allocations
from stackling.network.service.core import NetworkService

DHCP_OWNER = "network:dhcp"
IF_OWNER = "network:router_interface"


async def _claim(svc: NetworkService, host: str, roles: list[str]) -> None:
    """Bind unserved DHCP ports and routers to this host (its own small transaction)."""
    async with svc.store.read() as session:
        dhcp = "dhcp" in roles and (await session.execute(select(Port.id).where(
            Port.device_owner == DHCP_OWNER, Port.host == ""))).first()
        l3 = "l3" in roles and (await session.execute(select(Router.id).where(
            Router.host == ""))).first()
    if dhcp or l3:
        async with svc.write(notify=False) as session:
            if dhcp:
                await session.execute(update(Port).where(
                    Port.device_owner == DHCP_OWNER, Port.host == "").values(host=host)
                    .execution_options(synchronize_session=False))
            if l3:
                await session.execute(update(Router).where(Router.host == "")
                                      .values(host=host)
                                      .execution_options(synchronize_session=False))
    await _activate_served(svc, host, roles)


async def _activate_served(svc: NetworkService, host: str, roles: list[str]) -> None:
    """The data plane reports only VM taps as wired; the ports an agent serves itself
    (its DHCP ports, its routers' interfaces and gateways) are ACTIVE once it fetches the
    state that holds them."""
    served = []
    if "dhcp" in roles:
        served.append((Port.device_owner == DHCP_OWNER) & (Port.host == host))
    if "l3" in roles:
        mine = select(Router.id).where(Router.host == host)
        served.append(Port.device_owner.in_([IF_OWNER, "network:router_gateway"])
                      & Port.device_id.in_(mine))
    if not served:
        return
    condition = served[0] if len(served) == 1 else served[0] | served[1]
    async with svc.store.read() as session:
        if not (await session.execute(select(Port.id).where(
                condition, Port.status != "ACTIVE"))).first():
            return
    async with svc.write(notify=False) as session:
        await session.execute(update(Port).where(condition, Port.status != "ACTIVE")
                              .values(status="ACTIVE")
                              .execution_options(synchronize_session=False))


def _subnet_state(row: Subnet) -> SubnetState:
    return SubnetState(id=row.id, network_id=row.network_id, cidr=row.cidr,
                       ip_version=row.ip_version, gateway_ip=row.gateway_ip,
                       enable_dhcp=row.enable_dhcp,
                       allocation_pools=[(p[0], p[1]) for p in row.allocation_pools],
                       dns_nameservers=list(row.dns_nameservers),
                       host_routes=[(r[0], r[1]) for r in row.host_routes],
                       ipv6_ra_mode=row.ipv6_ra_mode,
                       ipv6_address_mode=row.ipv6_address_mode)


def _port_state(row: Port, ips: list[IPAllocation]) -> PortState:
    return PortState(
        id=row.id, network_id=row.network_id, project_id=row.project_id,
        mac_address=row.mac_address,
        fixed_ips=[FixedIP(subnet_id=a.subnet_id, ip_address=a.ip_address) for a in ips],
        device_owner=row.device_owner, device_id=row.device_id, host=row.host,
        admin_state_up=row.admin_state_up, port_security_enabled=row.port_security_enabled,
        security_group_ids=list(row.security_group_ids),
        allowed_address_pairs=[(p["ip_address"], p.get("mac_address"))
                               for p in row.allowed_address_pairs])


async def _networks(session: AsyncSession, ids: Iterable[str]) -> list[NetworkState]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    subnets: dict[str, list[SubnetState]] = {i: [] for i in wanted}
    for row in (await session.execute(select(Subnet).where(Subnet.network_id.in_(wanted))
                                      .order_by(Subnet.created_at))).scalars():
        subnets[row.network_id].append(_subnet_state(row))
    out = []
    for net in (await session.execute(select(Network).where(Network.id.in_(wanted)))
                ).scalars():
        out.append(NetworkState(
            id=net.id, project_id=net.project_id, name=net.name, mtu=net.mtu,
            network_type=net.network_type, segmentation_id=net.segmentation_id,
            physical_network=net.physical_network, router_external=net.external,
            admin_state_up=net.admin_state_up, subnets=subnets[net.id]))
    return out


async def _security_groups(session: AsyncSession, ids: set[str]) -> list[SecurityGroupState]:
    if not ids:
        return []
    rules = list((await session.execute(select(SecurityGroupRule).where(
        SecurityGroupRule.security_group_id.in_(sorted(ids))))).scalars())
    ids |= {r.remote_group_id for r in rules if r.remote_group_id}
    members: dict[str, list[str]] = {i: [] for i in ids}
    ports = list((await session.execute(select(Port).where(Port.device_owner.notlike(
        "network:%")))).scalars())
    ips = await allocations(session, [p.id for p in ports])
    for port in ports:
        for group_id in port.security_group_ids:
            if group_id in members:
                members[group_id].extend(a.ip_address for a in ips[port.id])
                members[group_id].extend(p["ip_address"] for p in port.allowed_address_pairs)
    out = []
    for sg in (await session.execute(select(SecurityGroup).where(
            SecurityGroup.id.in_(sorted(ids))))).scalars():
        out.append(SecurityGroupState(
            id=sg.id, stateful=sg.stateful, member_ips=sorted(set(members[sg.id])),
            rules=[SecurityGroupRuleState(
                id=r.id, direction=r.direction, ethertype=r.ethertype, protocol=r.protocol,
                port_range_min=r.port_range_min, port_range_max=r.port_range_max,
                remote_ip_prefix=r.remote_ip_prefix, remote_group_id=r.remote_group_id)
                for r in rules if r.security_group_id == sg.id]))
    return out


async def _routers(session: AsyncSession, host: str) -> tuple[list[RouterState], set[str]]:
    routers = list((await session.execute(select(Router).where(Router.host == host)))
                   .scalars())
    networks: set[str] = set()
    out = []
    for router in routers:
        router_ports = list((await session.execute(select(Port).where(
            Port.device_id == router.id, Port.device_owner.in_(
                [IF_OWNER, "network:router_gateway"])))).scalars())
        ips = await allocations(session, [p.id for p in router_ports])
        gateway = None
        interfaces = []
        for port in router_ports:
            networks.add(port.network_id)
            for alloc in ips[port.id]:
                subnet = await session.get(Subnet, alloc.subnet_id)
                if subnet is None:
                    continue
                if port.device_owner == IF_OWNER:
                    interfaces.append(RouterInterfaceState(
                        port_id=port.id, network_id=port.network_id, subnet_id=subnet.id,
                        ip_address=alloc.ip_address, prefixlen=ipam.prefixlen(subnet.cidr),
                        mac_address=port.mac_address))
                elif gateway is None and subnet.ip_version == 4:
                    gateway = RouterGatewayState(
                        port_id=port.id, network_id=port.network_id,
                        ip_address=alloc.ip_address, prefixlen=ipam.prefixlen(subnet.cidr),
                        mac_address=port.mac_address, gateway_ip=subnet.gateway_ip,
                        enable_snat=router.enable_snat)
        fips = [FloatingIPState(id=f.id, floating_ip_address=f.floating_ip_address,
                                fixed_ip_address=f.fixed_ip_address or "",
                                port_id=f.fixed_port_id or "")
                for f in (await session.execute(select(FloatingIP).where(
                    FloatingIP.router_id == router.id))).scalars() if f.fixed_port_id]
        out.append(RouterState(
            id=router.id, project_id=router.project_id, admin_state_up=router.admin_state_up,
            gateway=gateway, interfaces=interfaces, floating_ips=fips,
            routes=[(r["destination"], r["nexthop"]) for r in router.routes]))
    return out, networks


async def build(svc: NetworkService, host: str, roles: list[str]) -> HostState:
    await _claim(svc, host, roles)
    revision = await svc.current_revision()
    async with svc.store.read() as session:
        bound = list((await session.execute(select(Port).where(Port.host == host))).scalars())
        ports: dict[str, Port] = {p.id: p for p in bound}
        network_ids = {p.network_id for p in bound}
        if "dhcp" in roles:
            served = set((await session.execute(select(Port.network_id).where(
                Port.device_owner == DHCP_OWNER, Port.host == host))).scalars())
            network_ids |= served
            if served:
                for port in (await session.execute(select(Port).where(
                        Port.network_id.in_(sorted(served))))).scalars():
                    ports[port.id] = port
        routers: list[RouterState] = []
        if "l3" in roles:
            routers, router_networks = await _routers(session, host)
            network_ids |= router_networks
        ips = await allocations(session, list(ports))
        groups = {sg for p in bound if p.port_security_enabled for sg in p.security_group_ids}
        state = HostState(
            host=host, revision=revision, networks=await _networks(session, network_ids),
            ports=[_port_state(p, ips[p.id]) for p in ports.values()],
            security_groups=await _security_groups(session, groups), routers=routers,
            tunnel_peers={h: ip for h, ip in (await agents.tunnel_peers(svc)).items()
                          if h != host})
    return state


async def ports_wired(svc: NetworkService, host: str, wired: list[str],
                      failed: dict[str, str]) -> list[dict[str, Any]]:
    """Mark ports ACTIVE (wired) or DOWN (failed); returns the compute-owned ones that
    changed, as ``{"port_id", "device_id", "status"}`` for ``network-vif-plugged``."""
    events: list[dict[str, Any]] = []
    if not wired and not failed:
        return events
    async with svc.write(notify=False) as session:
        for ident in [*wired, *failed]:
            port = await session.get(Port, ident)
            if port is None:
                continue
            status = "ACTIVE" if ident in wired else "DOWN"
            if port.status != status or ident in failed:
                port.status = status
                if port.device_owner.startswith("compute:") and port.device_id:
                    events.append({"port_id": port.id, "device_id": port.device_id,
                                   "status": "completed" if ident in wired else "failed"})
    return events
