"""``network-ip-availability``: total and used addresses per network and subnet (admin)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from stackling.common.context import RequestContext
from stackling.network import ipam
from stackling.network.errors import NeutronForbidden, not_found
from stackling.network.models import IPAllocation, Network, Subnet
from stackling.network.service.core import NetworkService


async def list_availability(svc: NetworkService, ctx: RequestContext,
                            network_id: str | None = None) -> list[dict[str, Any]]:
    if not svc.allowed(ctx, "get_network_ip_availability"):
        raise NeutronForbidden("(rule:get_network_ip_availability) is disallowed by policy")
    async with svc.store.read() as session:
        query = select(Network).order_by(Network.created_at, Network.id)
        if network_id is not None:
            query = query.where(Network.id == network_id)
        networks = list((await session.execute(query)).scalars())
        if network_id is not None and not networks:
            raise not_found("network", network_id)
        used = dict((await session.execute(select(IPAllocation.subnet_id, func.count())
                                           .group_by(IPAllocation.subnet_id))).all())
        out = []
        for net in networks:
            subnets = list((await session.execute(select(Subnet).where(
                Subnet.network_id == net.id).order_by(Subnet.created_at))).scalars())
            items: list[dict[str, Any]] = [{
                "subnet_id": s.id, "subnet_name": s.name, "cidr": s.cidr,
                "ip_version": s.ip_version,
                      "total_ips": ipam.pool_size(s.allocation_pools),
                      "used_ips": int(used.get(s.id, 0))} for s in subnets]
            out.append({"network_id": net.id, "network_name": net.name,
                        "tenant_id": net.project_id, "project_id": net.project_id,
                        "total_ips": sum(int(i["total_ips"]) for i in items),
                        "used_ips": sum(int(i["used_ips"]) for i in items),
                        "subnet_ip_availability": items})
        return out
