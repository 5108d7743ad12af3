"""Volumes attached to servers (``os-volume_attachments``): the block device mappings.

Attach (Nova's flow with the attachments API): check the server (not locked, a state that
allows it) and the volume (the caller's own view: 404 if they cannot see it, 400 if it is
not available or already on this server), reserve it with an attachment (no connector yet),
record the mapping, then ask the server's agent to export, plug and complete it. A failure
removes the mapping and the attachment, so nothing is left half-made.

Detach: the agent unplugs the volume and deletes the attachment (and with it the export),
then the mapping goes. The root volume of a server booted from a volume cannot be detached.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Final

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.bus import BusError, RemoteError
from stackling.clients.volume import VolumeClient, VolumeNotFound, VolumeRefused
from stackling.common.context import RequestContext
from stackling.common.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    StacklingError,
)
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.compute import states
from stackling.compute.models import BlockDeviceMapping, Instance
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import get_row, invalid_state, locked
from stackling.compute.volume_rpcapi import AttachVolume, DetachVolume, VolumeAgentAPI
from stackling.db.base import table_of

#: Nova's check_instance_state for attach/detach (shelved servers are not offered here)
ALLOWED_STATES = frozenset({states.ACTIVE, states.PAUSED, states.STOPPED, states.RESIZED})
_DEVICE = re.compile(r"^/dev/[a-z]+[a-z0-9]*$")


@dataclass(frozen=True)
class AttachRequest:
    volume_id: str
    device: str | None = None
    tag: str | None = None
    delete_on_termination: bool = False


def volume_client(svc: ComputeService) -> VolumeClient:
    if svc.images is None:
        raise ServiceUnavailable("This cloud has no block storage service.")
    return VolumeClient(svc.images.session)


async def list_mappings(svc: ComputeService, uuid: str) -> list[BlockDeviceMapping]:
    async with svc.store.read() as session:
        await get_row(session, uuid)
        return list((await session.execute(select(BlockDeviceMapping).where(
            BlockDeviceMapping.instance_uuid == uuid,
            BlockDeviceMapping.destination_type == "volume",
            BlockDeviceMapping.volume_id.is_not(None)).order_by(BlockDeviceMapping.id))
        ).scalars())


async def get_mapping(svc: ComputeService, uuid: str, volume_id: str) -> BlockDeviceMapping:
    for bdm in await list_mappings(svc, uuid):
        if bdm.volume_id == volume_id:
            return bdm
    raise NotFound(f"Volume {volume_id} is not attached to server {uuid}.")


async def set_delete_on_termination(svc: ComputeService, uuid: str, volume_id: str,
                                    value: bool) -> None:
    async with svc.store.write() as session:
        await get_row(session, uuid)
        await session.execute(update(BlockDeviceMapping).where(
            BlockDeviceMapping.instance_uuid == uuid,
            BlockDeviceMapping.volume_id == volume_id).values(delete_on_termination=value)
            .execution_options(synchronize_session=False))


def _check_server(ctx: RequestContext, row: Instance, action: str) -> None:
    if row.locked and not ctx.is_admin:
        raise locked(row.uuid)
    if row.vm_state not in ALLOWED_STATES or row.task_state is not None:
        raise invalid_state(row, action)


def _next_device(taken: set[str]) -> str:
    for letter in string.ascii_lowercase[1:]:  # vda is the root disk
        name = f"/dev/vd{letter}"
        if name not in taken:
            return name
    raise Conflict("The server has no free disk device name left.")


def remote(exc: BusError, what: str) -> StacklingError:
    """An agent's failure as the API error the user sees."""
    if isinstance(exc, RemoteError):
        message = exc.remote_message or what
        kind: type[StacklingError] = {400: BadRequest, 404: NotFound,
                                      409: Conflict}.get(exc.code, StacklingError)
        return kind(message)
    return ServiceUnavailable(f"{what}: the compute host did not answer ({exc}).")


async def attach(svc: ComputeService, ctx: RequestContext, uuid: str,
                 req: AttachRequest) -> BlockDeviceMapping:
    async with svc.store.read() as session:
        row = await get_row(session, uuid)
    _check_server(ctx, row, "attach_volume")
    if row.host is None:
        raise invalid_state(row, "attach_volume")
    if req.device is not None and not _DEVICE.match(req.device):
        raise BadRequest(f"The supplied device path ({req.device}) is invalid.")
    client = volume_client(svc)
    try:
        volume = await client.get(req.volume_id, token=ctx.token)
    except VolumeNotFound:
        raise NotFound(f"Volume {req.volume_id} could not be found.") from None
    mappings = await list_mappings(svc, uuid)
    if any(b.volume_id == req.volume_id for b in mappings):
        raise BadRequest(f"Invalid volume: volume {req.volume_id} already attached")
    if volume.status != "available" and not (volume.multiattach and volume.status == "in-use"):
        raise BadRequest(f"Invalid volume: volume '{req.volume_id}' status must be "
                         f"'available'. Currently in '{volume.status}'")
    taken = {b.device_name for b in mappings if b.device_name}
    if req.device is not None and req.device in taken:
        raise Conflict(f"The supplied device path ({req.device}) is in use.")
    device = req.device or _next_device(taken)
    try:
        attachment = await client.create_attachment(req.volume_id, uuid, token=ctx.token)
    except VolumeRefused as exc:
        raise BadRequest(f"Invalid volume: {exc.message}") from exc
    bdm = BlockDeviceMapping(
        uuid=new_uuid(), instance_uuid=uuid, source_type="volume", destination_type="volume",
        boot_index=None, device_name=device, volume_id=req.volume_id,
        volume_size=volume.size, delete_on_termination=req.delete_on_termination,
        tag=req.tag, attachment_id=attachment.id, created_at=utcnow())
    try:
        async with svc.store.write() as session:
            session.add(bdm)
        await VolumeAgentAPI(svc.bus).attach(row.host, AttachVolume(
            instance_uuid=uuid, volume_id=req.volume_id, attachment_id=attachment.id,
            device=device, request_id=ctx.request_id))
    except BaseException as exc:
        await _forget(svc, bdm.uuid)
        try:
            await client.delete_attachment(attachment.id)
        except StacklingError:
            pass
        if isinstance(exc, BusError):
            raise remote(exc, f"Attaching volume {req.volume_id} failed") from exc
        raise
    return bdm


async def _forget(svc: ComputeService, bdm_uuid: str) -> None:
    async with svc.store.write() as session:
        row = (await session.execute(select(BlockDeviceMapping).where(
            BlockDeviceMapping.uuid == bdm_uuid))).scalar_one_or_none()
        if row is not None:
            await session.delete(row)


async def detach(svc: ComputeService, ctx: RequestContext, uuid: str, volume_id: str) -> None:
    async with svc.store.read() as session:
        row = await get_row(session, uuid)
    bdm = await get_mapping(svc, uuid, volume_id)
    _check_server(ctx, row, "detach_volume")
    if bdm.boot_index == 0:
        raise BadRequest("Cannot detach a root device volume")
    if row.host is not None:
        try:
            await VolumeAgentAPI(svc.bus).detach(row.host, DetachVolume(
                instance_uuid=uuid, volume_id=volume_id, attachment_id=bdm.attachment_id,
                request_id=ctx.request_id))
        except BusError as exc:
            raise remote(exc, f"Detaching volume {volume_id} failed") from exc
    elif bdm.attachment_id:
        await volume_client(svc).delete_attachment(bdm.attachment_id)
    await _forget(svc, bdm.uuid)


_BD: Final = table_of(BlockDeviceMapping).c  # plain rows: every delete reads them
_VOLUME_BDMS: Final = select(_BD.volume_id, _BD.attachment_id, _BD.delete_on_termination).where(
    _BD.instance_uuid == bindparam("uuid"), _BD.volume_id.is_not(None))


async def release_refs(svc: ComputeService, uuid: str) -> list[dict[str, object]]:
    """What the agent releases after destroying the server: each volume's attachment and
    whether to delete the volume."""
    async with svc.store.read() as session:
        return await release_refs_in(session, uuid)


async def release_refs_in(session: AsyncSession, uuid: str) -> list[dict[str, object]]:
    """:func:`release_refs` in the caller's session."""
    rows = await session.execute(_VOLUME_BDMS, {"uuid": uuid})
    return [{"volume_id": volume_id, "attachment_id": attachment_id,
             "delete_on_termination": delete_on_termination}
            for volume_id, attachment_id, delete_on_termination in rows]


async def release_locally(svc: ComputeService, uuid: str) -> None:
    """A server deleted without its agent: delete the attachments and the volumes marked
    ``delete_on_termination`` from here."""
    refs = await release_refs(svc, uuid)
    if not refs:
        return
    client = volume_client(svc)
    for ref in refs:
        try:
            if ref["attachment_id"]:
                await client.delete_attachment(str(ref["attachment_id"]))
            if ref["delete_on_termination"]:
                await client.delete(str(ref["volume_id"]))
        except StacklingError:
            continue
