"""Snapshots: create (``force`` for in-use volumes), list, show, update, delete, metadata,
reset status. A snapshot counts against ``snapshots`` and ``gigabytes``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from stackling.common.context import RequestContext
from stackling.common.errors import NotFound
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.volume.models import Snapshot, VolumeType
from stackling.volume.rpcapi import CreateSnapshot, DeleteSnapshot
from stackling.volume.service import quotas
from stackling.volume.service.cinder import VolumeService
from stackling.volume.service.common import (
    InvalidState,
    cas_snapshot,
    cast,
    paginate,
    snapshot_row,
    sort_rows,
    volume_row,
)


async def create(svc: VolumeService, ctx: RequestContext, volume_id: str, name: str | None,
                 description: str | None, metadata: dict[str, str], force: bool,
                 group_snapshot_id: str | None = None) -> Snapshot:
    project = ctx.project_id or ""
    await quotas.ensure_lock(svc.store, project)
    async with svc.store.write() as session:
        vol = await volume_row(session, ctx, volume_id)
        allowed = ("available", "in-use") if force else ("available",)
        if vol.status not in allowed:
            if vol.status == "in-use":
                raise InvalidState(f"Invalid volume: Volume {volume_id} status must be "
                                   "available, but current status is: in-use.")
            raise InvalidState(f"Invalid volume: Volume {volume_id} status must be "
                               f"available or in-use, but current status is: {vol.status}.")
        vtype = await session.get(VolumeType, vol.volume_type_id or "")
        await quotas.lock(session, project)
        await quotas.check(session, svc.conf.quotas, project,
                           {"snapshots": 1, "gigabytes": vol.size},
                           vtype.name if vtype else None, vol.volume_type_id)
        now = utcnow()
        row = Snapshot(id=new_uuid(), volume_id=vol.id, project_id=project,
                       user_id=ctx.user_id or "", name=name, description=description,
                       status="creating", progress="0%", size=vol.size, host=vol.host,
                       volume_type_id=vol.volume_type_id, group_snapshot_id=group_snapshot_id,
                       meta=metadata, created_at=now,
                       updated_at=now)
        session.add(row)
    if row.host is None:
        async with svc.store.write() as session:
            await cas_snapshot(session, row.id, ["creating"], status="error",
                               error="The volume is on no backend.")
        row.status = "error"
        return row
    await cast(svc, row.host, CreateSnapshot(snapshot_id=row.id, request_id=ctx.request_id))
    return row


async def list_snapshots(svc: VolumeService, ctx: RequestContext, filters: dict[str, str],
                         all_tenants: bool, sort: list[tuple[str, bool]], limit: int | None,
                         marker: str | None, offset: int = 0) -> list[Snapshot]:
    async with svc.store.read() as session:
        stmt = select(Snapshot).where(~Snapshot.deleted)
        if not (ctx.is_admin and all_tenants):
            stmt = stmt.where(Snapshot.project_id == ctx.project_id)
        rows = list((await session.execute(stmt)).scalars().all())
    for key, want in filters.items():
        attr = {"display_name": "name"}.get(key, key)
        rows = [r for r in rows if str(getattr(r, attr, "")) == want]
    rows = sort_rows(rows, [(k if k != "volume_id" else "volume_id", d) for k, d in sort])
    return paginate(rows, lambda r: r.id, marker, limit, "snapshot", offset)


async def get(svc: VolumeService, ctx: RequestContext, snapshot_id: str) -> Snapshot:
    async with svc.store.read() as session:
        return await snapshot_row(session, ctx, snapshot_id)


async def update(svc: VolumeService, ctx: RequestContext, snapshot_id: str,
                 changes: dict[str, Any]) -> Snapshot:
    async with svc.store.write() as session:
        row = await snapshot_row(session, ctx, snapshot_id)
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
    return row


async def delete(svc: VolumeService, ctx: RequestContext, snapshot_id: str,
                 force: bool = False) -> None:
    allowed = ["available", "error"] if not force else [
        "available", "error", "creating", "deleting", "error_deleting"]
    async with svc.store.write() as session:
        row = await snapshot_row(session, ctx, snapshot_id)
        if not await cas_snapshot(session, snapshot_id, allowed, status="deleting"):
            raise InvalidState(f"Invalid snapshot: Snapshot status must be available or "
                               f"error, but current status is: {row.status}.")
        host = row.host
    if host is None:
        async with svc.store.write() as session:
            await cas_snapshot(session, snapshot_id, ["deleting"], status="deleted",
                               deleted=True, deleted_at=utcnow())
        return
    await cast(svc, host, DeleteSnapshot(snapshot_id=snapshot_id, request_id=ctx.request_id))


async def set_metadata(svc: VolumeService, ctx: RequestContext, snapshot_id: str,
                       items: dict[str, str], replace: bool) -> dict[str, str]:
    async with svc.store.write() as session:
        row = await snapshot_row(session, ctx, snapshot_id)
        row.meta = dict(items) if replace else {**row.meta, **items}
        return dict(row.meta)


async def delete_metadata(svc: VolumeService, ctx: RequestContext, snapshot_id: str,
                          key: str) -> None:
    async with svc.store.write() as session:
        row = await snapshot_row(session, ctx, snapshot_id)
        if key not in row.meta:
            raise NotFound(f"Metadata item was not found for key {key}.")
        row.meta = {k: v for k, v in row.meta.items() if k != key}


async def reset_status(svc: VolumeService, ctx: RequestContext, snapshot_id: str,
                       status: str) -> None:
    async with svc.store.write() as session:
        row = await snapshot_row(session, ctx, snapshot_id)
        row.status, row.updated_at = status, utcnow()
