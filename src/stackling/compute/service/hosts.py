"""Compute hosts: service records with heartbeats (up/down), hypervisors (compute nodes) and
their placement inventory, availability zones from aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.config import ComputeConfig
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.compute.models import Aggregate, AggregateHost, ComputeNode, Service
from stackling.compute.service.placement import InventorySpec, ensure_provider
from stackling.db.store import Store

COMPUTE_BINARY = "nova-compute"


def is_up(service: Service, down_time: float, now: datetime | None = None) -> bool:
    """Up: not forced down, and heard from within ``down_time`` seconds."""
    if service.forced_down or service.last_seen_up is None:
        return False
    now = now or utcnow()
    return (now - service.last_seen_up).total_seconds() <= down_time


async def report(store: Store, host: str, binary: str, topic: str) -> None:
    """A heartbeat: create the service record on first contact, else stamp it."""
    now = utcnow()
    async with store.write() as session:
        row = (await session.execute(select(Service).where(
            Service.host == host, Service.binary == binary))).scalar_one_or_none()
        if row is None:
            session.add(Service(uuid=new_uuid(), host=host, binary=binary, topic=topic,
                                report_count=1, last_seen_up=now, updated_at=now))
        else:
            row.report_count += 1
            row.last_seen_up = now
            row.updated_at = now


@dataclass(frozen=True)
class NodeReport:
    host: str
    node: str
    hypervisor_type: str
    hypervisor_version: int
    vcpus: int
    memory_mb: int
    local_gb: int
    host_ip: str | None
    cpu_info: dict[str, object]


async def update_node(store: Store, report: NodeReport, config: ComputeConfig) -> str:
    """Keep the compute node row and its resource provider's inventory in line with what
    the hypervisor reports. Returns the node's uuid."""
    now = utcnow()
    async with store.write(conflict="This hypervisor is registered by another host.") as s:
        node = (await s.execute(select(ComputeNode).where(
            ComputeNode.hypervisor_hostname == report.node))).scalar_one_or_none()
        if node is None:
            node = ComputeNode(uuid=new_uuid(), host=report.host,
                               hypervisor_hostname=report.node, vcpus=0, memory_mb=0,
                               local_gb=0, hypervisor_type=report.hypervisor_type)
            s.add(node)
        node.host = report.host
        node.hypervisor_type = report.hypervisor_type
        node.hypervisor_version = report.hypervisor_version
        node.vcpus, node.memory_mb, node.local_gb = report.vcpus, report.memory_mb, report.local_gb
        node.host_ip = report.host_ip
        node.cpu_info = dict(report.cpu_info)
        node.updated_at = now
        uuid = node.uuid
    await ensure_provider(store, uuid, report.node, {
        "VCPU": InventorySpec(report.vcpus, 0, 1, report.vcpus, 1, config.cpu_allocation_ratio),
        "MEMORY_MB": InventorySpec(report.memory_mb, min(config.reserved_host_memory_mb,
                                                         report.memory_mb - 1), 1,
                                   report.memory_mb, 1, config.ram_allocation_ratio),
        "DISK_GB": InventorySpec(report.local_gb, min(config.reserved_host_disk_gb,
                                                      report.local_gb - 1), 1,
                                 report.local_gb, 1, config.disk_allocation_ratio),
    })
    return uuid


async def compute_services(session: AsyncSession) -> dict[str, Service]:
    """``{host: nova-compute service}``."""
    rows = (await session.execute(select(Service).where(
        Service.binary == COMPUTE_BINARY))).scalars()
    return {row.host: row for row in rows}


async def host_zones(session: AsyncSession, default_zone: str) -> dict[str, str]:
    """``{host: availability zone}`` for hosts in an aggregate with a zone; others are in
    ``default_zone`` (callers use ``.get(host, default_zone)``)."""
    rows = (await session.execute(
        select(AggregateHost.host, Aggregate.availability_zone)
        .join(Aggregate, Aggregate.id == AggregateHost.aggregate_id)
        .where(Aggregate.availability_zone.is_not(None)))).all()
    return {host: zone for host, zone in rows if zone}


async def nodes(session: AsyncSession) -> list[ComputeNode]:
    return list((await session.execute(select(ComputeNode).order_by(ComputeNode.id))).scalars())
