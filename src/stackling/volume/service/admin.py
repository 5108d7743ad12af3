"""Operator views: services (heartbeats), pools, hosts, availability zones, quota sets."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select

from stackling.common.errors import BadRequest, NotFound
from stackling.common.timeutils import as_aware, utcnow
from stackling.volume.models import Quota, QuotaClass, Service, Snapshot, Volume, VolumeType
from stackling.volume.service import quotas
from stackling.volume.service.cinder import VolumeService


async def services(svc: VolumeService) -> list[tuple[Service, bool]]:
    """Every service row and whether it is up."""
    cutoff = utcnow() - timedelta(seconds=svc.conf.service_down_time)
    async with svc.store.read() as session:
        rows = list((await session.execute(select(Service).order_by(Service.id))).scalars())
    return [(r, r.updated_at is not None and as_aware(r.updated_at) >= cutoff) for r in rows]


async def set_service(svc: VolumeService, host: str, binary: str, disabled: bool,
                      reason: str | None) -> Service:
    async with svc.store.write() as session:
        row = (await session.execute(select(Service).where(
            Service.host == host, Service.binary == binary))).scalars().first()
        if row is None:
            raise NotFound(f"Service {binary} on host {host} could not be found.")
        row.disabled, row.disabled_reason = disabled, reason
        return row


async def host_usage(svc: VolumeService, host: str) -> list[dict[str, str]]:
    async with svc.store.read() as session:
        known = (await session.execute(select(Service.id).where(
            Service.host.like(f"{host}%")))).first()
        if known is None:
            raise NotFound(f"Host {host} could not be found.")
        vols = (await session.execute(
            select(Volume.project_id, func.count(), func.coalesce(func.sum(Volume.size), 0))
            .where(~Volume.deleted, Volume.host.like(f"{host}%"))
            .group_by(Volume.project_id))).all()
        snaps = dict((p, (c, s)) for p, c, s in (await session.execute(
            select(Snapshot.project_id, func.count(),
                   func.coalesce(func.sum(Snapshot.size), 0))
            .where(~Snapshot.deleted, Snapshot.host.like(f"{host}%"))
            .group_by(Snapshot.project_id))).all())
    out: list[tuple[str, int, int, int, int]] = []
    total = [0, 0, 0, 0]
    for project, count, size in vols:
        sc, ss = snaps.get(project, (0, 0))
        total = [total[0] + int(count), total[1] + int(size), total[2] + int(sc),
                 total[3] + int(ss)]
        out.append((project, int(count), int(size), int(sc), int(ss)))
    rows = [("(total)", total[0], total[1], total[2], total[3]), *out]
    return [{"host": host, "project": p, "volume_count": str(vc),
             "total_volume_gb": str(vg), "snapshot_count": str(sc),
             "total_snapshot_gb": str(sg)} for p, vc, vg, sc, sg in rows]


async def type_names(svc: VolumeService) -> dict[str, str]:
    async with svc.store.read() as session:
        return {t.id: t.name for t in (await session.execute(
            select(VolumeType).where(~VolumeType.deleted))).scalars()}


async def quota_set(svc: VolumeService, project_id: str, usage: bool
                    ) -> dict[str, int | dict[str, int]]:
    names = await type_names(svc)
    async with svc.store.read() as session:
        limits = await quotas.project_limits(session, svc.conf.quotas, project_id,
                                             list(names.values()))
        if not usage:
            return dict(limits)
        used = await quotas.usage(session, project_id, names)
    return {k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0, "allocated": 0}
            for k, v in limits.items()}


async def quota_defaults(svc: VolumeService, class_name: str = quotas.DEFAULT_CLASS
                         ) -> dict[str, int]:
    names = await type_names(svc)
    async with svc.store.read() as session:
        return await quotas.class_limits(session, svc.conf.quotas, class_name,
                                         list(names.values()))


def _valid(values: dict[str, object], known: set[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in values.items():
        if key not in known:
            raise BadRequest(f"Invalid input received: Bad key(s) in quota set: {key}")
        try:
            number = int(str(value))
        except ValueError:
            raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}. "
                             "must be an integer") from None
        if number < -1:
            raise BadRequest(f"Invalid input received: Quota limit {number} for {key} must "
                             "be -1 or greater.")
        out[key] = number
    return out


async def update_quotas(svc: VolumeService, project_id: str, values: dict[str, object]
                        ) -> dict[str, int]:
    names = await type_names(svc)
    known = set(quotas.RESOURCES) | {f"{r}_{n}" for n in names.values() for r in quotas.PER_TYPE}
    checked = _valid(values, known)
    async with svc.store.write() as session:
        used = await quotas.usage(session, project_id, names)
        for key, limit in checked.items():
            if key != "per_volume_gigabytes" and 0 <= limit < used.get(key, 0):
                raise BadRequest(f"Invalid input received: Quota limit {limit} for {key} "
                                 f"must be equal or greater than existing resources "
                                 f"({used.get(key, 0)}).")
            row = await session.get(Quota, (project_id, key))
            if row is None:
                session.add(Quota(project_id=project_id, resource=key, hard_limit=limit))
            else:
                row.hard_limit = limit
    async with svc.store.read() as session:
        return await quotas.project_limits(session, svc.conf.quotas, project_id,
                                           list(names.values()))


async def delete_quotas(svc: VolumeService, project_id: str) -> None:
    async with svc.store.write() as session:
        await session.execute(sql_delete(Quota).where(Quota.project_id == project_id))


async def update_class(svc: VolumeService, class_name: str, values: dict[str, object]
                       ) -> dict[str, int]:
    names = await type_names(svc)
    known = set(quotas.RESOURCES) | {f"{r}_{n}" for n in names.values() for r in quotas.PER_TYPE}
    checked = _valid(values, known)
    async with svc.store.write() as session:
        for key, limit in checked.items():
            row = await session.get(QuotaClass, (class_name, key))
            if row is None:
                session.add(QuotaClass(class_name=class_name, resource=key, hard_limit=limit))
            else:
                row.hard_limit = limit
    return await quota_defaults(svc, class_name)
