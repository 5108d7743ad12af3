"""Compute hosts: service records with heartbeats (up/down), hypervisors (compute nodes) and
their placement inventory, availability zones from aggregates."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final, NamedTuple, Protocol

from sqlalchemy import bindparam, delete, false, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.config import ComputeConfig
from stackling.common.errors import Conflict, NotFound
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.compute.models import (
    Aggregate,
    AggregateHost,
    ComputeNode,
    Instance,
    ResourceProvider,
    Service,
)
from stackling.compute.service.placement import InventorySpec, ensure_provider, provider_usages
from stackling.db.base import table_of
from stackling.db.store import Store

log = logging.getLogger("stackling.compute.hosts")

COMPUTE_BINARY = "nova-compute"


class Heartbeat(Protocol):
    @property
    def forced_down(self) -> bool: ...
    @property
    def last_seen_up(self) -> datetime | None: ...


def is_up(service: Heartbeat, down_time: float, now: datetime | None = None) -> bool:
    """Up: not forced down, and heard from within ``down_time`` seconds."""
    if service.forced_down or service.last_seen_up is None:
        return False
    now = now or utcnow()
    return (now - service.last_seen_up).total_seconds() <= down_time


async def report(store: Store, host: str, binary: str, topic: str) -> None:
    """A heartbeat: stamp the service record (one UPDATE: a thousand hosts heartbeat), or
    create it on first contact."""
    now = utcnow()
    async with store.write() as session:
        stamped = await session.execute(
            update(Service).where(Service.host == host, Service.binary == binary)
            .values(report_count=Service.report_count + 1, last_seen_up=now, updated_at=now)
            .execution_options(synchronize_session=False))
        if stamped.rowcount == 0:  # type: ignore[attr-defined]
            session.add(Service(uuid=new_uuid(), host=host, binary=binary, topic=topic,
                                report_count=1, last_seen_up=now, updated_at=now))


async def heartbeats(store: Store, host: str, binary: str, topic: str,
                     interval: float) -> None:
    """Report ``binary`` on ``host`` alive every ``interval`` seconds (scheduler and
    conductor, which have the database; agents report through the conductor)."""
    while True:
        try:
            await report(store, host, binary, topic)
        except Exception as exc:  # a database hiccup must not end the loop
            log.warning("heartbeat of %s on %s failed: %s", binary, host, exc)
        await asyncio.sleep(interval)


async def report_many(store: Store, beats: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Stamp many ``(host, binary)`` services at once (one UPDATE: a conductor batches the
    heartbeats of thousands of hosts). Returns those that have no record (yet)."""
    if not beats:
        return set()
    now = utcnow()
    keys = sorted(beats)
    async with store.write() as session:
        stamped = await session.execute(
            update(Service).where(tuple_(Service.host, Service.binary).in_(keys))
            .values(report_count=Service.report_count + 1, last_seen_up=now, updated_at=now)
            .execution_options(synchronize_session=False))
        if stamped.rowcount == len(keys):  # type: ignore[attr-defined]
            return set()
        found = {(h, b) for h, b in (await session.execute(
            select(Service.host, Service.binary).where(
                tuple_(Service.host, Service.binary).in_(keys)))).all()}
    return set(keys) - found


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
    the hypervisor reports. Returns the node's uuid. A report that changes nothing (the
    periodic one, mostly) only reads."""
    inventories = {
        "VCPU": InventorySpec(report.vcpus, 0, 1, report.vcpus, 1, config.cpu_allocation_ratio),
        "MEMORY_MB": InventorySpec(report.memory_mb, min(config.reserved_host_memory_mb,
                                                         report.memory_mb - 1), 1,
                                   report.memory_mb, 1, config.ram_allocation_ratio),
        "DISK_GB": InventorySpec(report.local_gb, min(config.reserved_host_disk_gb,
                                                      report.local_gb - 1), 1,
                                 report.local_gb, 1, config.disk_allocation_ratio),
    }
    async with store.read() as session:
        node = (await session.execute(select(ComputeNode).where(
            ComputeNode.hypervisor_hostname == report.node))).scalar_one_or_none()
        if node is not None and _node_matches(node, report):
            found = await provider_usages(session, [report.node])
            usage = found[0] if found else None
            if usage is not None and usage.uuid == node.uuid and all(
                    usage.inventories.get(rc) == _stored(spec)
                    for rc, spec in inventories.items()) and len(usage.inventories) == len(
                    inventories):
                return node.uuid
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
    await ensure_provider(store, uuid, report.node, inventories)
    return uuid


def _node_matches(node: ComputeNode, report: NodeReport) -> bool:
    return (node.host, node.hypervisor_type, node.hypervisor_version, node.vcpus,
            node.memory_mb, node.local_gb, node.host_ip, node.cpu_info) == (
        report.host, report.hypervisor_type, report.hypervisor_version, report.vcpus,
        report.memory_mb, report.local_gb, report.host_ip, dict(report.cpu_info))


def _stored(spec: InventorySpec) -> InventorySpec:
    """The inventory as the database keeps it (max_unit filled in)."""
    return InventorySpec(spec.total, spec.reserved, spec.min_unit,
                         spec.max_unit if spec.max_unit is not None else spec.total,
                         spec.step_size, spec.allocation_ratio)


# built once: every server view asks for its hosts' services (host_status)
_COMPUTE_SERVICES: Final = select(Service).where(Service.binary == COMPUTE_BINARY)
_COMPUTE_SERVICES_OF: Final = _COMPUTE_SERVICES.where(
    Service.host.in_(bindparam("hosts", expanding=True)))


class ServiceState(NamedTuple):
    """What server views, deletes and the scheduler ask of a host's compute service."""

    host: str
    disabled: bool
    forced_down: bool
    last_seen_up: datetime | None


_SV: Final = table_of(Service).c  # table columns: no ORM layer on each execution
_STATES: Final = select(_SV.host, _SV.disabled, _SV.forced_down, _SV.last_seen_up).where(
    _SV.binary == COMPUTE_BINARY)
_STATE_OF: Final = _STATES.where(_SV.host == bindparam("host"))
_STATES_OF: Final = _STATES.where(_SV.host.in_(bindparam("hosts", expanding=True)))


async def service_states(session: AsyncSession,
                         names: set[str] | None = None) -> dict[str, ServiceState]:
    """``{host: state of its nova-compute service}`` (of the hosts ``names``, or all): plain
    rows, no ORM objects (every server view and every delete asks)."""
    if names is None:
        result = await session.execute(_STATES)
    elif len(names) == 1:
        result = await session.execute(_STATE_OF, {"host": next(iter(names))})
    else:
        result = await session.execute(_STATES_OF, {"hosts": sorted(names)})
    return {host: ServiceState(host, bool(disabled), bool(forced_down), seen)
            for host, disabled, forced_down, seen in result.all()}


async def compute_services(session: AsyncSession,
                           names: set[str] | None = None) -> dict[str, Service]:
    """``{host: nova-compute service}`` (of the hosts ``names``, or all)."""
    if names is None:
        rows = (await session.execute(_COMPUTE_SERVICES)).scalars()
    else:
        rows = (await session.execute(_COMPUTE_SERVICES_OF, {"hosts": sorted(names)})).scalars()
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


# -- the os-services / os-hypervisors / os-availability-zone views -----------------------------
@dataclass
class ServiceView:
    service: Service
    zone: str
    up: bool


async def list_services(store: Store, config: ComputeConfig, host: str | None = None,
                        binary: str | None = None) -> list[ServiceView]:
    now = utcnow()
    async with store.read() as session:
        query = select(Service).order_by(Service.id)
        if host:
            query = query.where(Service.host == host)
        if binary:
            query = query.where(Service.binary == binary)
        rows = list((await session.execute(query)).scalars())
        zones = await host_zones(session, config.default_availability_zone)
    return [ServiceView(row, zones.get(row.host, config.default_availability_zone)
                        if row.binary == COMPUTE_BINARY
                        else config.internal_service_availability_zone,
                        is_up(row, config.service_down_time, now)) for row in rows]


async def get_service(store: Store, ident: str, *, by_uuid: bool) -> Service:
    async with store.read() as session:
        query = select(Service).where(Service.uuid == ident if by_uuid else
                                      Service.id == int(ident))
        row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Service {ident} not found.")
    return row


async def update_service(store: Store, service_id: int, *, disabled: bool | None = None,
                         reason: str | None = None, forced_down: bool | None = None
                         ) -> Service:
    async with store.write() as session:
        row = await session.get(Service, service_id)
        if row is None:
            raise NotFound(f"Service {service_id} not found.")
        if disabled is not None:
            row.disabled = disabled
            row.disabled_reason = reason if disabled else None
        if forced_down is not None:
            row.forced_down = forced_down
        row.updated_at = utcnow()
        return row


async def find_service(store: Store, host: str, binary: str) -> Service:
    async with store.read() as session:
        row = (await session.execute(select(Service).where(
            Service.host == host, Service.binary == binary))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Compute host {host} could not be found.")
    return row


async def delete_service(store: Store, service_id: int) -> None:
    async with store.write() as session:
        row = await session.get(Service, service_id)
        if row is None:
            raise NotFound(f"Service {service_id} not found.")
        if row.binary == COMPUTE_BINARY:
            busy = (await session.execute(select(func.count()).select_from(Instance).where(
                Instance.host == row.host, Instance.deleted == false()))).scalar_one()
            if busy:
                raise Conflict("Unable to delete compute service that is hosting instances. "
                               "Migrate or delete the instances first.")
            for node in (await session.execute(select(ComputeNode).where(
                    ComputeNode.host == row.host))).scalars():
                await session.execute(delete(ResourceProvider).where(
                    ResourceProvider.uuid == node.uuid))
                await session.delete(node)
            await session.execute(delete(AggregateHost).where(AggregateHost.host == row.host))
        await session.delete(row)


@dataclass
class HypervisorView:
    node: ComputeNode
    service: Service | None
    up: bool
    vcpus_used: int
    memory_mb_used: int
    local_gb_used: int
    running_vms: int
    servers: list[tuple[str, str]]  # (name, uuid)


async def list_hypervisors(store: Store, config: ComputeConfig, *,
                           pattern: str | None = None, with_servers: bool = False
                           ) -> list[HypervisorView]:
    now = utcnow()
    async with store.read() as session:
        query = select(ComputeNode).order_by(ComputeNode.id)
        if pattern is not None:
            query = query.where(ComputeNode.hypervisor_hostname.contains(pattern))
        node_rows = list((await session.execute(query)).scalars())
        services = await compute_services(session)
        usage = {p.name: p for p in await provider_usages(
            session, [n.hypervisor_hostname for n in node_rows])}
        instances: dict[str, list[tuple[str, str]]] = {}
        for name, uuid, on in (await session.execute(
                select(Instance.display_name, Instance.uuid, Instance.node).where(
                    Instance.deleted == false(), Instance.node.is_not(None))
                .order_by(Instance.id))).all():
            instances.setdefault(str(on), []).append((name, uuid))
    out = []
    for node in node_rows:
        service = services.get(node.host)
        p = usage.get(node.hypervisor_hostname)
        used = p.used if p else {}
        reserved_mem = p.inventories["MEMORY_MB"].reserved if p and \
            "MEMORY_MB" in p.inventories else 0
        on_node = instances.get(node.hypervisor_hostname, [])
        out.append(HypervisorView(
            node, service, service is not None and is_up(service, config.service_down_time,
                                                         now),
            used.get("VCPU", 0), used.get("MEMORY_MB", 0) + reserved_mem,
            used.get("DISK_GB", 0), len(on_node), on_node if with_servers else []))
    return out
