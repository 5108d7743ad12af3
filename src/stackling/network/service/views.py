"""Rows -> Neutron's JSON shapes (the whole dict; the API drops what the caller may not see
and applies ``fields``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.timeutils import isotime
from stackling.network.models import (
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    Tag,
)


def _std(row: Any, tags: Sequence[str]) -> dict[str, Any]:
    return {"tags": sorted(tags), "created_at": isotime(row.created_at, subsecond=False),
            "updated_at": isotime(row.updated_at, subsecond=False),
            "revision_number": row.revision_number}


async def tags_of(session: AsyncSession, ids: Iterable[str]) -> dict[str, list[str]]:
    wanted = list(ids)
    out: dict[str, list[str]] = {i: [] for i in wanted}
    for chunk in range(0, len(wanted), 500):
        part = wanted[chunk:chunk + 500]
        for row in (await session.execute(select(Tag).where(Tag.resource_id.in_(part)))
                    ).scalars():
            out.setdefault(row.resource_id, []).append(row.tag)
    return out


def network(row: Network, subnet_ids: Sequence[str], tags: Sequence[str]) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "description": row.description,
        "tenant_id": row.project_id, "project_id": row.project_id,
        "admin_state_up": row.admin_state_up, "status": row.status, "mtu": row.mtu,
        "shared": row.shared, "router:external": row.external,
        "subnets": list(subnet_ids), "port_security_enabled": row.port_security_enabled,
        "availability_zone_hints": list(row.availability_zone_hints or []),
        "availability_zones": ["nova"],
        "ipv4_address_scope": None, "ipv6_address_scope": None,
        "provider:network_type": row.network_type,
        "provider:physical_network": row.physical_network,
        "provider:segmentation_id": row.segmentation_id,
        **_std(row, tags),
    }


def subnet(row: Subnet, tags: Sequence[str]) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "description": row.description,
        "tenant_id": row.project_id, "project_id": row.project_id,
        "network_id": row.network_id, "ip_version": row.ip_version, "cidr": row.cidr,
        "gateway_ip": row.gateway_ip, "enable_dhcp": row.enable_dhcp,
        "allocation_pools": [{"start": s, "end": e} for s, e in row.allocation_pools],
        "host_routes": [{"destination": d, "nexthop": n} for d, n in row.host_routes],
        "dns_nameservers": list(row.dns_nameservers),
        "ipv6_ra_mode": row.ipv6_ra_mode, "ipv6_address_mode": row.ipv6_address_mode,
        "subnetpool_id": row.subnetpool_id, "service_types": [],
        **_std(row, tags),
    }


def port(row: Port, ips: Sequence[IPAllocation], tags: Sequence[str]) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "description": row.description,
        "tenant_id": row.project_id, "project_id": row.project_id,
        "network_id": row.network_id, "mac_address": row.mac_address,
        "admin_state_up": row.admin_state_up, "status": row.status,
        "device_owner": row.device_owner, "device_id": row.device_id,
        "fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in ips],
        "allowed_address_pairs": [dict(p) for p in row.allowed_address_pairs],
        "security_groups": list(row.security_group_ids),
        "port_security_enabled": row.port_security_enabled,
        "binding:vnic_type": row.vnic_type, "binding:host_id": row.host,
        "binding:vif_type": row.vif_type, "binding:vif_details": dict(row.vif_details),
        "binding:profile": dict(row.binding_profile),
        **_std(row, tags),
    }


def rule(row: SecurityGroupRule) -> dict[str, Any]:
    return {
        "id": row.id, "tenant_id": row.project_id, "project_id": row.project_id,
        "security_group_id": row.security_group_id, "direction": row.direction,
        "ethertype": row.ethertype, "protocol": row.protocol,
        "port_range_min": row.port_range_min, "port_range_max": row.port_range_max,
        "remote_ip_prefix": row.remote_ip_prefix, "remote_group_id": row.remote_group_id,
        "remote_address_group_id": None,
        "normalized_cidr": None if row.remote_ip_prefix is None else str(
            ipaddress.ip_network(row.remote_ip_prefix, strict=False)),
        "description": row.description, "belongs_to_default_sg": None,
        "created_at": isotime(row.created_at, subsecond=False),
        "updated_at": isotime(row.updated_at, subsecond=False),
        "revision_number": row.revision_number,
    }


def security_group(row: SecurityGroup, rules: Sequence[SecurityGroupRule],
                   tags: Sequence[str], shared: bool = False) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "description": row.description,
        "tenant_id": row.project_id, "project_id": row.project_id,
        "stateful": row.stateful, "shared": shared,
        "security_group_rules": [rule(r) for r in rules],
        **_std(row, tags),
    }


def router(row: Router, gateway: dict[str, Any] | None, tags: Sequence[str]) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "description": row.description,
        "tenant_id": row.project_id, "project_id": row.project_id,
        "admin_state_up": row.admin_state_up, "status": row.status,
        "external_gateway_info": gateway,
        "routes": [dict(r) for r in row.routes],
        "distributed": False, "ha": False,
        "availability_zone_hints": list(row.availability_zone_hints or []),
        "availability_zones": ["nova"],
        "flavor_id": None,
        **_std(row, tags),
    }


def floating_ip(row: FloatingIP, tags: Sequence[str],
                port_details: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": row.id, "description": row.description,
        "tenant_id": row.project_id, "project_id": row.project_id,
        "floating_network_id": row.floating_network_id,
        "floating_ip_address": row.floating_ip_address,
        "fixed_ip_address": row.fixed_ip_address, "port_id": row.fixed_port_id,
        "router_id": row.router_id, "status": row.status,
        "port_details": port_details, "port_forwardings": [],
        **_std(row, tags),
    }
