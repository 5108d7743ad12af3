"""Backups: create (from a volume, or its snapshot; ``force`` for in-use volumes), restore
(to a new or an existing volume), delete, list, show, reset status. The volume's worker
copies the data into the backup store (see :mod:`stackling.volume.manager`)."""

from __future__ import annotations

import asyncio
import base64
import json

from sqlalchemy import select

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict, NotFound
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.volume.models import Backup, Snapshot, Volume
from stackling.volume.rpcapi import CreateBackup, DeleteBackup, RestoreBackup
from stackling.volume.service import quotas
from stackling.volume.service.cinder import VolumeService
from stackling.volume.service.common import (
    InvalidState,
    cas_volume,
    cast,
    paginate,
    sort_rows,
    volume_row,
)
from stackling.volume.service.volumes import NewVolume
from stackling.volume.service.volumes import create as create_volume


async def backup_row(svc: VolumeService, ctx: RequestContext, backup_id: str) -> Backup:
    async with svc.store.read() as session:
        row = await session.get(Backup, backup_id)
    if row is None or row.deleted or (not ctx.is_admin and row.project_id != ctx.project_id):
        raise NotFound(f"Backup {backup_id} could not be found.")
    return row


async def create(svc: VolumeService, ctx: RequestContext, volume_id: str, name: str | None,
                 description: str | None, force: bool, snapshot_id: str | None,
                 incremental: bool, metadata: dict[str, str]) -> Backup:
    project = ctx.project_id or ""
    await quotas.ensure_lock(svc.store, project)
    async with svc.store.write() as session:
        vol = await volume_row(session, ctx, volume_id)
        if snapshot_id:
            snap = await session.get(Snapshot, snapshot_id)
            if snap is None or snap.deleted or snap.volume_id != volume_id:
                raise NotFound(f"Snapshot {snapshot_id} could not be found.")
            if snap.status != "available":
                raise InvalidState(f"Invalid snapshot: Snapshot to be backed up must be "
                                   f"available, but the current status is \"{snap.status}\".")
        allowed = ["available", "in-use"] if force else ["available"]
        if vol.status not in allowed:
            raise InvalidState(f"Invalid volume: Volume to be backed up must be available "
                               f"or in-use, but the current status is \"{vol.status}\".")
        if vol.status == "in-use" and not force and not snapshot_id:
            raise InvalidState("Invalid volume: Backing up an in-use volume must use the "
                               "force flag.")
        await quotas.lock(session, project)
        await quotas.check(session, svc.conf.quotas, project,
                           {"backups": 1, "backup_gigabytes": vol.size})
        if not snapshot_id and not await cas_volume(session, volume_id, allowed,
                                                    status="backing-up"):
            raise InvalidState("Invalid volume: the volume changed status.")
        now = utcnow()
        backup_id = new_uuid()
        row = Backup(id=backup_id, volume_id=volume_id, snapshot_id=snapshot_id,
                     project_id=project, user_id=ctx.user_id or "", name=name,
                     description=description, status="creating", size=vol.size,
                     container=backup_id, availability_zone=vol.availability_zone,
                     host=vol.host, incremental=incremental, meta=metadata,
                     volume_meta={"metadata": dict(vol.meta), "bootable": vol.bootable,
                                  "image_meta": dict(vol.image_meta)},
                     data_timestamp=now, created_at=now, updated_at=now)
        session.add(row)
    await cast(svc, vol.host or "", CreateBackup(backup_id=row.id, request_id=ctx.request_id))
    return row


async def list_backups(svc: VolumeService, ctx: RequestContext, filters: dict[str, str],
                       all_tenants: bool, sort: list[tuple[str, bool]], limit: int | None,
                       marker: str | None) -> list[Backup]:
    async with svc.store.read() as session:
        stmt = select(Backup).where(~Backup.deleted)
        if not (ctx.is_admin and all_tenants):
            stmt = stmt.where(Backup.project_id == ctx.project_id)
        rows = list((await session.execute(stmt)).scalars().all())
    for key, want in filters.items():
        rows = [r for r in rows if str(getattr(r, key, "")) == want]
    return paginate(sort_rows(rows, sort), lambda r: r.id, marker, limit, "backup")


async def delete(svc: VolumeService, ctx: RequestContext, backup_id: str,
                 force: bool = False) -> None:
    row = await backup_row(svc, ctx, backup_id)
    allowed = ("available", "error") if not force else ("available", "error", "creating",
                                                        "restoring", "error_deleting")
    if row.status not in allowed:
        raise InvalidState(f"Invalid backup: Backup status must be available or error, but "
                           f"current status is: {row.status}.")
    async with svc.store.write() as session:
        current = await session.get(Backup, backup_id)
        if current is None or current.status not in allowed:
            raise InvalidState("Invalid backup: Backup status must be available or error")
        current.status, current.updated_at = "deleting", utcnow()
    await cast(svc, row.host or "", DeleteBackup(backup_id=backup_id,
                                                 request_id=ctx.request_id))


async def restore(svc: VolumeService, ctx: RequestContext, backup_id: str,
                  volume_id: str | None, name: str | None) -> tuple[Backup, Volume]:
    backup = await backup_row(svc, ctx, backup_id)
    if backup.status != "available":
        raise InvalidState(f"Invalid backup: Backup status must be available, but current "
                           f"status is: {backup.status}.")
    if volume_id is None:
        vol = await create_volume(svc, ctx, NewVolume(
            size=backup.size, name=name or f"restore_backup_{backup_id}"))
        await _wait_available(svc, vol.id)
        volume_id = vol.id
    async with svc.store.write() as session:
        vol = await volume_row(session, ctx, volume_id)
        if vol.size < backup.size:
            raise BadRequest(f"Invalid volume: volume size {vol.size} is smaller than backup "
                             f"size {backup.size}.")
        if not await cas_volume(session, volume_id, ["available"], status="restoring-backup"):
            raise InvalidState(f"Invalid volume: Volume to be restored to must be available, "
                               f"but the current status is \"{vol.status}\".")
        row = await session.get(Backup, backup_id)
        if row is None or row.status != "available":
            raise InvalidState("Invalid backup: Backup status must be available")
        row.status, row.restore_volume_id, row.updated_at = "restoring", volume_id, utcnow()
        backup = row
    await cast(svc, vol.host or "", RestoreBackup(backup_id=backup_id, volume_id=volume_id,
                                                  request_id=ctx.request_id))
    return backup, vol


SERVICE = "cinder.backup.drivers.stackling"


async def export_record(svc: VolumeService, ctx: RequestContext, backup_id: str
                        ) -> dict[str, str]:
    """The backup's row, base64 JSON (Cinder's ``backup_url``): enough to import it into a
    database that lost it; the data stays where it is (``container``)."""
    row = await backup_row(svc, ctx, backup_id)
    if row.status != "available":
        raise InvalidState(f"Invalid backup: Backup status must be available and not "
                           f"{row.status}.")
    record = {"id": row.id, "volume_id": row.volume_id, "snapshot_id": row.snapshot_id,
              "project_id": row.project_id, "user_id": row.user_id, "name": row.name,
              "description": row.description, "size": row.size,
              "object_count": row.object_count, "container": row.container or row.id,
              "availability_zone": row.availability_zone, "host": row.host,
              "checksum": row.checksum, "volume_meta": row.volume_meta, "meta": row.meta}
    url = base64.b64encode(json.dumps(record).encode()).decode()
    return {"backup_service": f"{SERVICE}.{svc.conf.backup_store}", "backup_url": url}


async def import_record(svc: VolumeService, ctx: RequestContext, service: str,
                        url: str) -> Backup:
    if not service.startswith(SERVICE):
        raise BadRequest(f"Invalid input received: Backup service {service} is not "
                         "supported.")
    try:
        record = json.loads(base64.b64decode(url))
        if not isinstance(record, dict):
            raise ValueError(url)
        now = utcnow()
        row = Backup(id=str(record["id"]), volume_id=str(record["volume_id"]),
                     snapshot_id=record.get("snapshot_id"),
                     project_id=ctx.project_id or str(record["project_id"]),
                     user_id=ctx.user_id or "", name=record.get("name"),
                     description=record.get("description"), status="available",
                     size=int(record["size"]), object_count=int(record.get("object_count", 0)),
                     container=str(record["container"]),
                     availability_zone=record.get("availability_zone"),
                     host=record.get("host"), checksum=record.get("checksum"),
                     volume_meta=dict(record.get("volume_meta") or {}),
                     meta=dict(record.get("meta") or {}), data_timestamp=now,
                     created_at=now, updated_at=now)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("Invalid input received: Can't parse backup record.") from exc
    async with svc.store.write(f"Backup {row.id} already exists.") as session:
        existing = await session.get(Backup, row.id)
        if existing is not None:
            raise Conflict(f"Backup {row.id} already exists.")
        session.add(row)
    return row


async def _wait_available(svc: VolumeService, volume_id: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 300
    while loop.time() < deadline:
        async with svc.store.read() as session:
            row = await session.get(Volume, volume_id)
        if row is None or row.status == "error":
            raise InvalidState("Invalid volume: the volume for the restore failed to create.")
        if row.status == "available":
            return
        await asyncio.sleep(0.05)
    raise InvalidState("Invalid volume: the volume for the restore was not created in time.")


async def reset_status(svc: VolumeService, ctx: RequestContext, backup_id: str,
                       status: str) -> None:
    await backup_row(svc, ctx, backup_id)
    async with svc.store.write() as session:
        row = await session.get(Backup, backup_id)
        if row is not None:
            row.status, row.updated_at = status, utcnow()
