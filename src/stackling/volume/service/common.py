"""What every part of the volume service layer shares: lookups that hide other projects'
rows, compare-and-swap status changes, listing (filters, sort, marker pagination), the live
pools, and the casts to the volume workers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.bus import Message
from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, NotFound, StacklingError
from stackling.common.timeutils import as_aware, utcnow
from stackling.volume.models import Service, Snapshot, Volume, VolumeType
from stackling.volume.rpcapi import volume_topic
from stackling.volume.scheduler import Pool
from stackling.volume.service.cinder import VolumeService

T = TypeVar("T")
VOLUME_BINARY = "cinder-volume"
BACKUP_BINARY = "cinder-backup"
SCHEDULER_BINARY = "cinder-scheduler"


class InvalidState(StacklingError):
    """Cinder answers 400 for an action on a volume in the wrong status."""

    code = 400


async def volume_row(session: AsyncSession, ctx: RequestContext, volume_id: str,
                     *, any_project: bool = False) -> Volume:
    row = await session.get(Volume, volume_id)
    if row is None or row.deleted or (not (ctx.is_admin or any_project)
                                      and row.project_id != ctx.project_id):
        raise NotFound(f"Volume {volume_id} could not be found.")
    return row


async def snapshot_row(session: AsyncSession, ctx: RequestContext,
                       snapshot_id: str) -> Snapshot:
    row = await session.get(Snapshot, snapshot_id)
    if row is None or row.deleted or (not ctx.is_admin and row.project_id != ctx.project_id):
        raise NotFound(f"Snapshot {snapshot_id} could not be found.")
    return row


async def cas_volume(session: AsyncSession, volume_id: str, expected: Iterable[str],
                     **values: Any) -> bool:
    """Move the volume out of one of the ``expected`` statuses; False if it was not in one."""
    values.setdefault("updated_at", utcnow())
    result = await session.execute(
        update(Volume).where(Volume.id == volume_id, ~Volume.deleted,
                             Volume.status.in_(list(expected)))
        .values(**values).execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))


async def cas_snapshot(session: AsyncSession, snapshot_id: str, expected: Iterable[str],
                       **values: Any) -> bool:
    values.setdefault("updated_at", utcnow())
    result = await session.execute(
        update(Snapshot).where(Snapshot.id == snapshot_id, ~Snapshot.deleted,
                               Snapshot.status.in_(list(expected)))
        .values(**values).execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))


def check_status(what: str, row_id: str, status: str, allowed: Sequence[str],
                 action: str = "") -> None:
    if status not in allowed:
        raise InvalidState(
            f"Invalid {what}: {what.capitalize()} {row_id} status must be "
            f"{' or '.join(allowed)}{f' to {action}' if action else ''}, but current status "
            f"is: {status}.")


def metadata(value: Any, field: str = "metadata") -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         f"{value!r} is not of type 'object'")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                             "Metadata property key must be 1-255 characters")
        if not isinstance(item, str):
            if item is None or isinstance(item, (dict, list)):
                raise BadRequest(f"Invalid input for field/attribute {field}. Value: "
                                 f"{value}. {item!r} is not of type 'string'")
            item = str(item)
        if len(item) > 255:
            raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                             "Metadata property value must be at most 255 characters")
        out[key] = item
    return out


def paginate(rows: list[T], key: Callable[[T], str], marker: str | None,
             limit: int | None, what: str, offset: int = 0) -> list[T]:
    if marker:
        ids = [key(r) for r in rows]
        if marker not in ids:
            raise NotFound(f"Marker {marker} could not be found.")
        rows = rows[ids.index(marker) + 1:]
    rows = rows[offset:]
    return rows if limit is None else rows[:limit]


SORT_KEYS = {"id", "name", "status", "size", "created_at", "updated_at", "availability_zone",
             "bootable", "display_name", "volume_type_id", "project_id", "volume_id"}


def parse_sort(sort: str | None, sort_key: str | None, sort_dir: str | None
               ) -> list[tuple[str, bool]]:
    """``[(key, descending)]``; Cinder's default is ``created_at:desc, id:desc``."""
    pairs: list[tuple[str, bool]] = []
    if sort:
        for item in sort.split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key.strip(), (direction.strip() or "desc").lower() == "desc"))
    elif sort_key:
        for key in sort_key.split(","):
            pairs.append((key.strip(), (sort_dir or "desc").lower() == "desc"))
    for key, _ in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid input received: Invalid sort key {key}")
    if sort_dir and sort_dir.lower() not in ("asc", "desc"):
        raise BadRequest(f"Invalid input received: Unknown sort direction {sort_dir}, must "
                         "be 'desc' or 'asc'")
    pairs += [p for p in [("created_at", True), ("id", True)] if p[0] not in dict(pairs)]
    return pairs


def sort_rows(rows: list[T], pairs: list[tuple[str, bool]]) -> list[T]:
    for key, desc in reversed(pairs):
        attr = {"display_name": "name"}.get(key, key)

        def value(row: T, attr: str = attr) -> tuple[int, Any]:
            v = getattr(row, attr, None)
            if isinstance(v, datetime):
                v = as_aware(v).timestamp()
            return (0, "") if v is None else (1, v)

        rows = sorted(rows, key=value, reverse=desc)
    return rows


async def default_type(session: AsyncSession, svc: VolumeService) -> VolumeType:
    row = (await session.execute(select(VolumeType).where(
        VolumeType.name == svc.conf.default_volume_type, ~VolumeType.deleted))).scalars().first()
    if row is None:
        raise NotFound(f"Volume type {svc.conf.default_volume_type} could not be found.")
    return row


async def live_pools(session: AsyncSession, svc: VolumeService) -> list[Pool]:
    cutoff = utcnow() - timedelta(seconds=svc.conf.service_down_time)
    rows = (await session.execute(select(Service).where(
        Service.binary == VOLUME_BINARY, ~Service.disabled))).scalars().all()
    pools: list[Pool] = []
    for row in rows:
        if row.updated_at is None or as_aware(row.updated_at) < cutoff:
            continue
        for stats in row.capabilities.get("pools", []):
            caps = dict(stats.get("capabilities", {}))
            pools.append(Pool(
                name=str(stats["name"]), zone=row.zone, total_gb=float(stats["total_gb"]),
                free_gb=float(stats["free_gb"]),
                provisioned_gb=float(stats["provisioned_gb"]), thin=bool(stats["thin"]),
                max_over_subscription_ratio=float(stats["max_over_subscription_ratio"]),
                reserved_percentage=int(stats.get("reserved_percentage", 0)),
                capabilities=caps))
    return pools


async def cast(svc: VolumeService, host: str, message: Message) -> None:
    await svc.bus.cast(volume_topic(host), message)
