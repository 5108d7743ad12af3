"""IPAM against the database: fixed IPs for a port, under the ``(subnet_id, ip_address)``
unique constraint.

Callers run inside :meth:`NetworkService.write` (writers are serialised), so the "used"
set read here cannot change before the insert; the constraint is the backstop for anything
that bypasses that lock (another server on the same database with an older revision row,
a bug). A lost insert raises IntegrityError, the whole transaction rolls back and
:func:`stackling.network.service.ports.create_many` retries it: the retry reads the new
"used" set and moves on to the next free address, or reports the conflict in Neutron's words.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.network import ipam
from stackling.network.errors import NeutronBadRequest, NeutronConflict, bad_attr
from stackling.network.models import IPAllocation, Network, Port, Subnet

ROUTER_OWNERS = ("network:router_interface", "network:ha_router_replicated_interface",
                 "network:router_interface_distributed")
SLAAC = ("slaac", "dhcpv6-stateless")


async def subnets_of(session: AsyncSession, network_id: str) -> list[Subnet]:
    return list((await session.execute(select(Subnet).where(
        Subnet.network_id == network_id).order_by(Subnet.created_at, Subnet.id))).scalars())


async def used(session: AsyncSession, subnet_id: str) -> set[str]:
    return set((await session.execute(select(IPAllocation.ip_address).where(
        IPAllocation.subnet_id == subnet_id))).scalars())


async def new_mac(session: AsyncSession, network_id: str, base: str) -> str:
    prefix = base.split(":")[:3]
    taken = set((await session.execute(select(Port.mac_address).where(
        Port.network_id == network_id))).scalars())
    while True:
        mac = ":".join([*prefix, *(f"{b:02x}" for b in secrets.token_bytes(3))])
        if mac not in taken:
            return mac


def check_mac(value: Any) -> str:
    if not isinstance(value, str):
        raise bad_attr("mac_address", f"'{value}' is not a valid MAC address")
    parts = value.lower().replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p)
                                  for p in parts):
        raise bad_attr("mac_address", f"'{value}' is not a valid MAC address")
    mac = ":".join(parts)
    if mac == "00:00:00:00:00:00" or int(parts[0], 16) & 1:
        raise bad_attr("mac_address", f"'{value}' is not a valid MAC address")
    return mac


def _is_slaac(subnet: Subnet) -> bool:
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in SLAAC


async def _take(session: AsyncSession, subnet: Subnet, network: Network, ip: str | None,
                owner: str, mac: str) -> str:
    if _is_slaac(subnet) and not owner.startswith("network:router"):
        return ipam.eui64(ipaddress.IPv6Network(subnet.cidr), mac)
    taken = await used(session, subnet.id)
    if ip is not None:
        if ip in taken:
            raise NeutronConflict(f"IP address {ip} already allocated in subnet {subnet.id}",
                                  "IpAddressAlreadyAllocated")
        if ip == subnet.gateway_ip and owner not in ROUTER_OWNERS:
            raise NeutronConflict(f"IP address {ip} already allocated in subnet {subnet.id}",
                                  "IpAddressAlreadyAllocated")
        return ip
    for candidate in ipam.candidates(subnet.allocation_pools, taken):
        return candidate
    raise NeutronConflict(f"No more IP addresses available on network {network.id}.",
                          "IpAddressGenerationFailure")


def _parse_request(raw: Any, subnets: Sequence[Subnet]) -> list[tuple[Subnet, str | None]]:
    if not isinstance(raw, list):
        raise bad_attr("fixed_ips", f"Invalid data format for fixed IP: '{raw}'")
    by_id = {s.id: s for s in subnets}
    out: list[tuple[Subnet, str | None]] = []
    for item in raw:
        if not isinstance(item, dict) or not item or set(item) - {"subnet_id", "ip_address"}:
            raise bad_attr("fixed_ips", f"Invalid data format for fixed IP: '{item}'")
        ip = item.get("ip_address")
        subnet: Subnet | None = None
        if item.get("subnet_id") is not None:
            subnet = by_id.get(str(item["subnet_id"]))
            if subnet is None:
                raise NeutronBadRequest(f"Invalid input for operation: Failed to create port "
                                        f"on network, because fixed_ips included invalid "
                                        f"subnet {item['subnet_id']}.", "InvalidInput")
        if ip is not None:
            addr = ipam.parse_ip(ip, "ip_address")
            ip = str(addr)
            if subnet is None:
                subnet = next((s for s in subnets if ipam.contains(s.cidr, ip)), None)
                if subnet is None:
                    raise NeutronBadRequest(f"Invalid input for operation: IP address {ip} "
                                            "is not a valid IP for any of the subnets on the "
                                            "specified network.", "InvalidInput")
            elif not ipam.contains(subnet.cidr, ip):
                raise NeutronBadRequest(f"Invalid input for operation: IP address {ip} is "
                                        f"not a valid IP for the specified subnet.",
                                        "InvalidInput")
            net = ipaddress.ip_network(subnet.cidr)
            if ip == str(net.network_address) or (
                    net.version == 4 and ip == str(net.broadcast_address)):
                raise NeutronBadRequest(f"Invalid input for operation: IP address {ip} is "
                                        "not a valid IP for the specified subnet.",
                                        "InvalidInput")
        if subnet is None:
            raise bad_attr("fixed_ips", f"Invalid data format for fixed IP: '{item}'")
        if _is_slaac(subnet) and ip is not None:
            raise NeutronBadRequest(f"Invalid input for operation: IPv6 address {ip} can not "
                                    f"be directly assigned to a port on subnet {subnet.id} "
                                    "since the subnet is configured for automatic "
                                    "addresses.", "InvalidInput")
        if any(s.id == subnet.id and i == ip for s, i in out):
            raise bad_attr("fixed_ips", f"Duplicate IP address '{ip}'")
        out.append((subnet, ip))
    return out


def _default_request(subnets: Sequence[Subnet]) -> list[tuple[Subnet, str | None]]:
    """One IPv4 subnet, one stateful IPv6 subnet and every SLAAC subnet (Neutron's rule)."""
    out: list[tuple[Subnet, str | None]] = []
    v4 = next((s for s in subnets if s.ip_version == 4), None)
    if v4 is not None:
        out.append((v4, None))
    v6 = next((s for s in subnets if s.ip_version == 6 and not _is_slaac(s)), None)
    if v6 is not None:
        out.append((v6, None))
    out.extend((s, None) for s in subnets if _is_slaac(s))
    return out


async def allocate(session: AsyncSession, port: Port, network: Network,
                   requested: Any | None, keep: Sequence[IPAllocation] = ()) -> None:
    """Give ``port`` the requested fixed IPs (all defaults when ``requested`` is None).
    On update, ``keep`` holds the port's current allocations: the ones requested again
    stay, the others are freed."""
    subnets = await subnets_of(session, network.id)
    wanted = _default_request(subnets) if requested is None else _parse_request(
        requested, subnets)
    kept = {(a.subnet_id, a.ip_address): a for a in keep}
    still: set[tuple[str, str]] = set()
    new: list[tuple[Subnet, str | None]] = []
    for subnet, ip in wanted:
        if ip is not None and (subnet.id, ip) in kept:
            still.add((subnet.id, ip))
        elif ip is None and requested is not None and any(
                k[0] == subnet.id and k not in still for k in kept):
            key = next(k for k in kept if k[0] == subnet.id and k not in still)
            still.add(key)
        else:
            new.append((subnet, ip))
    for key, alloc in kept.items():
        if key not in still:
            await session.delete(alloc)
    if kept:
        await session.flush()
    for subnet, ip in new:
        address = await _take(session, subnet, network, ip, port.device_owner,
                               port.mac_address)
        session.add(IPAllocation(port_id=port.id, subnet_id=subnet.id,
                                 network_id=network.id, ip_address=address))
        await session.flush()  # the unique constraint speaks here


async def allocations(session: AsyncSession, port_ids: Sequence[str]
                      ) -> dict[str, list[IPAllocation]]:
    out: dict[str, list[IPAllocation]] = {p: [] for p in port_ids}
    for chunk in range(0, len(port_ids), 500):
        part = list(port_ids[chunk:chunk + 500])
        for row in (await session.execute(select(IPAllocation).where(
                IPAllocation.port_id.in_(part)).order_by(IPAllocation.id))).scalars():
            out.setdefault(row.port_id, []).append(row)
    return out
