"""createImage: a snapshot of a server's disk into the image service.

compute-api creates the (queued) image record with the caller's own token, so it belongs to
their project, moves the server into ``image_snapshot`` by compare-and-swap and casts to the
host's agent, which uploads the disk with the service token and clears the task."""

from __future__ import annotations

from typing import Any

from stackling.common.context import RequestContext
from stackling.common.errors import NotFound, StacklingError
from stackling.compute import states
from stackling.compute.rpcapi import SnapshotInstance
from stackling.compute.service import instance_actions
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import (
    compare_and_swap,
    get_row,
    invalid_state,
    locked,
    metadata_of,
)

SNAPSHOTTABLE = {states.ACTIVE, states.STOPPED, states.PAUSED, states.SUSPENDED}
#: image properties a snapshot does not inherit from its base image
_NOT_INHERITED = {"instance_uuid", "image_type", "base_image_ref", "user_id", "owner_id",
                  "image_location", "image_state", "owner_project_name", "owner_user_name"}


async def create_image(svc: ComputeService, ctx: RequestContext, uuid: str, name: str,
                       metadata: dict[str, str], *, backup_type: str | None = None,
                       rotation: int | None = None) -> str:
    """Start the snapshot (a backup with ``backup_type``, rotated to keep ``rotation``
    images); returns the new image's id."""
    assert svc.images is not None
    async with svc.store.read() as session:
        row = await get_row(session, uuid)
        meta = (await metadata_of(session, [uuid])).get(uuid, {})
    if row.locked and not ctx.is_admin:
        raise locked(uuid)
    if row.vm_state not in SNAPSHOTTABLE or row.task_state is not None:
        raise invalid_state(row, "createImage")
    inherited: dict[str, Any] = {}
    if row.image_ref:
        try:
            base = await svc.images.get(row.image_ref)
            inherited = {k: v for k, v in base.properties.items()
                         if k not in _NOT_INHERITED and isinstance(v, str)}
        except NotFound:
            pass
    # the disk format is the driver's (the fake's is raw); the agent uploads in it
    # as Nova: the request's metadata is applied last of the properties (it may even say
    # its own image_type), the image's own fields after that
    body: dict[str, Any] = {
        **inherited, **{k: v for k, v in meta.items() if k not in _NOT_INHERITED},
        "instance_uuid": uuid, "image_type": "backup" if backup_type else "snapshot",
        "user_id": row.user_id, "base_image_ref": row.image_ref or "", **metadata,
        "name": name, "container_format": "bare", "disk_format": "raw",
        "visibility": "private", "min_ram": row.memory_mb, "min_disk": row.root_gb}
    if backup_type:
        body["backup_type"] = backup_type
    image = await svc.images.create(body, token=ctx.token)
    async with svc.store.write() as session:
        won = await compare_and_swap(session, uuid, {"task_state": states.Task.IMAGE_SNAPSHOT},
                                     task_states=[None], vm_states=SNAPSHOTTABLE,
                                     unlocked_for=ctx)
        if won:
            await instance_actions.record(session, ctx, uuid,
                                          "createBackup" if backup_type else "createImage")
        host = (await get_row(session, uuid)).host
    if not won or host is None:
        await svc.images.delete(image.id)
        async with svc.store.read() as session:
            raise invalid_state(await get_row(session, uuid), "createImage")
    try:
        await svc.agents.cast(host, SnapshotInstance(
            instance_uuid=uuid, request_id=ctx.request_id, image_id=image.id,
            backup_type=backup_type, rotation=rotation))
    except StacklingError:
        async with svc.store.write() as session:
            await compare_and_swap(session, uuid, {"task_state": None},
                                   task_states=[states.Task.IMAGE_SNAPSHOT])
        await svc.images.delete(image.id)
        raise
    return image.id
