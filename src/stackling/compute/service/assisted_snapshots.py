"""Assisted volume snapshots (``os-assisted-volume-snapshots``): a volume service whose
backend keeps volumes as files asks compute to snapshot a volume while a server has it
attached. Compute finds the server the volume is attached to and casts to its host's agent;
the hypervisor driver does the work (or logs that it cannot), as in Nova.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, select

from stackling.common.errors import BadRequest
from stackling.compute.models import BlockDeviceMapping, Instance
from stackling.compute.rpcapi import VolumeSnapshotCreate, VolumeSnapshotDelete
from stackling.compute.service.compute import ComputeService


async def _attached_server(svc: ComputeService, volume_id: str) -> Instance:
    """The server ``volume_id`` is attached to, ready for a snapshot (Nova answers each
    refusal with 400)."""
    async with svc.store.read() as session:
        rows = list((await session.execute(
            select(Instance).join(BlockDeviceMapping,
                                  BlockDeviceMapping.instance_uuid == Instance.uuid)
            .where(BlockDeviceMapping.volume_id == volume_id,
                   Instance.deleted == false()))).scalars())
    if not rows:
        raise BadRequest(f"No volume Block Device Mapping with id {volume_id}.")
    if len(rows) > 1:
        raise BadRequest(f"Volume {volume_id} is attached to more than one server: an "
                         "assisted snapshot needs a single attachment.")
    row = rows[0]
    if row.host is None:
        raise BadRequest(f"Instance {row.uuid} is not ready")
    if row.task_state is not None:
        raise BadRequest(f"Cannot 'volume_snapshot' instance {row.uuid} while it is in "
                         f"task_state {row.task_state}")
    return row


async def create(svc: ComputeService, request_id: str, volume_id: str,
                 create_info: dict[str, Any]) -> dict[str, Any]:
    row = await _attached_server(svc, volume_id)
    assert row.host is not None
    await svc.agents.cast(row.host, VolumeSnapshotCreate(
        instance_uuid=row.uuid, request_id=request_id, volume_id=volume_id,
        create_info=create_info))
    # Nova answers with the create_info's own "id" (none when the caller gave none)
    return {"id": create_info.get("id"), "volumeId": volume_id}


async def delete(svc: ComputeService, request_id: str, volume_id: str, snapshot_id: str,
                 delete_info: dict[str, Any]) -> None:
    row = await _attached_server(svc, volume_id)
    assert row.host is not None
    await svc.agents.cast(row.host, VolumeSnapshotDelete(
        instance_uuid=row.uuid, request_id=request_id, volume_id=volume_id,
        snapshot_id=snapshot_id, delete_info=delete_info))
