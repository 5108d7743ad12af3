"""The volume worker of one storage node (cinder-volume, plus cinder-backup's work for the
volumes of this node): serves ``volume.<node>@<backend>``, drives the backend, and moves
rows out of their busy states.

Every handler ends in a clear state: success moves the row on (``creating -> available``),
a failure sets the matching error status with a message users can read, and the backend's
own all-or-nothing contract (``stackling.volume.backends.base``) means no partial file or
export is left behind. Every ``heartbeat_interval`` the worker writes its pool capacity into
the services table, where the scheduler reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from stackling.bus import Message, Subscription
from stackling.common.blocking import run_blocking
from stackling.common.errors import BadRequest, NotFound
from stackling.common.timeutils import utcnow
from stackling.volume.backends import Backend, BackendError
from stackling.volume.backup.store import BackupError, BackupStore
from stackling.volume.models import Attachment, Backup, Service, Snapshot, Volume
from stackling.volume.rpcapi import (
    ConnectionInfo,
    CreateBackup,
    CreateSnapshot,
    CreateVolume,
    DeleteBackup,
    DeleteSnapshot,
    DeleteVolume,
    ExtendVolume,
    InitializeConnection,
    RestoreBackup,
    TerminateConnection,
    UploadToImage,
    volume_topic,
)
from stackling.volume.service import groups, messages
from stackling.volume.service.cinder import VolumeService
from stackling.volume.service.common import (
    BACKUP_BINARY,
    SCHEDULER_BINARY,
    VOLUME_BINARY,
    cas_snapshot,
    cas_volume,
)
from stackling.volume.service.volumes import finish_delete

LOG = logging.getLogger(__name__)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (BackendError, BackupError)):
        return str(exc)
    if isinstance(exc, (NotFound, BadRequest)):
        return exc.message
    return "An unexpected error occurred in the volume backend."


class VolumeManager:
    def __init__(self, svc: VolumeService, backend: Backend, backups: BackupStore,
                 node: str) -> None:
        self.svc = svc
        self.backend = backend
        self.backups = backups
        self.node = node
        self.host = f"{node}@{backend.name}"
        self.pool = f"{self.host}#{backend.name}"
        self._subscription: Subscription | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.svc.recover(self.host)
        exports = await self._recorded_exports()
        await self.backend.start(exports)
        await self.backups.start()
        await self.report()
        self._subscription = await self.svc.bus.serve(volume_topic(self.host), self.handle)
        self._heartbeat = asyncio.create_task(self._beat(), name=f"volume {self.host} beat")

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._subscription is not None:
            await self._subscription.cancel()
        await self.backend.close()

    async def _recorded_exports(self) -> dict[str, dict[str, Any]]:
        async with self.svc.store.read() as session:
            rows = (await session.execute(
                select(Attachment).join(Volume, Volume.id == Attachment.volume_id)
                .where(~Attachment.deleted, Attachment.connection_info.is_not(None),
                       Volume.host == self.pool, ~Volume.deleted))).scalars().all()
        return {r.volume_id: dict(r.connection_info or {}) for r in rows}

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.svc.conf.heartbeat_interval)
            try:
                await self.report()
            except Exception:
                LOG.exception("volume %s: capacity report failed", self.host)

    async def report(self) -> None:
        cap = await self.backend.capacity()
        pool = {"name": self.pool, "total_gb": cap.total_gb, "free_gb": cap.free_gb,
                "provisioned_gb": cap.provisioned_gb, "thin": cap.thin,
                "max_over_subscription_ratio": cap.max_over_subscription_ratio,
                "reserved_percentage": cap.reserved_percentage,
                "capabilities": {"volume_backend_name": self.backend.name,
                                 "storage_protocol": self.backend.protocol,
                                 "vendor_name": "stackling", "driver_version": "1.0",
                                 "multiattach": True, "QoS_support": False,
                                 "thin_provisioning_support": cap.thin,
                                 "thick_provisioning_support": not cap.thin}}
        now = utcnow()
        zone = self.svc.conf.default_availability_zone
        async with self.svc.store.write() as session:
            for binary, host, caps in ((VOLUME_BINARY, self.host, {"pools": [pool]}),
                                       (BACKUP_BINARY, self.node, {}),
                                       (SCHEDULER_BINARY, self.node, {})):
                row = (await session.execute(select(Service).where(
                    Service.host == host, Service.binary == binary))).scalars().first()
                if row is None:
                    session.add(Service(host=host, binary=binary, zone=zone,
                                        capabilities=caps, created_at=now, updated_at=now))
                else:
                    row.capabilities, row.updated_at, row.zone = caps, now, zone

    # -- dispatch ---------------------------------------------------------------------------
    async def handle(self, message: Message, context: dict[str, Any]) -> Message | None:
        if isinstance(message, InitializeConnection):
            return ConnectionInfo(connection_info=await self.backend.export(
                message.volume_id, message.connector))
        if isinstance(message, TerminateConnection):
            await self.backend.unexport(message.volume_id)
            return None
        handlers = {CreateVolume: self.create_volume, DeleteVolume: self.delete_volume,
                    ExtendVolume: self.extend_volume, CreateSnapshot: self.create_snapshot,
                    DeleteSnapshot: self.delete_snapshot, CreateBackup: self.create_backup,
                    RestoreBackup: self.restore_backup, DeleteBackup: self.delete_backup,
                    UploadToImage: self.upload_to_image}
        handler = handlers.get(type(message))
        if handler is None:
            LOG.error("volume %s: unexpected message %s", self.host, message.NAME)
            return None
        await handler(message)  # type: ignore[operator]
        return None

    # -- volumes ----------------------------------------------------------------------------
    async def create_volume(self, msg: CreateVolume) -> None:
        async with self.svc.store.read() as session:
            row = await session.get(Volume, msg.volume_id)
        if row is None or row.deleted or row.status != "creating":
            return
        try:
            if row.snapshot_id:
                await self.backend.create_from_snapshot(row.snapshot_id, row.id, row.size)
            elif row.source_volid:
                await self.backend.clone(row.source_volid, row.id, row.size)
            elif row.image_id:
                await self._from_image(row)
            elif row.backup_id:
                await self.backend.create(row.id, row.size)
                await self.backend.write(row.id, self.backups.get(
                    await self._data_key(row.backup_id)))
            else:
                await self.backend.create(row.id, row.size)
        except Exception as exc:
            if not isinstance(exc, (BackendError, BackupError)):
                LOG.exception("volume %s: create failed", row.id)
            with contextlib.suppress(Exception):
                await self.backend.delete_volume(row.id)
            async with self.svc.store.write() as session:
                await cas_volume(session, row.id, ["creating"], status="error",
                                 error=_reason(exc))
            await messages.record(self.svc.store, row.project_id, msg.request_id, "VOLUME",
                                  row.id, messages.CREATE_FAILED)
            if row.group_id:
                await groups.refresh_group(self.svc, row.group_id)
            return
        async with self.svc.store.write() as session:
            ok = await cas_volume(session, row.id, ["creating"], status="available",
                                  launched_at=utcnow(), error=None)
        if not ok:  # deleted (forced) meanwhile: do not leak the new file
            await self.backend.delete_volume(row.id)
        if row.group_id:
            await groups.refresh_group(self.svc, row.group_id)

    async def _from_image(self, row: Volume) -> None:
        images = self.svc.images
        if images is None:
            raise BackendError("This cloud has no image service.")
        tmpdir = self.svc.config.data_dir / "volume-tmp"
        await run_blocking(tmpdir.mkdir, parents=True, exist_ok=True)
        fd, name = await run_blocking(tempfile.mkstemp, dir=tmpdir, prefix="image-")
        path = Path(name)
        try:
            with open(fd, "wb") as fh:  # noqa: ASYNC230 (small sync writes per chunk)
                record = await images.download(row.image_id or "", fh.write)
            fmt = str(record.get("disk_format") or "raw")
            await self.backend.create_from_data(row.id, row.size, _file_chunks(path), fmt)
        finally:
            await run_blocking(path.unlink, missing_ok=True)

    async def delete_volume(self, msg: DeleteVolume) -> None:
        if msg.cascade:
            async with self.svc.store.read() as session:
                snaps = (await session.execute(select(Snapshot.id).where(
                    Snapshot.volume_id == msg.volume_id, ~Snapshot.deleted,
                    Snapshot.status == "deleting"))).scalars().all()
            for snap_id in snaps:
                await self.delete_snapshot(DeleteSnapshot(snapshot_id=snap_id,
                                                          request_id=msg.request_id))
            async with self.svc.store.write() as session:
                left = (await session.execute(select(Snapshot.id).where(
                    Snapshot.volume_id == msg.volume_id, ~Snapshot.deleted))).first()
                if left is not None:  # a snapshot failed to go: keep the volume whole
                    await cas_volume(session, msg.volume_id, ["deleting"],
                                     status="error_deleting",
                                     error="A snapshot of the volume could not be deleted.")
                    return
        try:
            await self.backend.delete_volume(msg.volume_id)
        except Exception as exc:
            LOG.error("volume %s: delete failed: %s", msg.volume_id, exc)
            async with self.svc.store.write() as session:
                await cas_volume(session, msg.volume_id, ["deleting"], status="error_deleting",
                                 error=_reason(exc))
            return
        await finish_delete(self.svc, msg.volume_id)

    async def extend_volume(self, msg: ExtendVolume) -> None:
        try:
            await self.backend.extend(msg.volume_id, msg.new_size)
        except Exception as exc:
            async with self.svc.store.write() as session:
                await cas_volume(session, msg.volume_id, ["extending"],
                                 status="error_extending", error=_reason(exc))
            return
        async with self.svc.store.write() as session:
            row = await session.get(Volume, msg.volume_id)
            back = "in-use" if row is not None and row.attach_status == "attached" \
                else "available"
            await cas_volume(session, msg.volume_id, ["extending"], status=back,
                             size=msg.new_size)

    async def upload_to_image(self, msg: UploadToImage) -> None:
        images = self.svc.images
        try:
            if images is None:
                raise BackendError("This cloud has no image service.")
            if msg.disk_format == "raw":
                await images.upload(msg.image_id, self.backend.read(msg.volume_id))
            else:
                await self._upload_converted(msg)
        except Exception as exc:
            LOG.error("volume %s: upload to image failed: %s", msg.volume_id, exc)
            if images is not None:  # do not leave a queued image behind
                with contextlib.suppress(Exception):
                    await images.delete(msg.image_id)
        async with self.svc.store.write() as session:
            row = await session.get(Volume, msg.volume_id)
            back = "in-use" if row is not None and row.attach_status == "attached" \
                else "available"
            await cas_volume(session, msg.volume_id, ["uploading"], status=back)

    async def _upload_converted(self, msg: UploadToImage) -> None:
        """Stage the raw data, let qemu-img convert it, upload the result."""
        assert self.svc.images is not None
        tmpdir = self.svc.config.data_dir / "volume-tmp"
        await run_blocking(tmpdir.mkdir, parents=True, exist_ok=True)
        raw = tmpdir / f"upload-{msg.volume_id}.raw"
        out = tmpdir / f"upload-{msg.volume_id}.{msg.disk_format}"
        try:
            fh = await run_blocking(raw.open, "wb")
            try:
                async for chunk in self.backend.read(msg.volume_id):
                    await run_blocking(fh.write, chunk)
            finally:
                fh.close()
            await run_blocking(_convert, raw, out, msg.disk_format)
            await self.svc.images.upload(msg.image_id, _file_chunks(out))
        finally:
            await run_blocking(raw.unlink, missing_ok=True)
            await run_blocking(out.unlink, missing_ok=True)

    # -- snapshots --------------------------------------------------------------------------
    async def create_snapshot(self, msg: CreateSnapshot) -> None:
        async with self.svc.store.read() as session:
            snap = await session.get(Snapshot, msg.snapshot_id)
        if snap is None or snap.status != "creating":
            return
        try:
            await self.backend.create_snapshot(snap.volume_id, snap.id)
        except Exception as exc:
            async with self.svc.store.write() as session:
                await cas_snapshot(session, snap.id, ["creating"], status="error",
                                   error=_reason(exc))
        else:
            async with self.svc.store.write() as session:
                ok = await cas_snapshot(session, snap.id, ["creating"], status="available",
                                        progress="100%")
            if not ok:
                await self.backend.delete_snapshot(snap.id)
        if snap.group_snapshot_id:
            await groups.refresh_group_snapshot(self.svc, snap.group_snapshot_id)

    async def delete_snapshot(self, msg: DeleteSnapshot) -> None:
        try:
            await self.backend.delete_snapshot(msg.snapshot_id)
        except Exception as exc:
            async with self.svc.store.write() as session:
                await cas_snapshot(session, msg.snapshot_id, ["deleting"],
                                   status="error_deleting", error=_reason(exc))
            return
        now = utcnow()
        async with self.svc.store.write() as session:
            await cas_snapshot(session, msg.snapshot_id, ["deleting"], status="deleted",
                               deleted=True, deleted_at=now)
            snap = await session.get(Snapshot, msg.snapshot_id)
            gsnap = snap.group_snapshot_id if snap is not None else None
        if gsnap:
            await groups.refresh_group_snapshot(self.svc, gsnap)

    # -- backups ----------------------------------------------------------------------------
    async def create_backup(self, msg: CreateBackup) -> None:
        async with self.svc.store.read() as session:
            backup = await session.get(Backup, msg.backup_id)
        if backup is None or backup.status != "creating":
            return
        try:
            source = (self.backend.read(backup.volume_id) if not backup.snapshot_id
                      else self._snapshot_data(backup.snapshot_id))
            manifest = await self.backups.put(backup.container or backup.id, source)
        except Exception as exc:
            LOG.error("backup %s failed: %s", backup.id, exc)
            async with self.svc.store.write() as session:
                row = await session.get(Backup, backup.id)
                if row is not None:
                    row.status, row.fail_reason = "error", _reason(exc)
                await self._volume_back(session, backup.volume_id, "backing-up")
            return
        async with self.svc.store.write() as session:
            row = await session.get(Backup, backup.id)
            if row is not None:
                row.status, row.checksum, row.updated_at = "available", manifest.digest, utcnow()
                row.object_count = sum(1 for c in manifest.chunks if c[2] != "zero")
            await self._volume_back(session, backup.volume_id, "backing-up")

    async def _snapshot_data(self, snapshot_id: str) -> AsyncIterator[bytes]:
        """A snapshot's data: a temporary volume made from it, read, then removed."""
        temp = f"backup-{snapshot_id}"
        async with self.svc.store.read() as session:
            snap = await session.get(Snapshot, snapshot_id)
        size = snap.size if snap is not None else 1
        await self.backend.create_from_snapshot(snapshot_id, temp, size)
        try:
            async for chunk in self.backend.read(temp):
                yield chunk
        finally:
            await self.backend.delete_volume(temp)

    async def _volume_back(self, session: Any, volume_id: str, busy: str) -> None:
        row = await session.get(Volume, volume_id)
        if row is not None:
            back = "in-use" if row.attach_status == "attached" else "available"
            await cas_volume(session, volume_id, [busy], status=back)

    async def _data_key(self, backup_id: str) -> str:
        async with self.svc.store.read() as session:
            row = await session.get(Backup, backup_id)
        return (row.container or row.id) if row is not None else backup_id

    async def restore_backup(self, msg: RestoreBackup) -> None:
        try:
            await self.backend.write(msg.volume_id, self.backups.get(
                await self._data_key(msg.backup_id)))
        except Exception as exc:
            LOG.error("restore of backup %s failed: %s", msg.backup_id, exc)
            async with self.svc.store.write() as session:
                await cas_volume(session, msg.volume_id, ["restoring-backup"],
                                 status="error_restoring", error=_reason(exc))
                row = await session.get(Backup, msg.backup_id)
                if row is not None and row.status == "restoring":
                    row.status, row.fail_reason = "available", _reason(exc)
            return
        async with self.svc.store.write() as session:
            row = await session.get(Backup, msg.backup_id)
            saved = dict(row.volume_meta) if row is not None else {}
            target = await session.get(Volume, msg.volume_id)
            if target is not None and saved:
                target.meta = {**target.meta, **saved.get("metadata", {})}
                target.bootable = bool(saved.get("bootable", target.bootable))
                target.image_meta = dict(saved.get("image_meta") or target.image_meta)
            await cas_volume(session, msg.volume_id, ["restoring-backup"], status="available")
            if row is not None and row.status == "restoring":
                row.status, row.restore_volume_id = "available", None

    async def delete_backup(self, msg: DeleteBackup) -> None:
        """The data goes with the last backup row that points at it (an imported record
        shares its original's data)."""
        key = await self._data_key(msg.backup_id)
        async with self.svc.store.read() as session:
            sharing = (await session.execute(select(Backup.id).where(
                Backup.container == key, ~Backup.deleted, Backup.id != msg.backup_id))).first()
        try:
            if sharing is None:
                await self.backups.delete(key)
        except Exception as exc:
            async with self.svc.store.write() as session:
                row = await session.get(Backup, msg.backup_id)
                if row is not None:
                    row.status, row.fail_reason = "error_deleting", _reason(exc)
            return
        async with self.svc.store.write() as session:
            row = await session.get(Backup, msg.backup_id)
            if row is not None:
                row.status, row.deleted, row.deleted_at = "deleted", True, utcnow()


def _convert(source: Path, dest: Path, fmt: str) -> None:
    done = subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", fmt, str(source),
                           str(dest)], capture_output=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise BackendError(f"Converting the volume to {fmt} failed")


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    fh = await run_blocking(path.open, "rb")
    try:
        while chunk := await run_blocking(fh.read, 1 << 20):
            yield chunk
    finally:
        fh.close()
