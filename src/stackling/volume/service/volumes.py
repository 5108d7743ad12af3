"""Volumes: create (empty, from a snapshot, a volume, an image or a backup), list, show,
update, delete (with cascade to snapshots), metadata.

Create is: check the request, claim the quota and write the row (``creating``) in one
transaction, pick a pool, cast to its volume worker. The worker moves the row to
``available`` or ``error`` (with a message); nothing else changes it meanwhile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from stackling.clients.image import ImageNotFound
from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, NotFound
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.volume.models import Attachment, Backup, Group, Snapshot, Volume, VolumeType
from stackling.volume.rpcapi import CreateVolume, DeleteVolume
from stackling.volume.scheduler import Request, select_pool
from stackling.volume.service import messages, quotas
from stackling.volume.service.cinder import VolumeService
from stackling.volume.service.common import (
    InvalidState,
    cas_volume,
    cast,
    default_type,
    live_pools,
    paginate,
    parse_sort,
    sort_rows,
    volume_row,
)
from stackling.volume.service.types import find_type

GiB = 1 << 30
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")


@dataclass
class NewVolume:
    size: int | None = None
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    volume_type: str | None = None
    availability_zone: str | None = None
    snapshot_id: str | None = None
    source_volid: str | None = None
    image_ref: str | None = None
    backup_id: str | None = None
    multiattach: bool = False
    group_id: str | None = None
    scheduler_hints: dict[str, Any] = field(default_factory=dict)


async def create(svc: VolumeService, ctx: RequestContext, req: NewVolume) -> Volume:
    project = ctx.project_id or ""
    image_meta: dict[str, str] = {}
    source_host: str | None = None
    async with svc.store.read() as session:
        snapshot = source = backup = None
        if req.snapshot_id:
            snapshot = await session.get(Snapshot, req.snapshot_id)
            if snapshot is None or snapshot.deleted or (
                    not ctx.is_admin and snapshot.project_id != project):
                raise NotFound(f"Snapshot {req.snapshot_id} could not be found.")
            if snapshot.status != "available":
                raise InvalidState("Invalid snapshot: Originating snapshot status must be "
                                   "one of 'available' values")
            req.size = req.size or snapshot.size
            if req.size < snapshot.size:
                raise BadRequest(f"Invalid input received: Volume size '{req.size}'GB cannot "
                                 f"be smaller than the snapshot size {snapshot.size}GB. They "
                                 "must be >= original snapshot size.")
            source_host = snapshot.host
            parent = await session.get(Volume, snapshot.volume_id)
            if parent is not None:
                image_meta = dict(parent.image_meta)
        if req.source_volid:
            source = await volume_row(session, ctx, req.source_volid)
            if source.status not in ("available", "in-use"):
                raise InvalidState(f"Invalid volume: Source volume status must be "
                                   f"available or in-use, but current status is: "
                                   f"{source.status}.")
            req.size = req.size or source.size
            if req.size < source.size:
                raise BadRequest("Invalid input received: Clones currently must be >= "
                                 "original volume size.")
            source_host = source.host
            image_meta = dict(source.image_meta)
        if req.backup_id:
            backup = await session.get(Backup, req.backup_id)
            if backup is None or backup.deleted or (
                    not ctx.is_admin and backup.project_id != project):
                raise NotFound(f"Backup {req.backup_id} could not be found.")
            if backup.status != "available":
                raise InvalidState("Invalid backup: Backup status must be available")
            req.size = req.size or backup.size
        if req.volume_type:
            vtype = await find_type(session, ctx, req.volume_type)
        elif snapshot is not None and snapshot.volume_type_id:
            vtype = await session.get(VolumeType, snapshot.volume_type_id) or \
                await default_type(session, svc)
        elif source is not None and source.volume_type_id:
            vtype = await session.get(VolumeType, source.volume_type_id) or \
                await default_type(session, svc)
        else:
            vtype = await default_type(session, svc)
    if req.image_ref:
        image_meta, min_gb = await _image(svc, ctx, req.image_ref)
        req.size = req.size or min_gb
        if req.size < min_gb:
            raise BadRequest(f"Invalid input received: Size of specified image {min_gb}GB "
                             f"is larger than volume size {req.size}GB.")
    if req.size is None or req.size < 1:
        raise BadRequest(f"Invalid input received: Volume size '{req.size}' must be an "
                         "integer and greater than 0")
    if req.group_id:
        async with svc.store.read() as session:
            group = await session.get(Group, req.group_id)
        if group is None or group.deleted or (not ctx.is_admin
                                              and group.project_id != project):
            raise NotFound(f"Group {req.group_id} could not be found.")
        if vtype.id not in group.volume_type_ids:
            raise BadRequest(f"Invalid input received: Volume type {vtype.name} is not "
                             f"supported by group {req.group_id}.")
    zone = req.availability_zone or svc.conf.default_availability_zone
    if zone != svc.conf.default_availability_zone:
        raise BadRequest(f"Invalid input received: Availability zone '{zone}' is invalid.")
    if vtype.encryption:
        raise BadRequest(f"Invalid volume_type: Volume type {vtype.name} asks for encryption, "
                         "which this cloud does not provide.")
    if vtype.extra_specs.get("multiattach", "").lower() in ("<is> true", "true"):
        req.multiattach = True

    now = utcnow()
    row = Volume(id=new_uuid(), project_id=project, user_id=ctx.user_id or "",
                 name=req.name, description=req.description, size=req.size,
                 status="creating", attach_status="detached", availability_zone=zone,
                 volume_type_id=vtype.id, bootable=bool(image_meta), multiattach=req.multiattach,
                 snapshot_id=req.snapshot_id, source_volid=req.source_volid,
                 image_id=req.image_ref, backup_id=req.backup_id, group_id=req.group_id,
                 meta=dict(req.metadata),
                 admin_meta={}, image_meta=image_meta, created_at=now, updated_at=now)
    await quotas.ensure_lock(svc.store, project)
    async with svc.store.write() as session:
        await quotas.lock(session, project)
        await quotas.check(session, svc.conf.quotas, project,
                           {"volumes": 1, "gigabytes": req.size}, vtype.name, vtype.id)
        session.add(row)
    await schedule(svc, row, vtype, source_host, ctx.request_id)
    return row


async def _image(svc: VolumeService, ctx: RequestContext, image_ref: str
                 ) -> tuple[dict[str, str], int]:
    if svc.images is None:
        raise BadRequest("Invalid input received: this cloud has no image service.")
    try:
        image = await svc.images.get(image_ref, token=ctx.token)
    except ImageNotFound:
        raise BadRequest("Invalid image identifier or unable to access requested "
                         "image.") from None
    if image.status != "active":
        raise BadRequest(f"Invalid input received: Image {image_ref} is not active.")
    size_gb = math.ceil((image.size or 0) / GiB) or 1
    min_gb = max(size_gb, image.min_disk or 0)
    meta = {"image_id": image.id, "image_name": image.name,
            "checksum": str(image.properties.get("checksum") or ""),
            "container_format": image.container_format or "",
            "disk_format": image.disk_format or "", "min_disk": str(image.min_disk),
            "min_ram": str(image.min_ram), "size": str(image.size or 0)}
    for key, value in image.properties.items():
        if isinstance(value, str) and key not in ("checksum", "owner", "status", "visibility",
                                                  "tags", "locations", "file", "schema",
                                                  "self", "direct_url", "os_hash_value",
                                                  "os_hash_algo", "stores"):
            meta[key] = value
    return meta, min_gb


async def schedule(svc: VolumeService, row: Volume, vtype: VolumeType,
                   source_host: str | None, request_id: str) -> None:
    """Pick a pool (the source's own for snapshots and clones) and cast the create; with no
    valid pool the volume goes to ``error``."""
    async with svc.store.read() as session:
        pools = await live_pools(session, svc)
        pending = (await session.execute(select(Volume.host, Volume.size).where(
            Volume.status == "creating", ~Volume.deleted, Volume.id != row.id))).all()
    for pool in pools:
        pool.provisioned_gb += sum(s for h, s in pending if h == pool.name)
    request = Request(size_gb=row.size, availability_zone=row.availability_zone,
                      extra_specs=dict(vtype.extra_specs), only=source_host)
    chosen = select_pool(pools, request)
    if chosen is None:
        async with svc.store.write() as session:
            await cas_volume(session, row.id, ["creating"], status="error",
                             error="No valid backend was found.")
        row.status = "error"
        await messages.record(svc.store, row.project_id, request_id, "VOLUME", row.id,
                              messages.SCHEDULE_FAILED)
        return
    async with svc.store.write() as session:
        await cas_volume(session, row.id, ["creating"], host=chosen.name)
    row.host = chosen.name
    await cast(svc, chosen.name, CreateVolume(volume_id=row.id, request_id=request_id))


@dataclass
class Listing:
    filters: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] | None = None
    all_tenants: bool = False
    sort: list[tuple[str, bool]] = field(default_factory=lambda: parse_sort(None, None, None))
    limit: int | None = None
    marker: str | None = None
    offset: int = 0


FILTERS = {"name", "display_name", "status", "availability_zone", "bootable", "project_id",
           "volume_type", "volume_type_id", "size", "id", "group_id", "host",
           "attach_status", "migration_status", "multiattach", "created_at", "updated_at"}


def _match(row: Volume, key: str, want: str, types: dict[str, str]) -> bool:
    like = key.endswith("~")
    key = key.rstrip("~")
    attr = {"display_name": "name", "volume_type": "volume_type_id"}.get(key, key)
    value: Any = getattr(row, attr, None)
    if key == "volume_type":
        return want in (row.volume_type_id, types.get(row.volume_type_id or ""))
    if isinstance(value, bool):
        return value == (want.lower() in ("true", "1", "t", "yes"))
    text = "" if value is None else str(value)
    return want.lower() in text.lower() if like else text == want


async def list_volumes(svc: VolumeService, ctx: RequestContext, q: Listing) -> list[Volume]:
    async with svc.store.read() as session:
        stmt = select(Volume).where(~Volume.deleted)
        if not (ctx.is_admin and q.all_tenants):
            stmt = stmt.where(Volume.project_id == ctx.project_id)
        rows = list((await session.execute(stmt)).scalars().all())
        types = {t.id: t.name for t in (await session.execute(select(VolumeType))).scalars()}
    for key, want in q.filters.items():
        rows = [r for r in rows if _match(r, key, want, types)]
    if q.metadata:
        rows = [r for r in rows if all(r.meta.get(k) == v for k, v in q.metadata.items())]
    rows = sort_rows(rows, q.sort)
    return paginate(rows, lambda r: r.id, q.marker, q.limit, "volume", q.offset)


async def get(svc: VolumeService, ctx: RequestContext, volume_id: str) -> Volume:
    async with svc.store.read() as session:
        return await volume_row(session, ctx, volume_id)


async def attachments_of(svc: VolumeService, volume_ids: list[str]
                         ) -> dict[str, list[Attachment]]:
    out: dict[str, list[Attachment]] = {v: [] for v in volume_ids}
    if not volume_ids:
        return out
    async with svc.store.read() as session:
        rows = (await session.execute(select(Attachment).where(
            Attachment.volume_id.in_(volume_ids), ~Attachment.deleted,
            Attachment.attach_status == "attached"))).scalars().all()
    for row in rows:
        out[row.volume_id].append(row)
    return out


async def update(svc: VolumeService, ctx: RequestContext, volume_id: str,
                 changes: dict[str, Any]) -> Volume:
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
    return row


async def set_metadata(svc: VolumeService, ctx: RequestContext, volume_id: str,
                       items: dict[str, str], replace: bool) -> dict[str, str]:
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        if row.status == "maintenance":
            raise InvalidState(f"Invalid volume: Volume {volume_id} is in maintenance.")
        row.meta = dict(items) if replace else {**row.meta, **items}
        row.updated_at = utcnow()
        return dict(row.meta)


async def delete_metadata(svc: VolumeService, ctx: RequestContext, volume_id: str,
                          key: str) -> None:
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        if key not in row.meta:
            raise NotFound(f"Volume {volume_id} has no metadata with key {key}.")
        row.meta = {k: v for k, v in row.meta.items() if k != key}
        row.updated_at = utcnow()


async def delete(svc: VolumeService, ctx: RequestContext, volume_id: str, *,
                 cascade: bool = False, force: bool = False, in_group: bool = False) -> None:
    """``force`` (admin) deletes in any status but attached; ``cascade`` deletes the
    volume's snapshots first (they must not be busy)."""
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        busy = ("in-use", "detaching") if force else ("in-use", "attaching", "detaching",
                                                      "reserved")
        if row.attach_status == "attached" or row.status in busy:
            raise InvalidState(f"Invalid volume: Volume {volume_id} status must be available "
                               f"or error or error_restoring or error_extending or "
                               f"error_managing and must not be migrating, attached, belong "
                               f"to a group, have snapshots, awaiting a transfer, or be "
                               f"disassociated from snapshots after volume transfer.")
        allowed = DELETABLE if not force else (*DELETABLE, "creating", "deleting",
                                               "error_deleting", "downloading", "uploading",
                                               "maintenance", "backing-up",
                                               "restoring-backup", "attaching", "reserved")
        if row.group_id and not in_group:
            raise InvalidState(f"Invalid volume: Volume {volume_id} belongs to group "
                               f"{row.group_id}; remove it from the group first.")
        snaps = list((await session.execute(select(Snapshot).where(
            Snapshot.volume_id == volume_id, ~Snapshot.deleted))).scalars().all())
        if snaps and not cascade:
            raise InvalidState(f"Invalid volume: Volume {volume_id} status must be available "
                               f"or error or error_restoring or error_extending or "
                               f"error_managing and must not be migrating, attached, belong "
                               f"to a group, have snapshots or be disassociated from "
                               f"snapshots after volume transfer.")
        if cascade and any(s.status not in ("available", "error") for s in snaps):
            raise InvalidState("Invalid volume: Snapshot of volume is busy.")
        if not await cas_volume(session, volume_id, allowed, status="deleting"):
            raise InvalidState(f"Invalid volume: Volume {volume_id} status must be available "
                               f"or error or error_restoring or error_extending or "
                               f"error_managing and must not be migrating, attached, belong "
                               f"to a group, have snapshots, awaiting a transfer, or be "
                               f"disassociated from snapshots after volume transfer.")
        for snap in snaps:
            snap.status = "deleting"
            snap.updated_at = utcnow()
        host = row.host
    if host is None:  # never reached a backend: nothing to clean up there
        await finish_delete(svc, volume_id)
        return
    await cast(svc, host, DeleteVolume(volume_id=volume_id, cascade=bool(snaps),
                                       request_id=ctx.request_id))


async def finish_delete(svc: VolumeService, volume_id: str) -> None:
    now = utcnow()
    async with svc.store.write() as session:
        row = await session.get(Volume, volume_id)
        if row is not None:
            row.deleted, row.deleted_at, row.status, row.updated_at = True, now, "deleted", now
