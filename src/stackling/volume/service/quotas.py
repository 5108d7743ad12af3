"""Block storage quotas: limits per project (config defaults, the ``default`` quota class,
per-project overrides) and usage counted from the real rows under a per-project lock.

A transaction that checks a quota and then creates what it counts first calls :func:`lock`:
that write takes the row lock (the database lock on SQLite), so concurrent creates are
checked one after the other and none slips past a limit. Cinder's per-type resources
(``volumes_<type>``, ``gigabytes_<type>``, ``snapshots_<type>``) are reported, unlimited
unless set.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.config import VolumeQuotaConfig
from stackling.common.errors import Conflict, StacklingError
from stackling.db.store import Store
from stackling.volume.models import Backup, Quota, QuotaClass, QuotaLock, Snapshot, Volume

RESOURCES = ("volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes",
             "per_volume_gigabytes", "groups")
PER_TYPE = ("volumes", "gigabytes", "snapshots")
DEFAULT_CLASS = "default"


class OverQuota(StacklingError):
    """413 with Cinder's wording (``overLimit``)."""

    code = 413


async def ensure_lock(store: Store, project_id: str) -> None:
    async with store.read() as session:
        if (await session.get(QuotaLock, project_id)) is not None:
            return
    try:
        async with store.write() as session:
            session.add(QuotaLock(project_id=project_id, generation=0))
    except Conflict:
        pass


async def lock(session: AsyncSession, project_id: str) -> None:
    await session.execute(update(QuotaLock).where(QuotaLock.project_id == project_id)
                          .values(generation=QuotaLock.generation + 1)
                          .execution_options(synchronize_session=False))


async def class_limits(session: AsyncSession, config: VolumeQuotaConfig,
                       class_name: str = DEFAULT_CLASS,
                       type_names: list[str] | None = None) -> dict[str, int]:
    limits = {r: int(getattr(config, r)) for r in RESOURCES}
    for name in type_names or []:
        for r in PER_TYPE:
            limits[f"{r}_{name}"] = -1
    rows = (await session.execute(select(QuotaClass).where(
        QuotaClass.class_name == class_name))).scalars()
    for row in rows:
        limits[row.resource] = int(row.hard_limit)
    return limits


async def project_limits(session: AsyncSession, config: VolumeQuotaConfig, project_id: str,
                         type_names: list[str] | None = None) -> dict[str, int]:
    limits = await class_limits(session, config, DEFAULT_CLASS, type_names)
    for row in (await session.execute(select(Quota).where(
            Quota.project_id == project_id))).scalars():
        limits[row.resource] = int(row.hard_limit)
    return limits


async def usage(session: AsyncSession, project_id: str,
                type_names: Mapping[str, str] | None = None) -> dict[str, int]:
    """What the project uses now; ``type_names`` maps type id -> name for per-type keys."""
    vols = (await session.execute(
        select(Volume.volume_type_id, func.count(), func.coalesce(func.sum(Volume.size), 0))
        .where(Volume.project_id == project_id, ~Volume.deleted)
        .group_by(Volume.volume_type_id))).all()
    snaps = (await session.execute(
        select(Snapshot.volume_type_id, func.count(), func.coalesce(func.sum(Snapshot.size), 0))
        .where(Snapshot.project_id == project_id, ~Snapshot.deleted)
        .group_by(Snapshot.volume_type_id))).all()
    backups = (await session.execute(
        select(func.count(), func.coalesce(func.sum(Backup.size), 0))
        .where(Backup.project_id == project_id, ~Backup.deleted))).one()
    used = {r: 0 for r in RESOURCES}
    names = dict(type_names or {})
    for name in names.values():
        for r in PER_TYPE:
            used[f"{r}_{name}"] = 0
    for type_id, count, size in vols:
        used["volumes"] += int(count)
        used["gigabytes"] += int(size)
        if type_id in names:
            used[f"volumes_{names[type_id]}"] += int(count)
            used[f"gigabytes_{names[type_id]}"] += int(size)
    for type_id, count, size in snaps:
        used["snapshots"] += int(count)
        used["gigabytes"] += int(size)
        if type_id in names:
            used[f"snapshots_{names[type_id]}"] += int(count)
            used[f"gigabytes_{names[type_id]}"] += int(size)
    used["backups"] = int(backups[0])
    used["backup_gigabytes"] = int(backups[1])
    return used


async def check(session: AsyncSession, config: VolumeQuotaConfig, project_id: str,
                deltas: Mapping[str, int], type_name: str | None = None,
                type_id: str | None = None) -> None:
    """Raise :class:`OverQuota` when adding ``deltas`` exceeds a limit (call :func:`lock`
    first in the same transaction)."""
    names = [type_name] if type_name else []
    limits = await project_limits(session, config, project_id, names)
    used = await usage(session, project_id, {type_id: type_name} if type_id and type_name
                       else None)
    per_volume = limits.get("per_volume_gigabytes", -1)
    if "gigabytes" in deltas and per_volume >= 0 and deltas.get("gigabytes", 0) > per_volume:
        raise OverQuota(f"VolumeSizeExceedsLimit: Requested volume size "
                        f"{deltas['gigabytes']}G is larger than maximum allowed limit "
                        f"{per_volume}G.")
    wanted = dict(deltas)
    if type_name:
        for r in PER_TYPE:
            if r in deltas:
                wanted[f"{r}_{type_name}"] = deltas[r]
    for resource, delta in wanted.items():
        if delta <= 0:
            continue
        limit = limits.get(resource, -1)
        if limit >= 0 and used.get(resource, 0) + delta > limit:
            raise OverQuota(_message(resource, delta, used.get(resource, 0), limit))


def _message(resource: str, delta: int, used: int, limit: int) -> str:
    if resource.startswith("gigabytes") or resource == "backup_gigabytes":
        what = "backup" if resource.startswith("backup") else "volume"
        return (f"VolumeSizeExceedsAvailableQuota: Requested {what} or snapshot exceeds "
                f"allowed {resource} quota. Requested {delta}G, quota is {limit}G and "
                f"{used}G has been consumed.")
    kind = resource.split("_")[0].rstrip("s")
    return (f"{kind.capitalize()}LimitExceeded: Maximum number of {resource} allowed "
            f"({limit}) exceeded")
