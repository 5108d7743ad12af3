"""Generic volume groups (3.11+ group types, 3.13+ groups, 3.14+ group snapshots).

Groups are bookkeeping over ordinary volumes: the backends know nothing of them. A group
snapshot is one snapshot per member volume; a group from a source is one volume per source
snapshot (or a clone per source volume). A ``creating`` group or group snapshot, and a
``deleting`` group snapshot, follow their members: the volume worker calls
:func:`refresh_group` / :func:`refresh_group_snapshot` after each member it finishes (an
admin's reset status sticks, as nothing else moves it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict, NotFound
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.volume.models import Group, GroupSnapshot, GroupType, Snapshot, Volume
from stackling.volume.service import snapshots as snapshot_service
from stackling.volume.service import volumes as volume_service
from stackling.volume.service.cinder import DEFAULT_GROUP_TYPE, VolumeService
from stackling.volume.service.common import InvalidState, sort_rows
from stackling.volume.service.types import find_type

GROUP_STATUSES = ("available", "error", "creating", "deleting", "updating", "in-use",
                  "error_deleting")
SNAPSHOT_STATUSES = ("available", "error", "creating", "deleting", "error_deleting")


# -- group types ------------------------------------------------------------------------------
async def group_type(svc: VolumeService, ref: str) -> GroupType:
    async with svc.store.read() as session:
        if ref == "default":
            ref = DEFAULT_GROUP_TYPE
        row = await session.get(GroupType, ref)
        if row is None or row.deleted:
            row = (await session.execute(select(GroupType).where(
                GroupType.name == ref, ~GroupType.deleted))).scalars().first()
    if row is None:
        raise NotFound(f"Group type {ref} could not be found.")
    return row


async def list_group_types(svc: VolumeService, ctx: RequestContext,
                           is_public: str | None, sort: list[tuple[str, bool]]
                           ) -> list[GroupType]:
    async with svc.store.read() as session:
        rows = list((await session.execute(select(GroupType).where(~GroupType.deleted)
                                           .order_by(GroupType.created_at))).scalars())
    if not ctx.is_admin:
        rows = [r for r in rows if r.is_public]
    elif is_public is not None and is_public.lower() in ("true", "false"):
        rows = [r for r in rows if r.is_public == (is_public.lower() == "true")]
    return sort_rows(rows, sort)


async def create_group_type(svc: VolumeService, name: str, description: str | None,
                            is_public: bool, specs: dict[str, str]) -> GroupType:
    async with svc.store.write() as session:
        taken = (await session.execute(select(GroupType.id).where(
            GroupType.name == name, ~GroupType.deleted))).first()
        if taken is not None:
            raise Conflict(f"Group Type {name} already exists.")
        row = GroupType(id=new_uuid(), name=name, description=description,
                        is_public=is_public, group_specs=specs, created_at=utcnow())
        session.add(row)
    return row


async def update_group_type(svc: VolumeService, type_id: str, changes: dict[str, Any]
                            ) -> GroupType:
    current = await group_type(svc, type_id)
    async with svc.store.write() as session:
        row = await session.get(GroupType, current.id)
        assert row is not None
        if "name" in changes and changes["name"] != row.name:
            taken = (await session.execute(select(GroupType.id).where(
                GroupType.name == changes["name"], ~GroupType.deleted))).first()
            if taken is not None:
                raise Conflict(f"Group Type {changes['name']} already exists.")
        for key, value in changes.items():
            setattr(row, key, value)
    return row


async def delete_group_type(svc: VolumeService, type_id: str) -> None:
    current = await group_type(svc, type_id)
    async with svc.store.write() as session:
        used = (await session.execute(select(Group.id).where(
            Group.group_type_id == current.id, ~Group.deleted))).first()
        if used is not None:
            raise BadRequest("Invalid group type: Target group type is still in use.")
        row = await session.get(GroupType, current.id)
        if row is not None:
            row.deleted = True


async def set_group_specs(svc: VolumeService, type_id: str, specs: dict[str, str]
                          ) -> dict[str, str]:
    current = await group_type(svc, type_id)
    async with svc.store.write() as session:
        row = await session.get(GroupType, current.id)
        assert row is not None
        row.group_specs = {**row.group_specs, **specs}
    return specs


async def delete_group_spec(svc: VolumeService, type_id: str, key: str) -> None:
    current = await group_type(svc, type_id)
    if key not in current.group_specs:
        raise NotFound(f"Group Type {type_id} has no specs with key {key}.")
    async with svc.store.write() as session:
        row = await session.get(GroupType, current.id)
        assert row is not None
        row.group_specs = {k: v for k, v in row.group_specs.items() if k != key}


# -- groups -----------------------------------------------------------------------------------
async def create_group(svc: VolumeService, ctx: RequestContext, name: str | None,
                       description: str | None, type_ref: str, volume_types: list[str],
                       zone: str | None) -> Group:
    gtype = await group_type(svc, type_ref)
    if not volume_types:
        raise BadRequest("Invalid input received: volume_types must be provided to create "
                         "group.")
    async with svc.store.read() as session:
        type_ids = [(await find_type(session, ctx, ref)).id for ref in volume_types]
    zone = zone or svc.conf.default_availability_zone
    if zone != svc.conf.default_availability_zone:
        raise BadRequest(f"Invalid input received: Availability zone '{zone}' is invalid.")
    row = Group(id=new_uuid(), project_id=ctx.project_id or "", user_id=ctx.user_id or "",
                name=name, description=description, status="available",
                group_type_id=gtype.id, volume_type_ids=type_ids, availability_zone=zone,
                created_at=utcnow())
    async with svc.store.write() as session:
        session.add(row)
    return row


async def group_row(svc: VolumeService, ctx: RequestContext, group_id: str) -> Group:
    async with svc.store.read() as session:
        row = await session.get(Group, group_id)
    if row is None or row.deleted or (not ctx.is_admin and row.project_id != ctx.project_id):
        raise NotFound(f"Group {group_id} could not be found.")
    return row


async def refresh_group(svc: VolumeService, group_id: str) -> None:
    """A ``creating`` group becomes ``error`` when a member failed, ``available`` when
    none is still being created."""
    async with svc.store.write() as session:
        current = await session.get(Group, group_id)
        if current is None or current.status != "creating":
            return
        vols = (await session.execute(select(Volume.status).where(
            Volume.group_id == group_id, ~Volume.deleted))).scalars().all()
        if any(s == "error" for s in vols):
            current.status = "error"
        elif all(s != "creating" for s in vols):
            current.status = "available"


async def members(svc: VolumeService, group_id: str) -> list[Volume]:
    async with svc.store.read() as session:
        return list((await session.execute(select(Volume).where(
            Volume.group_id == group_id, ~Volume.deleted))).scalars().all())


async def list_groups(svc: VolumeService, ctx: RequestContext, all_tenants: bool
                      ) -> list[Group]:
    async with svc.store.read() as session:
        stmt = select(Group).where(~Group.deleted).order_by(Group.created_at.desc())
        if not (ctx.is_admin and all_tenants):
            stmt = stmt.where(Group.project_id == ctx.project_id)
        return list((await session.execute(stmt)).scalars().all())


def _ids(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        raise BadRequest("Invalid input received: add_volumes and remove_volumes are "
                         "comma separated ids")
    return [v.strip() for v in value.split(",") if v.strip()]


async def update_group(svc: VolumeService, ctx: RequestContext, group_id: str,
                       changes: dict[str, Any], add: Any, remove: Any) -> None:
    group = await group_row(svc, ctx, group_id)
    adding, removing = _ids(add), _ids(remove)
    if not changes and not adding and not removing:
        raise BadRequest("Invalid input received: Name, description, add_volumes and "
                         "remove_volumes can not be all empty in the request body.")
    if (adding or removing) and group.status not in ("available", "in-use"):
        raise InvalidState(f"Invalid group: Group {group_id} status must be available or "
                           f"in-use, but current status is: {group.status}.")
    async with svc.store.write() as session:
        row = await session.get(Group, group_id)
        assert row is not None
        for key, value in changes.items():
            setattr(row, key, value)
        for vid in adding:
            vol = await session.get(Volume, vid)
            if vol is None or vol.deleted or vol.project_id != row.project_id:
                raise BadRequest(f"Invalid volume: Volume {vid} could not be found.")
            if vol.group_id and vol.group_id != group_id:
                raise BadRequest(f"Invalid volume: Volume {vid} is already in a group.")
            if vol.volume_type_id not in row.volume_type_ids:
                raise BadRequest(f"Invalid volume: Volume {vid}'s type is not supported by "
                                 "the group.")
            if vol.status not in ("available", "in-use"):
                raise BadRequest(f"Invalid volume: Volume {vid} must be available or in-use.")
            vol.group_id = group_id
        for vid in removing:
            vol = await session.get(Volume, vid)
            if vol is None or vol.deleted or vol.group_id != group_id:
                raise BadRequest(f"Invalid volume: Volume {vid} is not in group {group_id}.")
            vol.group_id = None


async def delete_group(svc: VolumeService, ctx: RequestContext, group_id: str,
                       delete_volumes: bool) -> None:
    group = await group_row(svc, ctx, group_id)
    vols = await members(svc, group_id)
    if vols and not delete_volumes:
        raise BadRequest(f"Invalid group: Group {group_id} still contains volumes. The "
                         "delete-volumes flag is required to delete it.")
    async with svc.store.read() as session:
        snaps = (await session.execute(select(GroupSnapshot.id).where(
            GroupSnapshot.group_id == group_id, ~GroupSnapshot.deleted))).first()
    if snaps is not None:
        raise BadRequest(f"Invalid group: Group {group_id} has group snapshots.")
    if group.status not in ("available", "error", "error_deleting") and not ctx.is_admin:
        raise InvalidState(f"Invalid group: Group status must be available or error, but "
                           f"current status is: {group.status}.")
    for vol in vols:
        await volume_service.delete(svc, ctx, vol.id, cascade=True, force=True, in_group=True)
    async with svc.store.write() as session:
        row = await session.get(Group, group_id)
        if row is not None:
            row.deleted, row.status = True, "deleted"


async def reset_group_status(svc: VolumeService, ctx: RequestContext, group_id: str,
                             status: str) -> None:
    if status not in GROUP_STATUSES:
        raise BadRequest(f"Invalid input received: Invalid group status: {status}")
    await group_row(svc, ctx, group_id)
    async with svc.store.write() as session:
        row = await session.get(Group, group_id)
        if row is not None:
            row.status = status


async def create_from_source(svc: VolumeService, ctx: RequestContext, name: str | None,
                             description: str | None, group_snapshot_id: str | None,
                             source_group_id: str | None) -> Group:
    if bool(group_snapshot_id) == bool(source_group_id):
        raise BadRequest("Invalid input received: Either 'group_snapshot_id' or "
                         "'source_group_id' must be provided.")
    sources: list[tuple[str | None, str | None, str | None, int]] = []
    if group_snapshot_id:
        gsnap = await group_snapshot_row(svc, ctx, group_snapshot_id)
        if gsnap.status != "available":
            raise InvalidState("Invalid group snapshot: it must be available.")
        base = await group_row(svc, ctx, gsnap.group_id)
        async with svc.store.read() as session:
            for snap in (await session.execute(select(Snapshot).where(
                    Snapshot.group_snapshot_id == gsnap.id, ~Snapshot.deleted))).scalars():
                sources.append((snap.id, None, snap.volume_type_id, snap.size))
    else:
        base = await group_row(svc, ctx, source_group_id or "")
        if base.status != "available":
            raise InvalidState("Invalid group: the source group must be available.")
        for vol in await members(svc, base.id):
            sources.append((None, vol.id, vol.volume_type_id, vol.size))
    row = Group(id=new_uuid(), project_id=ctx.project_id or "", user_id=ctx.user_id or "",
                name=name, description=description, status="creating",
                group_type_id=base.group_type_id, volume_type_ids=list(base.volume_type_ids),
                availability_zone=base.availability_zone, group_snapshot_id=group_snapshot_id,
                source_group_id=source_group_id, created_at=utcnow())
    async with svc.store.write() as session:
        session.add(row)
    for snap_id, vol_id, type_id, size in sources:
        await volume_service.create(svc, ctx, volume_service.NewVolume(
            size=size, snapshot_id=snap_id, source_volid=vol_id, volume_type=type_id,
            group_id=row.id))
    await refresh_group(svc, row.id)  # no members, or they failed to schedule
    return row


# -- group snapshots ---------------------------------------------------------------------------
async def group_snapshot_row(svc: VolumeService, ctx: RequestContext, gsnap_id: str
                             ) -> GroupSnapshot:
    async with svc.store.read() as session:
        row = await session.get(GroupSnapshot, gsnap_id)
    if row is None or row.deleted or (not ctx.is_admin and row.project_id != ctx.project_id):
        raise NotFound(f"GroupSnapshot {gsnap_id} could not be found.")
    return row


async def refresh_group_snapshot(svc: VolumeService, gsnap_id: str) -> None:
    """``creating``: ``error`` when a member failed, ``available`` when all are;
    ``deleting``: gone when no member is left."""
    async with svc.store.write() as session:
        current = await session.get(GroupSnapshot, gsnap_id)
        if current is None or current.status not in ("creating", "deleting"):
            return
        snaps = (await session.execute(select(Snapshot.status).where(
            Snapshot.group_snapshot_id == gsnap_id, ~Snapshot.deleted))).scalars().all()
        if current.status == "deleting":
            if not snaps:
                current.deleted, current.status = True, "deleted"
            elif any(s == "error_deleting" for s in snaps):
                current.status = "error_deleting"
        elif any(s == "error" for s in snaps):
            current.status = "error"
        elif all(s == "available" for s in snaps):
            current.status = "available"


async def create_group_snapshot(svc: VolumeService, ctx: RequestContext, group_id: str,
                                name: str | None, description: str | None) -> GroupSnapshot:
    group = await group_row(svc, ctx, group_id)
    if group.status not in ("available", "in-use"):
        raise InvalidState(f"Invalid group: Group {group_id} status must be available or "
                           f"in-use, but current status is: {group.status}.")
    vols = await members(svc, group_id)
    if any(v.status not in ("available", "in-use") for v in vols):
        raise InvalidState("Invalid volume: every volume of the group must be available or "
                           "in-use.")
    row = GroupSnapshot(id=new_uuid(), group_id=group_id, project_id=group.project_id,
                        user_id=ctx.user_id or "", name=name, description=description,
                        status="creating", group_type_id=group.group_type_id,
                        created_at=utcnow())
    async with svc.store.write() as session:
        session.add(row)
    for vol in vols:
        await snapshot_service.create(svc, ctx, vol.id, f"group-snapshot-{row.id}", None, {},
                                      force=True, group_snapshot_id=row.id)
    await refresh_group_snapshot(svc, row.id)
    return row


async def list_group_snapshots(svc: VolumeService, ctx: RequestContext, all_tenants: bool
                               ) -> list[GroupSnapshot]:
    async with svc.store.read() as session:
        stmt = select(GroupSnapshot).where(~GroupSnapshot.deleted).order_by(
            GroupSnapshot.created_at.desc())
        if not (ctx.is_admin and all_tenants):
            stmt = stmt.where(GroupSnapshot.project_id == ctx.project_id)
        return list((await session.execute(stmt)).scalars().all())


async def delete_group_snapshot(svc: VolumeService, ctx: RequestContext, gsnap_id: str
                                ) -> None:
    row = await group_snapshot_row(svc, ctx, gsnap_id)
    if row.status not in ("available", "error"):
        raise InvalidState(f"Invalid group snapshot: status must be available or error, "
                           f"but current status is: {row.status}.")
    async with svc.store.read() as session:
        snaps = list((await session.execute(select(Snapshot.id).where(
            Snapshot.group_snapshot_id == gsnap_id, ~Snapshot.deleted))).scalars().all())
    async with svc.store.write() as session:
        current = await session.get(GroupSnapshot, gsnap_id)
        if current is not None:
            current.status = "deleting"
    for snap_id in snaps:
        await snapshot_service.delete(svc, ctx, snap_id, force=True)
    await refresh_group_snapshot(svc, gsnap_id)


async def reset_group_snapshot_status(svc: VolumeService, ctx: RequestContext,
                                      gsnap_id: str, status: str) -> None:
    if status not in SNAPSHOT_STATUSES:
        raise BadRequest(f"Invalid input received: Invalid group snapshot status: {status}")
    await group_snapshot_row(svc, ctx, gsnap_id)
    async with svc.store.write() as session:
        row = await session.get(GroupSnapshot, gsnap_id)
        if row is not None:
            row.status = status
