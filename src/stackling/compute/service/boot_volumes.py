"""Volumes a server is created with (block_device_mapping_v2 ``destination_type=volume``):
boot from a volume made from an image (``source_type=image``), from a blank one
(``source_type=blank``) or from an existing bootable volume (``source_type=volume``).

compute-api does the block storage side with the caller's own token, so the volumes belong
to the caller: it creates the volumes, waits until they are available, reserves each with
an attachment for the server and records volume and attachment on the mapping. The agent
then exports them to its host (``PUT /attachments``), boots from the root one and
completes the attachments. A failure deletes what was made here and fails the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import select

from stackling.clients.volume import VolumeClient, VolumeNotFound, VolumeRefused
from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, StacklingError
from stackling.compute.models import BlockDeviceMapping, RequestSpec
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.volume_attachments import volume_client

log = logging.getLogger("stackling.compute.boot_volumes")

#: how long compute-api waits for a new volume (made from an image) to be available
CREATE_TIMEOUT = 300.0


def check(devices: list[Any], count: int) -> None:
    """Shape checks of the volume mappings (Nova's 400s)."""
    for bd in devices:
        if bd.destination_type != "volume":
            continue
        if bd.source_type == "snapshot":
            raise BadRequest("Block Device Mapping is Invalid: booting from a volume "
                             "snapshot is not supported.")
        if bd.source_type in ("image", "blank") and not bd.volume_size:
            raise BadRequest("Block Device Mapping is Invalid: volume_size must be given "
                             f"to create a volume from {bd.source_type}.")
        if bd.source_type in ("image", "volume") and not bd.uuid:
            raise BadRequest("Block Device Mapping is Invalid: uuid is required.")
        if bd.source_type == "volume" and count > 1:
            raise BadRequest("Block Device Mapping is Invalid: multiple servers cannot boot "
                             "from one volume.")


async def check_volumes(svc: ComputeService, ctx: RequestContext, devices: list[Any]) -> None:
    """Existing volumes must be visible to the caller and available; a root one bootable."""
    client: VolumeClient | None = None
    for bd in devices:
        if bd.destination_type != "volume" or bd.source_type != "volume":
            continue
        client = client or volume_client(svc)
        try:
            volume = await client.get(str(bd.uuid), token=ctx.token)
        except VolumeNotFound:
            raise BadRequest(f"Block Device Mapping is Invalid: failed to get volume "
                             f"{bd.uuid}.") from None
        if volume.status != "available":
            raise BadRequest(f"Invalid volume: volume '{bd.uuid}' status must be "
                             f"'available'. Currently in '{volume.status}'")
        if bd.boot_index == 0 and not volume.bootable:
            raise BadRequest(f"Block Device {bd.uuid} is not bootable.")


async def provision(svc: ComputeService, ctx: RequestContext, uuid: str
                    ) -> list[dict[str, Any]]:
    """Make and reserve the server's volumes; returns what the agent needs
    (``{"volume_id", "attachment_id", "boot_index", "device_name"}`` each) and records it in
    the request spec. On failure deletes the volumes it made and raises."""
    async with svc.store.read() as session:
        rows = list((await session.execute(select(BlockDeviceMapping).where(
            BlockDeviceMapping.instance_uuid == uuid,
            BlockDeviceMapping.destination_type == "volume").order_by(
            BlockDeviceMapping.id))).scalars())
    if not rows:
        return []
    client = volume_client(svc)
    made: list[str] = []
    attachments: list[str] = []
    out: list[dict[str, Any]] = []
    try:
        for bdm in rows:
            volume_id = bdm.volume_id
            if bdm.source_type in ("image", "blank"):
                volume = await client.create(int(bdm.volume_size or 1), name=f"{uuid}-vol",
                                             image_id=bdm.image_id,
                                             volume_type=bdm.volume_type, token=ctx.token)
                made.append(volume.id)
                volume_id = volume.id
                await _wait_available(client, volume.id, ctx.token)
            assert volume_id is not None
            att = await client.create_attachment(volume_id, uuid, token=ctx.token)
            attachments.append(att.id)
            device = bdm.device_name or ("/dev/vda" if bdm.boot_index == 0 else
                                         f"/dev/vd{'bcdefghijklmnopqrstuvwxyz'[len(out)]}")
            out.append({"volume_id": volume_id, "attachment_id": att.id,
                        "boot_index": bdm.boot_index, "device_name": device})
    except (StacklingError, TimeoutError) as exc:
        for attachment_id in attachments:
            await _quietly(client.delete_attachment(attachment_id))
        for volume_id in made:
            await _quietly(client.delete(volume_id, token=ctx.token))
        if isinstance(exc, VolumeRefused):
            raise BadRequest(f"Invalid volume: {exc.message}") from exc
        raise
    async with svc.store.write() as session:
        by_id = {b.id: b for b in (await session.execute(select(BlockDeviceMapping).where(
            BlockDeviceMapping.instance_uuid == uuid))).scalars()}
        for bdm, ref in zip(rows, out, strict=True):
            row = by_id.get(bdm.id)
            if row is not None:
                row.volume_id, row.attachment_id = ref["volume_id"], ref["attachment_id"]
                row.device_name = ref["device_name"]
        spec = (await session.execute(select(RequestSpec).where(
            RequestSpec.instance_uuid == uuid))).scalar_one_or_none()
        if spec is not None:
            spec.spec = {**spec.spec, "block_devices": out}
    return out


async def _wait_available(client: VolumeClient, volume_id: str, token: str | None) -> None:
    deadline = time.monotonic() + CREATE_TIMEOUT
    delay = 0.05
    while True:
        volume = await client.get(volume_id, token=token)
        if volume.status == "available":
            return
        if volume.status.startswith("error"):
            raise BadRequest(f"Volume {volume_id} could not be created (status "
                             f"{volume.status}).")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Volume {volume_id} did not become available within "
                               f"{CREATE_TIMEOUT:.0f} s.")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def _quietly(call: Any) -> None:
    try:
        await call
    except StacklingError as exc:
        log.warning("cleaning up a boot volume failed: %s", exc)
