"""Rebuild: the same server (id, host, claim) re-created from an image, optionally with a
new name, metadata, key and user data. Compare-and-swap into ``rebuilding``; the agent of the
server's host does the rest."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, NotFound, StacklingError
from stackling.compute import states
from stackling.compute.models import BlockDeviceMapping, InstanceMetadata
from stackling.compute.rpcapi import RebuildInstance
from stackling.compute.service import create, flavors, instance_actions, keypairs
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import (
    compare_and_swap,
    get_row,
    invalid_state,
    locked,
)

REBUILDABLE = {states.ACTIVE, states.STOPPED, states.ERROR}


@dataclass
class RebuildRequest:
    image_ref: str
    name: str | None = None
    metadata: dict[str, str] | None = None
    access_ip_v4: str | None = None
    set_ipv4: bool = False
    access_ip_v6: str | None = None
    set_ipv6: bool = False
    auto_disk_config: bool | None = None
    description: str | None = None
    set_description: bool = False
    key_name: str | None = None
    set_key: bool = False
    user_data: str | None = None
    set_user_data: bool = False
    hostname: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


async def _volumes(session: AsyncSession, uuid: str) -> tuple[bool, list[dict[str, str]]]:
    """Whether the server boots from a volume, and its attached data volumes."""
    rows = (await session.execute(select(BlockDeviceMapping).where(
        BlockDeviceMapping.instance_uuid == uuid,
        BlockDeviceMapping.destination_type == "volume"))).scalars()
    root, data = False, []
    for bdm in rows:
        if bdm.boot_index == 0:
            root = True
        elif bdm.volume_id and bdm.attachment_id:
            data.append({"volume_id": bdm.volume_id, "attachment_id": bdm.attachment_id})
    return root, data


async def rebuild(svc: ComputeService, ctx: RequestContext, uuid: str,
                  req: RebuildRequest) -> None:
    image = await create.image_for(svc, ctx, req.image_ref, "Cannot find image for rebuild")
    async with svc.store.read() as session:
        row = await get_row(session, uuid)
    flavor = flavors.FlavorRecord(0, row.flavor["flavorid"], row.flavor["name"],
                                  row.flavor["memory_mb"], row.flavor["vcpus"],
                                  row.flavor.get("root_gb", 0),
                                  row.flavor.get("ephemeral_gb", 0),
                                  row.flavor.get("swap", 0), 1.0, True, False, None,
                                  row.created_at)
    create.check_image_fits(flavor, image)
    values: dict[str, object] = {"image_ref": image.id}
    if req.set_key:
        values["key_name"] = req.key_name
        values["key_data"] = None
        if req.key_name is not None:
            try:
                values["key_data"] = (await keypairs.get(svc.store, row.user_id,
                                                         req.key_name)).public_key
            except NotFound as exc:
                raise BadRequest("Invalid key_name provided.") from exc
    if req.name is not None:
        values["display_name"] = req.name
    if req.set_description:
        values["display_description"] = req.description
    if req.set_ipv4:
        values["access_ip_v4"] = req.access_ip_v4
    if req.set_ipv6:
        values["access_ip_v6"] = req.access_ip_v6
    if req.auto_disk_config is not None:
        values["auto_disk_config"] = req.auto_disk_config
    if req.set_user_data:
        values["user_data"] = req.user_data
    if req.hostname is not None:
        values["hostname"] = req.hostname
    async with svc.store.write() as session:
        volume_backed, attached = await _volumes(session, uuid)
        if volume_backed:  # its root disk is a volume: re-imaging one is not implemented
            raise BadRequest("Rebuilding a volume-backed server is not supported by this "
                             "cloud.")
        won = await compare_and_swap(
            session, uuid, {"task_state": states.Task.REBUILDING, **values},
            task_states=[None], vm_states=REBUILDABLE, unlocked_for=ctx)
        row = await get_row(session, uuid)
        if not won:
            if row.locked and not ctx.is_admin:
                raise locked(uuid)
            raise invalid_state(row, "rebuild")
        if row.host is None:
            raise invalid_state(row, "rebuild")
        if req.metadata is not None:
            await session.execute(delete(InstanceMetadata).where(
                InstanceMetadata.instance_uuid == uuid))
            for key, value in req.metadata.items():
                session.add(InstanceMetadata(instance_uuid=uuid, key=key, value=value))
        await instance_actions.record(session, ctx, uuid, "rebuild")
        host, was_stopped = row.host, row.vm_state == states.STOPPED
    try:
        await svc.agents.cast(host, RebuildInstance(instance_uuid=uuid,
                                                    request_id=ctx.request_id,
                                                    image_ref=image.id,
                                                    was_stopped=was_stopped,
                                                    volumes=attached))
    except StacklingError:
        async with svc.store.write() as session:
            await compare_and_swap(session, uuid, {"task_state": None},
                                   task_states=[states.Task.REBUILDING])
        raise
