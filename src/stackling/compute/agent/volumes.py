"""The agent's side of block storage: plug volumes into guests and unplug them.

The attachments API flow (Nova's since Queens), over REST with the service token:

- attach: ``PUT /attachments/{id}`` with this host's connector (the volume service exports
  the volume and answers the connection info: ``file`` with a path, ``nbd`` with a
  host/port/export), turn that into a QMP ``blockdev-add`` node, ``driver.attach_volume``,
  then ``os-complete`` (the volume is in-use). Any failure unplugs what was plugged and
  deletes the attachment, so no export is left behind.
- detach: ``driver.detach_volume`` then ``DELETE /attachments/{id}`` (the export goes).
- terminate: after the VM is destroyed, delete every attachment and the volumes marked
  ``delete_on_termination``.
"""

from __future__ import annotations

import contextlib
import logging
import platform
from dataclasses import replace
from typing import Any

from stackling.clients.image import ImageClient
from stackling.clients.volume import VolumeClient
from stackling.common.errors import BadRequest, Conflict, NotFound, StacklingError
from stackling.compute.rpcapi import InstanceInfo
from stackling.compute.virt.driver import (
    ComputeDriver,
    ImageMeta,
    InstanceNotFound,
    SpawnError,
    VirtError,
)
from stackling.compute.volume_rpcapi import AttachVolume, DetachVolume, VolumeDone

log = logging.getLogger("stackling.compute.agent.volumes")


class VolumeAttachFailed(StacklingError):
    code = 500


def connector(host: str, protocols: frozenset[str]) -> dict[str, Any]:
    """What this host tells the volume service about how it connects (os-brick's
    connector properties, plus the protocols the hypervisor can plug)."""
    return {"host": host, "ip": "127.0.0.1", "platform": platform.machine() or "x86_64",
            "os_type": "linux", "multipath": False, "initiator": f"stackling:{host}",
            "protocols": sorted(protocols)}


def blockdev(connection_info: dict[str, Any], protocols: frozenset[str]) -> dict[str, Any]:
    """The QMP ``blockdev-add`` protocol node (plus ``format``) of a connection info."""
    kind = str(connection_info.get("driver_volume_type") or "")
    data = dict(connection_info.get("data") or {})
    if kind not in protocols:
        raise BadRequest(f"This host cannot connect {kind or 'unknown'} volumes (it "
                         f"supports {', '.join(sorted(protocols)) or 'none'}).")
    read_only = data.get("access_mode") == "ro"
    fmt = str(data.get("format") or "raw")
    if kind == "file":
        if not data.get("device_path"):
            raise BadRequest("The volume service gave a file connection without a path.")
        return {"driver": "file", "filename": str(data["device_path"]), "format": fmt,
                "read_only": read_only}
    if kind == "nbd":
        if not data.get("host") or not data.get("port"):
            raise BadRequest("The volume service gave an NBD connection without an address.")
        return {"driver": "nbd", "server": {"type": "inet", "host": str(data["host"]),
                                            "port": str(data["port"])},
                "export": str(data.get("export_name") or ""), "format": fmt,
                "read_only": read_only}
    # other types (the memory backend): only drivers that keep volumes in memory take them
    return {"driver": kind, "format": fmt, "read_only": read_only, **data}


class VolumeAttacher:
    def __init__(self, host: str, driver: ComputeDriver, volumes: VolumeClient) -> None:
        self.host = host
        self.driver = driver
        self.volumes = volumes

    async def attach(self, instance: InstanceInfo, volume_id: str, attachment_id: str,
                     device: str | None = None) -> dict[str, Any]:
        """Export, plug, complete; returns the connection info. On failure nothing is left:
        the guest is as it was and the attachment (with its export) is deleted."""
        protocols = self.driver.volume_protocols
        conn = {**connector(self.host, protocols), **({"mountpoint": device} if device else {})}
        plugged = False
        try:
            att = await self.volumes.update_attachment(attachment_id, conn)
            node = blockdev(att.connection_info, protocols)
            await self.driver.attach_volume(instance, volume_id, node)
            plugged = True
            await self.volumes.complete_attachment(attachment_id)
            return att.connection_info
        except BaseException as exc:
            if plugged:
                with contextlib.suppress(VirtError):
                    await self.driver.detach_volume(instance, volume_id)
            with contextlib.suppress(StacklingError):
                await self.volumes.delete_attachment(attachment_id)
            if isinstance(exc, VirtError):
                raise VolumeAttachFailed(str(exc)) from exc
            raise

    async def detach(self, instance: InstanceInfo | None, volume_id: str,
                     attachment_id: str | None) -> None:
        """Unplug (a VM that is gone has nothing to unplug), then delete the attachment."""
        if instance is not None:
            try:
                await self.driver.detach_volume(instance, volume_id)
            except InstanceNotFound:
                pass
            except VirtError as exc:
                raise Conflict(f"Detaching volume {volume_id} from server {instance.uuid} "
                               f"failed: {exc}") from exc
        if attachment_id:
            await self.volumes.delete_attachment(attachment_id)

    async def release(self, volumes: list[dict[str, Any]]) -> None:
        """After the VM is gone: delete each attachment and the volumes marked
        ``delete_on_termination`` (errors are logged: the server delete goes on)."""
        for ref in volumes:
            volume_id = str(ref.get("volume_id") or "")
            try:
                if ref.get("attachment_id"):
                    await self.volumes.delete_attachment(str(ref["attachment_id"]))
                if volume_id and ref.get("delete_on_termination"):
                    await self.volumes.delete(volume_id)
            except StacklingError as exc:
                log.warning("releasing volume %s failed: %s", volume_id, exc)


async def replug(attacher: VolumeAttacher | None, instance: InstanceInfo,
                 attached: list[dict[str, str]]) -> None:
    """Plug volumes that stay attached into a guest made again (a rebuild): their
    attachments and exports are unchanged, so the connection info is read back."""
    if not attached:
        return
    if attacher is None:
        raise VolumeAttachFailed("this host has no volume client to plug the server's "
                                 "volumes again")
    protocols = attacher.driver.volume_protocols
    for ref in attached:
        att = await attacher.volumes.get_attachment(ref["attachment_id"])
        await attacher.driver.attach_volume(instance, ref["volume_id"],
                                            blockdev(att.connection_info, protocols))


async def handle(attacher: VolumeAttacher | None, message: AttachVolume | DetachVolume,
                 instance: InstanceInfo | None) -> VolumeDone:
    """The agent's answer to an attach/detach call."""
    if attacher is None:
        raise Conflict("This compute host has no block storage service to talk to.")
    if isinstance(message, AttachVolume):
        if instance is None:
            raise NotFound(f"Instance {message.instance_uuid} could not be found.")
        info = await attacher.attach(instance, message.volume_id, message.attachment_id,
                                     message.device)
        return VolumeDone(connection_info=info)
    await attacher.detach(instance, message.volume_id, message.attachment_id)
    return VolumeDone()


def volume_attacher(host: str, driver: ComputeDriver,
                    images: ImageClient | None) -> VolumeAttacher | None:
    """The attacher sharing the agent's service session (None without one)."""
    if images is None:
        return None
    return VolumeAttacher(host, driver, VolumeClient(images.session))


async def connect_boot(attacher: VolumeAttacher | None, instance: InstanceInfo,
                       image: ImageMeta, devices: list[dict[str, Any]]) -> ImageMeta:
    """Export the server's reserved volumes to this host; the image the driver boots
    from then carries the root volume's blockdev node."""
    if attacher is None:
        raise SpawnError("This compute host has no block storage service to boot from.",
                         retryable=False)
    protocols = attacher.driver.volume_protocols
    root: dict[str, Any] | None = None
    for ref in devices:
        att = await attacher.volumes.update_attachment(
            str(ref["attachment_id"]), connector(attacher.host, protocols))
        if ref.get("boot_index") == 0:
            root = blockdev(att.connection_info, protocols)
    return replace(image, root_volume=root) if root is not None else image


async def finish_boot(attacher: VolumeAttacher | None, instance: InstanceInfo,
                      devices: list[dict[str, Any]]) -> None:
    """After the spawn: plug the other volumes, complete every attachment."""
    assert attacher is not None
    protocols = attacher.driver.volume_protocols
    for ref in devices:
        if ref.get("boot_index") != 0:
            att = await attacher.volumes.get_attachment(str(ref["attachment_id"]))
            await attacher.driver.attach_volume(instance, str(ref["volume_id"]),
                                                blockdev(att.connection_info, protocols))
        await attacher.volumes.complete_attachment(str(ref["attachment_id"]))
