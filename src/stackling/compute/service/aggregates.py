"""Host aggregates: named groups of compute hosts with metadata. The ``availability_zone``
metadata key makes an aggregate an availability zone (a host is in at most one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import BadRequest, Conflict, NotFound
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.compute.models import Aggregate, AggregateHost, Service
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.hosts import COMPUTE_BINARY


@dataclass
class AggregateRecord:
    aggregate: Aggregate
    hosts: list[str] = field(default_factory=list)


def not_found(ident: object) -> NotFound:
    return NotFound(f"Aggregate {ident} could not be found.")


async def _row(session: AsyncSession, ident: str) -> Aggregate:
    query = select(Aggregate).where(Aggregate.uuid == ident if not ident.isdigit()
                                    else Aggregate.id == int(ident))
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise not_found(ident)
    return row


async def _hosts(session: AsyncSession, aggregate_id: int) -> list[str]:
    return list((await session.execute(
        select(AggregateHost.host).where(AggregateHost.aggregate_id == aggregate_id)
        .order_by(AggregateHost.id))).scalars())


def _check_zone(svc: ComputeService, zone: str | None) -> None:
    if zone is not None and zone == svc.conf.internal_service_availability_zone:
        raise BadRequest("Aggregate availability zone cannot be the internal zone "
                         f"{zone}.")


async def list_aggregates(svc: ComputeService) -> list[AggregateRecord]:
    async with svc.store.read() as session:
        rows = list((await session.execute(select(Aggregate).order_by(Aggregate.id))
                     ).scalars())
        return [AggregateRecord(r, await _hosts(session, r.id)) for r in rows]


async def get(svc: ComputeService, ident: str) -> AggregateRecord:
    async with svc.store.read() as session:
        row = await _row(session, ident)
        return AggregateRecord(row, await _hosts(session, row.id))


async def create(svc: ComputeService, name: str, zone: str | None) -> AggregateRecord:
    _check_zone(svc, zone)
    async with svc.store.write(conflict=f"Aggregate {name} already exists.") as session:
        if (await session.execute(select(Aggregate.id).where(Aggregate.name == name))).first():
            raise Conflict(f"Aggregate {name} already exists.")
        row = Aggregate(uuid=new_uuid(), name=name, availability_zone=zone,
                        metadata_={"availability_zone": zone} if zone else {})
        session.add(row)
        await session.flush()
        return AggregateRecord(row)


async def update(svc: ComputeService, ident: str, name: str | None,
                 zone: str | None, set_zone: bool) -> AggregateRecord:
    if set_zone:
        _check_zone(svc, zone)
    async with svc.store.write() as session:
        row = await _row(session, ident)
        if name is not None and name != row.name:
            if (await session.execute(select(Aggregate.id).where(Aggregate.name == name))
                    ).first():
                raise Conflict(f"Aggregate {name} already exists.")
            row.name = name
        if set_zone:
            hosts = await _hosts(session, row.id)
            await _zone_conflicts(session, hosts, zone, row.id)
            row.availability_zone = zone
            meta = dict(row.metadata_)
            if zone:
                meta["availability_zone"] = zone
            else:
                meta.pop("availability_zone", None)
            row.metadata_ = meta
        row.updated_at = utcnow()
        return AggregateRecord(row, await _hosts(session, row.id))


async def _zone_conflicts(session: AsyncSession, hosts: list[str], zone: str | None,
                          aggregate_id: int) -> None:
    """A host may not end up in two different zones."""
    if not zone or not hosts:
        return
    rows = (await session.execute(
        select(AggregateHost.host, Aggregate.availability_zone)
        .join(Aggregate, Aggregate.id == AggregateHost.aggregate_id)
        .where(AggregateHost.host.in_(hosts), Aggregate.id != aggregate_id,
               Aggregate.availability_zone.is_not(None)))).all()
    others = {z for _, z in rows if z and z != zone}
    if others:
        raise BadRequest(f"Cannot add host to aggregate {aggregate_id}. Reason: One or more "
                         f"hosts already in availability zone(s) {sorted(others)}.")


async def delete(svc: ComputeService, ident: str) -> None:
    async with svc.store.write() as session:
        row = await _row(session, ident)
        if await _hosts(session, row.id):
            raise BadRequest(f"Cannot remove aggregate {row.id}: it still has hosts.")
        await session.delete(row)


async def add_host(svc: ComputeService, ident: str, host: str) -> AggregateRecord:
    async with svc.store.write() as session:
        row = await _row(session, ident)
        known = (await session.execute(select(Service.id).where(
            Service.host == host, Service.binary == COMPUTE_BINARY))).first()
        if known is None:
            raise NotFound(f"Compute host {host} could not be found.")
        hosts = await _hosts(session, row.id)
        if host in hosts:
            raise Conflict(f"Aggregate {row.id} already has host {host}.")
        await _zone_conflicts(session, [host], row.availability_zone, row.id)
        session.add(AggregateHost(aggregate_id=row.id, host=host))
        row.updated_at = utcnow()
        return AggregateRecord(row, [*hosts, host])


async def remove_host(svc: ComputeService, ident: str, host: str) -> AggregateRecord:
    async with svc.store.write() as session:
        row = await _row(session, ident)
        link = (await session.execute(select(AggregateHost).where(
            AggregateHost.aggregate_id == row.id, AggregateHost.host == host))
        ).scalar_one_or_none()
        if link is None:
            raise NotFound(f"Cannot remove host {host} in aggregate {row.id}")
        await session.delete(link)
        row.updated_at = utcnow()
        return AggregateRecord(row, [h for h in await _hosts(session, row.id) if h != host])


async def set_metadata(svc: ComputeService, ident: str,
                       items: dict[str, str | None]) -> AggregateRecord:
    async with svc.store.write() as session:
        row = await _row(session, ident)
        meta = dict(row.metadata_)
        for key, value in items.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        if "availability_zone" in items:
            zone = items["availability_zone"]
            _check_zone(svc, zone)
            await _zone_conflicts(session, await _hosts(session, row.id), zone, row.id)
            row.availability_zone = zone
        row.metadata_ = meta
        row.updated_at = utcnow()
        return AggregateRecord(row, await _hosts(session, row.id))
