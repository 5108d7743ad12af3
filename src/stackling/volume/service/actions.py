"""Volume actions (``POST /volumes/{id}/action``) and the attachments API.

Two attach flows, as Cinder has them:

- the old one compute used before 3.44: ``os-reserve`` (available -> attaching),
  ``os-initialize_connection`` (the export), ``os-attach`` (-> in-use), ``os-begin_detaching``
  (in-use -> detaching), ``os-detach`` (-> available), ``os-terminate_connection``,
  ``os-unreserve`` / ``os-roll_detaching`` to back out;
- attachments (3.27+): create (-> reserved; with a connector straight to attaching and the
  connection info), update with the connector (-> attaching), ``os-complete`` (-> in-use),
  delete (-> available when it was the last attachment; the export is removed).

Every step is a compare-and-swap on the status: of two racing requests one gets 400.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from stackling.bus import RemoteError
from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, NotFound, ServiceUnavailable
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.volume.models import Attachment, Volume, VolumeType
from stackling.volume.rpcapi import (
    ConnectionInfo,
    ExtendVolume,
    InitializeConnection,
    TerminateConnection,
    UploadToImage,
    volume_topic,
)
from stackling.volume.service import quotas
from stackling.volume.service.cinder import VolumeService
from stackling.volume.service.common import InvalidState, cas_volume, cast, volume_row
from stackling.volume.service.types import find_type


def _bad_status(volume_id: str, status: str, wanted: str, action: str = "") -> InvalidState:
    return InvalidState(f"Invalid volume: Volume {volume_id} status must be {wanted}"
                        f"{f' to {action}' if action else ''}, but current status is: "
                        f"{status}.")


async def _move(svc: VolumeService, ctx: RequestContext, volume_id: str,
                expected: list[str], wanted_text: str, **values: Any) -> Volume:
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        if not await cas_volume(session, volume_id, expected, **values):
            raise _bad_status(volume_id, row.status, wanted_text)
        await session.refresh(row)
        return row


# -- simple actions ---------------------------------------------------------------------------
async def extend(svc: VolumeService, ctx: RequestContext, volume_id: str, new_size: int) -> None:
    async with svc.store.read() as session:
        row = await volume_row(session, ctx, volume_id)
        vtype = await session.get(VolumeType, row.volume_type_id or "")
    if row.status != "available":
        raise _bad_status(volume_id, row.status, "available", "extend")
    if new_size <= row.size:
        raise BadRequest(f"Invalid input received: New size for extend must be greater than "
                         f"current size. (current: {row.size}, extended: {new_size}).")
    project = row.project_id
    await quotas.ensure_lock(svc.store, project)
    async with svc.store.write() as session:
        await quotas.lock(session, project)
        await quotas.check(session, svc.conf.quotas, project,
                           {"gigabytes": new_size - row.size},
                           vtype.name if vtype else None, row.volume_type_id)
        if not await cas_volume(session, volume_id, ["available"], status="extending"):
            raise _bad_status(volume_id, row.status, "available", "extend")
    await cast(svc, row.host or "", ExtendVolume(volume_id=volume_id, new_size=new_size,
                                                 request_id=ctx.request_id))


async def set_flag(svc: VolumeService, ctx: RequestContext, volume_id: str, *,
                   bootable: bool | None = None, readonly: bool | None = None) -> None:
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        if bootable is not None:
            row.bootable = bootable
        if readonly is not None:
            if row.status not in ("available", "in-use") and not ctx.is_admin:
                raise _bad_status(volume_id, row.status, "available or in-use")
            row.admin_meta = {**row.admin_meta, "readonly": str(readonly)}
        row.updated_at = utcnow()


async def reset_status(svc: VolumeService, ctx: RequestContext, volume_id: str,
                       status: str | None, attach_status: str | None,
                       migration_status: str | None) -> None:
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        if status is not None:
            row.status = status
        if attach_status is not None:
            row.attach_status = attach_status
            if attach_status == "detached":
                for att in (await session.execute(select(Attachment).where(
                        Attachment.volume_id == volume_id, ~Attachment.deleted))).scalars():
                    att.deleted, att.attach_status, att.detach_time = True, "detached", utcnow()
        if migration_status is not None:
            row.migration_status = None if migration_status == "none" else migration_status
        row.updated_at = utcnow()


async def retype(svc: VolumeService, ctx: RequestContext, volume_id: str, new_type: str,
                 policy: str) -> None:
    """Retype within the backend (no migration): the new type's specs must still match the
    volume's pool, else 400 (``migration_policy=on-demand`` cannot move data yet)."""
    async with svc.store.read() as session:
        row = await volume_row(session, ctx, volume_id)
        vtype = await find_type(session, ctx, new_type)
        old = await session.get(VolumeType, row.volume_type_id or "")
    if row.status not in ("available", "in-use"):
        raise _bad_status(volume_id, row.status, "available or in-use", "retype")
    if vtype.id == row.volume_type_id:
        raise BadRequest("Invalid input received: New volume type must be different from "
                         "the original.")
    wanted = vtype.extra_specs.get("volume_backend_name")
    backend = (row.host or "").split("#")[-1]
    if wanted and row.host and wanted != backend:
        raise BadRequest("Invalid input received: Retype needs a migration to another "
                         "backend, which this cloud does not do.")
    project = row.project_id
    await quotas.ensure_lock(svc.store, project)
    async with svc.store.write() as session:
        await quotas.lock(session, project)
        await quotas.check(session, svc.conf.quotas, project,
                           {"volumes": 1, "gigabytes": row.size}, vtype.name, vtype.id)
        if not await cas_volume(session, volume_id, ["available", "in-use"],
                                volume_type_id=vtype.id):
            raise _bad_status(volume_id, row.status, "available or in-use", "retype")
    _ = old


async def upload_to_image(svc: VolumeService, ctx: RequestContext, volume_id: str,
                          image_name: str, disk_format: str, container_format: str,
                          force: bool, visibility: str | None,
                          protected: bool) -> dict[str, Any]:
    if svc.images is None:
        raise BadRequest("Invalid input received: this cloud has no image service.")
    if disk_format not in ("raw", "qcow2"):
        raise BadRequest(f"Invalid input received: Unsupported disk format {disk_format}.")
    allowed = ["available", "in-use"] if force else ["available"]
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        if not await cas_volume(session, volume_id, allowed, status="uploading"):
            raise _bad_status(volume_id, row.status, " or ".join(allowed))
    body: dict[str, Any] = {"name": image_name, "disk_format": disk_format,
                            "container_format": container_format}
    if visibility:
        body["visibility"] = visibility
    if protected:
        body["protected"] = True
    try:
        image = await svc.images.create(body, token=ctx.token)
    except Exception:
        async with svc.store.write() as session:
            await cas_volume(session, volume_id, ["uploading"], status=row.status)
        raise
    await cast(svc, row.host or "", UploadToImage(volume_id=volume_id, image_id=image.id,
                                                  disk_format=disk_format,
                                                  request_id=ctx.request_id))
    return {"id": volume_id, "updated_at": None, "status": "uploading",
            "display_description": row.description, "size": row.size,
            "volume_type": None, "image_id": image.id, "container_format": container_format,
            "disk_format": disk_format, "image_name": image_name, "protected": protected,
            "visibility": visibility or "private"}


async def set_image_metadata(svc: VolumeService, ctx: RequestContext, volume_id: str,
                             items: dict[str, str]) -> dict[str, str]:
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        row.image_meta = {**row.image_meta, **items}
        return dict(row.image_meta)


async def unset_image_metadata(svc: VolumeService, ctx: RequestContext, volume_id: str,
                               key: str) -> None:
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        if key not in row.image_meta:
            raise NotFound(f"Glance metadata for volume {volume_id} and key {key} not found.")
        row.image_meta = {k: v for k, v in row.image_meta.items() if k != key}


# -- connections ------------------------------------------------------------------------------
async def _export(svc: VolumeService, row: Volume, connector: dict[str, Any],
                  request_id: str) -> dict[str, Any]:
    if not row.host:
        raise BadRequest(f"Invalid volume: Volume {row.id} is on no backend.")
    try:
        reply = await svc.bus.call(volume_topic(row.host), InitializeConnection(
            volume_id=row.id, connector=connector, request_id=request_id),
            timeout=svc.config.bus.call_timeout)
    except RemoteError as exc:
        raise BadRequest(f"Unable to create the export: {exc}") from exc
    if not isinstance(reply, ConnectionInfo):
        raise ServiceUnavailable("The volume worker gave no connection info.")
    info = dict(reply.connection_info)
    info.setdefault("data", {})
    access = "ro" if row.admin_meta.get("readonly") == "True" else "rw"
    info["data"] = {**info["data"], "access_mode": access, "volume_id": row.id}
    return info


async def _unexport(svc: VolumeService, row: Volume, request_id: str) -> None:
    if row.host:
        await svc.bus.call(volume_topic(row.host), TerminateConnection(
            volume_id=row.id, request_id=request_id), timeout=svc.config.bus.call_timeout)


async def initialize_connection(svc: VolumeService, ctx: RequestContext, volume_id: str,
                                connector: dict[str, Any]) -> dict[str, Any]:
    row = await (_get(svc, ctx, volume_id))
    return await _export(svc, row, connector, ctx.request_id)


async def terminate_connection(svc: VolumeService, ctx: RequestContext,
                               volume_id: str) -> None:
    row = await _get(svc, ctx, volume_id)
    async with svc.store.read() as session:
        others = (await session.execute(select(Attachment.id).where(
            Attachment.volume_id == volume_id, ~Attachment.deleted,
            Attachment.attach_status == "attached"))).all()
    if len(others) <= 1:
        await _unexport(svc, row, ctx.request_id)


async def _get(svc: VolumeService, ctx: RequestContext, volume_id: str) -> Volume:
    async with svc.store.read() as session:
        return await volume_row(session, ctx, volume_id)


# -- the old attach flow ----------------------------------------------------------------------
async def reserve(svc: VolumeService, ctx: RequestContext, volume_id: str) -> None:
    row = await _get(svc, ctx, volume_id)
    expected = ["available", "in-use"] if row.multiattach else ["available"]
    await _move(svc, ctx, volume_id, expected, "available", status="attaching")


async def unreserve(svc: VolumeService, ctx: RequestContext, volume_id: str) -> None:
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        attached = (await session.execute(select(Attachment.id).where(
            Attachment.volume_id == volume_id, ~Attachment.deleted,
            Attachment.attach_status == "attached"))).first()
        await cas_volume(session, volume_id, ["attaching"],
                         status="in-use" if attached else "available")
        _ = row


async def attach(svc: VolumeService, ctx: RequestContext, volume_id: str,
                 instance_uuid: str | None, host_name: str | None, mountpoint: str,
                 mode: str) -> None:
    if mode not in ("rw", "ro"):
        raise BadRequest(f"Invalid input received: Invalid attaching mode '{mode}' for "
                         f"volume {volume_id}.")
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        if row.admin_meta.get("readonly") == "True" and mode != "ro":
            raise BadRequest(f"Invalid volume: Volume {volume_id} is read-only, attach it "
                             "in 'ro' mode.")
        if not await cas_volume(session, volume_id, ["attaching", "available"] +
                                (["in-use"] if row.multiattach else []),
                                status="in-use", attach_status="attached"):
            raise _bad_status(volume_id, row.status, "available or attaching")
        now = utcnow()
        session.add(Attachment(id=new_uuid(), volume_id=volume_id, instance_uuid=instance_uuid,
                               attached_host=host_name, mountpoint=mountpoint,
                               attach_status="attached", attach_mode=mode, attach_time=now,
                               created_at=now, updated_at=now))
        row.admin_meta = {**row.admin_meta, "attached_mode": mode}


async def begin_detaching(svc: VolumeService, ctx: RequestContext, volume_id: str) -> None:
    await _move(svc, ctx, volume_id, ["in-use"], "in-use", status="detaching")


async def roll_detaching(svc: VolumeService, ctx: RequestContext, volume_id: str) -> None:
    async with svc.store.write() as session:
        await volume_row(session, ctx, volume_id)
        await cas_volume(session, volume_id, ["detaching"], status="in-use")


async def detach(svc: VolumeService, ctx: RequestContext, volume_id: str,
                 attachment_id: str | None) -> None:
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        stmt = select(Attachment).where(Attachment.volume_id == volume_id, ~Attachment.deleted)
        if attachment_id:
            stmt = stmt.where(Attachment.id == attachment_id)
        atts = list((await session.execute(stmt)).scalars().all())
        if row.status == "maintenance":
            raise BadRequest("Invalid volume: The volume cannot be detached in maintenance "
                             "mode.")
        if attachment_id and not atts:
            raise NotFound(f"Volume attachment {attachment_id} could not be found.")
        if not atts and row.status in ("available", "in-use", "detaching"):
            # as Cinder: a detach of a volume that has no attachment (left) only records
            # it detached, so a repeated or late detach (a cleanup) is not an error
            await cas_volume(session, volume_id, [row.status], status="available",
                             attach_status="detached")
            return
        if row.status not in ("in-use", "detaching") or not atts:
            raise _bad_status(volume_id, row.status, "in-use or detaching", "detach")
        if len(atts) > 1 and not attachment_id:
            raise BadRequest("Invalid volume: Volume has multiple attachments, specify "
                             "attachment_id.")
        target = atts[0]
        target.deleted, target.attach_status, target.detach_time = True, "detached", utcnow()
        left = len(atts) - 1 if not attachment_id else len([
            a for a in (await session.execute(select(Attachment).where(
                Attachment.volume_id == volume_id, ~Attachment.deleted,
                Attachment.id != target.id))).scalars()])
        values: dict[str, Any] = ({"status": "in-use"} if left else
                                  {"status": "available", "attach_status": "detached"})
        await cas_volume(session, volume_id, ["in-use", "detaching"], **values)
        if not left:
            row.admin_meta = {k: v for k, v in row.admin_meta.items() if k != "attached_mode"}


# -- attachments API (3.27+) ------------------------------------------------------------------
async def create_attachment(svc: VolumeService, ctx: RequestContext, volume_id: str,
                            instance_uuid: str | None, connector: dict[str, Any] | None,
                            mode: str) -> Attachment:
    async with svc.store.write() as session:
        row = await volume_row(session, ctx, volume_id)
        if mode == "rw" and row.admin_meta.get("readonly") == "True":
            mode = "ro"
        if row.attach_status == "attached" or row.status in ("in-use", "reserved",
                                                             "attaching"):
            if not row.multiattach:
                raise _bad_status(volume_id, row.status, "available or downloading")
            expected = ["available", "in-use", "reserved", "attaching"]
        else:
            expected = ["available", "downloading"]
        status = "reserved" if row.status == "available" else row.status
        if not await cas_volume(session, volume_id, expected, status=status):
            raise _bad_status(volume_id, row.status, "available or downloading")
        now = utcnow()
        att = Attachment(id=new_uuid(), volume_id=volume_id, instance_uuid=instance_uuid,
                         attach_status="reserved", attach_mode=mode, created_at=now,
                         updated_at=now)
        session.add(att)
    if connector:
        return await update_attachment(svc, ctx, att.id, connector)
    return att


async def attachment_row(svc: VolumeService, ctx: RequestContext, attachment_id: str
                         ) -> tuple[Attachment, Volume]:
    async with svc.store.read() as session:
        att = await session.get(Attachment, attachment_id)
        vol = await session.get(Volume, att.volume_id) if att is not None else None
    if att is None or att.deleted or vol is None or (
            not ctx.is_admin and vol.project_id != ctx.project_id):
        raise NotFound(f"VolumeAttachment {attachment_id} could not be found.")
    return att, vol


async def update_attachment(svc: VolumeService, ctx: RequestContext, attachment_id: str,
                            connector: dict[str, Any]) -> Attachment:
    att, vol = await attachment_row(svc, ctx, attachment_id)
    info = await _export(svc, vol, connector, ctx.request_id)
    info["data"]["access_mode"] = att.attach_mode
    async with svc.store.write() as session:
        row = await session.get(Attachment, attachment_id)
        if row is None or row.deleted:
            raise NotFound(f"VolumeAttachment {attachment_id} could not be found.")
        row.connector, row.connection_info = connector, info
        row.attached_host = str(connector.get("host") or "") or None
        row.mountpoint = connector.get("mountpoint") or row.mountpoint
        row.attach_status, row.updated_at = "attaching", utcnow()
        await cas_volume(session, vol.id, ["reserved"], status="attaching")
    return row


async def complete_attachment(svc: VolumeService, ctx: RequestContext,
                              attachment_id: str) -> None:
    _att, vol = await attachment_row(svc, ctx, attachment_id)
    async with svc.store.write() as session:
        row = await session.get(Attachment, attachment_id)
        if row is None:
            raise NotFound(f"VolumeAttachment {attachment_id} could not be found.")
        row.attach_status, row.attach_time = "attached", utcnow()
        await cas_volume(session, vol.id, ["attaching", "reserved", "in-use"], status="in-use",
                         attach_status="attached")
        v = await session.get(Volume, vol.id)
        if v is not None:
            v.admin_meta = {**v.admin_meta, "attached_mode": row.attach_mode}


async def delete_attachment(svc: VolumeService, ctx: RequestContext,
                            attachment_id: str) -> None:
    att, vol = await attachment_row(svc, ctx, attachment_id)
    async with svc.store.read() as session:
        others = (await session.execute(select(Attachment.id).where(
            Attachment.volume_id == vol.id, ~Attachment.deleted,
            Attachment.id != attachment_id))).all()
    if att.connection_info and not others:
        await _unexport(svc, vol, ctx.request_id)
    async with svc.store.write() as session:
        row = await session.get(Attachment, attachment_id)
        if row is not None:
            row.deleted, row.attach_status, row.detach_time = True, "detached", utcnow()
        attached = (await session.execute(select(Attachment.id).where(
            Attachment.volume_id == vol.id, ~Attachment.deleted,
            Attachment.attach_status == "attached"))).first()
        if others and attached:
            await cas_volume(session, vol.id, ["in-use", "detaching", "attaching", "reserved"],
                             status="in-use")
        elif others:
            await cas_volume(session, vol.id, ["in-use", "detaching", "attaching", "reserved"],
                             status="reserved", attach_status="detached")
        else:
            await cas_volume(session, vol.id, ["in-use", "detaching", "attaching", "reserved",
                                               "error_attaching"],
                             status="available", attach_status="detached")
            v = await session.get(Volume, vol.id)
            if v is not None:
                v.admin_meta = {k: x for k, x in v.admin_meta.items() if k != "attached_mode"}


async def list_attachments(svc: VolumeService, ctx: RequestContext, all_tenants: bool,
                           filters: dict[str, str]) -> list[Attachment]:
    async with svc.store.read() as session:
        stmt = select(Attachment, Volume).join(Volume, Volume.id == Attachment.volume_id) \
            .where(~Attachment.deleted)
        if not (ctx.is_admin and all_tenants):
            stmt = stmt.where(Volume.project_id == ctx.project_id)
        rows = [a for a, _ in (await session.execute(stmt)).all()]
    if "volume_id" in filters:
        rows = [r for r in rows if r.volume_id == filters["volume_id"]]
    if "instance_id" in filters:
        rows = [r for r in rows if r.instance_uuid == filters["instance_id"]]
    return sorted(rows, key=lambda r: r.created_at, reverse=True)
