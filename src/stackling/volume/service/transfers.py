"""Volume transfers: the owner offers a volume (it goes to ``awaiting-transfer``) and gets
an auth key once; another project accepts with the key and becomes the owner (quota
checked in the receiving project). Only a hash of the key is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, NotFound
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.volume.models import Snapshot, Transfer, Volume, VolumeType
from stackling.volume.service import quotas
from stackling.volume.service.cinder import VolumeService
from stackling.volume.service.common import InvalidState, cas_volume, volume_row


def _hash(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}{key}".encode()).hexdigest()


async def create(svc: VolumeService, ctx: RequestContext, volume_id: str, name: str | None,
                 no_snapshots: bool) -> tuple[Transfer, str]:
    key = secrets.token_hex(8)
    salt = secrets.token_hex(8)
    async with svc.store.write() as session:
        vol = await volume_row(session, ctx, volume_id)
        if not await cas_volume(session, volume_id, ["available"], status="awaiting-transfer"):
            raise InvalidState(f"Invalid volume: status must be available, but current "
                               f"status is: {vol.status}.")
        row = Transfer(id=new_uuid(), volume_id=volume_id, name=name, salt=salt,
                       crypt_hash=_hash(salt, key), source_project_id=vol.project_id,
                       no_snapshots=no_snapshots, created_at=utcnow())
        session.add(row)
    return row, key


async def get(svc: VolumeService, ctx: RequestContext, transfer_id: str) -> Transfer:
    async with svc.store.read() as session:
        row = await session.get(Transfer, transfer_id)
    if row is None or row.deleted or (not ctx.is_admin
                                      and row.source_project_id != ctx.project_id):
        raise NotFound(f"Transfer {transfer_id} could not be found.")
    return row


async def list_transfers(svc: VolumeService, ctx: RequestContext,
                         all_tenants: bool) -> list[Transfer]:
    async with svc.store.read() as session:
        stmt = select(Transfer).where(~Transfer.deleted)
        if not (ctx.is_admin and all_tenants):
            stmt = stmt.where(Transfer.source_project_id == ctx.project_id)
        return sorted((await session.execute(stmt)).scalars().all(),
                      key=lambda r: r.created_at)


async def delete(svc: VolumeService, ctx: RequestContext, transfer_id: str) -> None:
    row = await get(svc, ctx, transfer_id)
    async with svc.store.write() as session:
        current = await session.get(Transfer, row.id)
        if current is not None:
            current.deleted, current.deleted_at = True, utcnow()
        await cas_volume(session, row.volume_id, ["awaiting-transfer"], status="available")


async def accept(svc: VolumeService, ctx: RequestContext, transfer_id: str,
                 auth_key: str) -> Transfer:
    async with svc.store.read() as session:
        row = await session.get(Transfer, transfer_id)
    if row is None or row.deleted:
        raise NotFound(f"Transfer {transfer_id} could not be found.")
    if not hmac.compare_digest(_hash(row.salt, auth_key), row.crypt_hash):
        raise BadRequest(f"Invalid auth key: Attempt to transfer {transfer_id} with invalid "
                         "auth key.")
    project = ctx.project_id or ""
    await quotas.ensure_lock(svc.store, project)
    async with svc.store.write() as session:
        vol = await session.get(Volume, row.volume_id)
        if vol is None or vol.deleted:
            raise NotFound(f"Volume {row.volume_id} could not be found.")
        vtype = await session.get(VolumeType, vol.volume_type_id or "")
        await quotas.lock(session, project)
        await quotas.check(session, svc.conf.quotas, project,
                           {"volumes": 1, "gigabytes": vol.size},
                           vtype.name if vtype else None, vol.volume_type_id)
        if not await cas_volume(session, vol.id, ["awaiting-transfer"], status="available",
                                project_id=project, user_id=ctx.user_id or ""):
            raise InvalidState("Invalid volume: the volume is not awaiting a transfer.")
        snaps = (await session.execute(select(Snapshot).where(
            Snapshot.volume_id == vol.id, ~Snapshot.deleted))).scalars()
        for snap in snaps:
            if not row.no_snapshots:
                snap.project_id, snap.user_id = project, ctx.user_id or ""
        current = await session.get(Transfer, row.id)
        if current is not None:
            current.accepted, current.destination_project_id = True, project
            current.deleted, current.deleted_at = True, utcnow()
    return row
