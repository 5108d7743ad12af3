"""Resize with confirm and revert.

1. compute-api: compare-and-swap into ``resize_prep``, a migration record (old and new
   flavor), the quota for the growth, and the request spec (new flavor + migration) to the
   scheduler.
2. scheduler: the instance's allocation moves to the migration, the new flavor is claimed for
   the instance on a host (the same one may do), ``resize_migrating``, and
   :class:`~stackling.compute.rpcapi.ResizeInstance` to the source agent, which keeps the old
   disks and hands over to the destination (:class:`~stackling.compute.rpcapi.FinishResize`).
3. conductor (``MigrationDone finished``): the instance moves (host, node, flavor), vm_state
   ``resized`` (VERIFY_RESIZE).
4. confirm (Nova's order): the API marks the migration ``confirming`` and asks the source
   agent to drop the old disks; the agent then reports ``MigrationDone confirmed`` and the
   conductor frees the migration's allocation and ends ``resized`` (ACTIVE or SHUTOFF). Until
   then the server stays in VERIFY_RESIZE, and a second confirm or a revert gets 409.
   revert: the new allocation is freed, the old one returns to the instance and the source
   restores the old guest.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, NotFound, StacklingError
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.compute import states
from stackling.compute.models import Migration
from stackling.compute.models import RequestSpec as RequestSpecRow
from stackling.compute.rpcapi import (
    ConfirmResize,
    FlavorInfo,
    RequestSpec,
    RevertResize,
)
from stackling.compute.service import flavors, instance_actions, placement, quotas
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import (
    add_fault,
    compare_and_swap,
    get_row,
    invalid_state,
    locked,
)

log = logging.getLogger("stackling.compute.resize")

RESIZABLE = {states.ACTIVE, states.STOPPED}


async def migration_for(session: Any, uuid: str, statuses: set[str]) -> Migration | None:
    """The instance's latest migration in one of ``statuses``."""
    row: Migration | None = (await session.execute(
        select(Migration).where(Migration.instance_uuid == uuid,
                                Migration.status.in_(sorted(statuses)))
        .order_by(Migration.id.desc()).limit(1))).scalar_one_or_none()
    return row


async def resize(svc: ComputeService, ctx: RequestContext, uuid: str, flavor_ref: str,
                 auto_disk_config: bool | None) -> None:
    try:
        new = await flavors.get(svc.store, ctx, flavor_ref)
    except NotFound as exc:
        raise BadRequest(f"Flavor {flavor_ref} could not be found.") from exc
    async with svc.store.read() as session:
        row = await get_row(session, uuid)
        spec_row = (await session.execute(select(RequestSpecRow).where(
            RequestSpecRow.instance_uuid == uuid))).scalar_one_or_none()
    old = FlavorInfo.model_validate(row.flavor)
    if new.flavorid == old.flavorid:
        raise BadRequest("When resizing, instances must change flavor!")
    if new.root_gb and new.root_gb < old.root_gb:
        raise BadRequest("Resize error: Unable to resize disk down.")
    info = new.info()
    project_id = row.project_id
    await quotas.ensure_lock(svc.store, project_id)
    migration_uuid = new_uuid()
    async with svc.store.write() as session:
        await quotas.lock(session, project_id)
        grow = {"cores": max(0, new.vcpus - old.vcpus),
                "ram": max(0, new.memory_mb - old.memory_mb)}
        if any(grow.values()):
            quotas.check(await quotas.limits_for(session, project_id, svc.conf.quotas),
                         await quotas.usage(session, project_id), grow)
        # during the resize the instance counts with the larger of the two flavors
        won = await compare_and_swap(
            session, uuid, {"task_state": states.Task.RESIZE_PREP,
                            "vcpus": max(new.vcpus, old.vcpus),
                            "memory_mb": max(new.memory_mb, old.memory_mb),
                            **({"auto_disk_config": auto_disk_config}
                               if auto_disk_config is not None else {})},
            task_states=[None], vm_states=RESIZABLE, unlocked_for=ctx)
        row = await get_row(session, uuid)
        if not won:
            if row.locked and not ctx.is_admin:
                raise locked(uuid)
            raise invalid_state(row, "resize")
        session.add(Migration(uuid=migration_uuid, instance_uuid=uuid, migration_type="resize",
                              status="pre-migrating", source_compute=row.host,
                              source_node=row.node, old_flavor=old.model_dump(),
                              new_flavor=info.model_dump(), project_id=project_id,
                              user_id=row.user_id))
        await instance_actions.record(session, ctx, uuid, "resize")
    saved = dict(spec_row.spec) if spec_row is not None else {}
    spec = RequestSpec(
        instance_uuid=uuid, project_id=project_id, user_id=row.user_id, flavor=info,
        image_ref=row.image_ref, availability_zone=saved.get("availability_zone"),
        group_uuid=saved.get("group_uuid"), group_policy=saved.get("group_policy"),
        group_rules=saved.get("group_rules") or {},
        scheduler_hints=saved.get("scheduler_hints") or {}, migration_uuid=migration_uuid)
    try:
        await svc.scheduler.schedule_instances([spec], ctx.request_id, context=ctx)
    except StacklingError:
        await abandon(svc, uuid, migration_uuid, "The scheduler could not be reached.")
        raise


async def abandon(svc: ComputeService, uuid: str, migration_uuid: str, reason: str) -> None:
    """A resize that could not start: the instance keeps its flavor, host and allocation."""
    await placement.remove_allocations(svc.store, uuid)
    await placement.move_allocations(svc.store, migration_uuid, uuid)
    async with svc.store.write() as session:
        row = await get_row(session, uuid)
        old = FlavorInfo.model_validate(row.flavor)
        if await compare_and_swap(session, uuid, {"task_state": None, "vcpus": old.vcpus,
                                                  "memory_mb": old.memory_mb},
                                  task_states=[states.Task.RESIZE_PREP]):
            add_fault(session, uuid, reason)
        mig = (await session.execute(select(Migration).where(
            Migration.uuid == migration_uuid))).scalar_one_or_none()
        if mig is not None:
            mig.status = "error"
            mig.updated_at = utcnow()
    log.info("resize of %s abandoned: %s", uuid, reason)


async def _pending(svc: ComputeService, ctx: RequestContext, uuid: str,
                   action: str) -> tuple[Any, Migration]:
    async with svc.store.read() as session:
        row = await get_row(session, uuid)
        mig = await migration_for(session, uuid, {"finished"})
    if row.locked and not ctx.is_admin:
        raise locked(uuid)
    if row.vm_state != states.RESIZED or row.task_state is not None or mig is None:
        raise invalid_state(row, action)
    return row, mig


async def confirm(svc: ComputeService, ctx: RequestContext, uuid: str) -> None:
    row, mig = await _pending(svc, ctx, uuid, "confirmResize")
    async with svc.store.write() as session:
        still = await compare_and_swap(session, uuid, {}, task_states=[None],
                                       vm_states=[states.RESIZED])
        claimed = still and bool((await session.execute(
            update(Migration).where(Migration.id == mig.id, Migration.status == "finished")
            .values(status="confirming", updated_at=utcnow())
            .execution_options(synchronize_session=False))).rowcount)  # type: ignore[attr-defined]
        if not claimed:  # another confirm or a revert got there first
            raise invalid_state(await get_row(session, uuid), "confirmResize")
        await instance_actions.record(session, ctx, uuid, "confirmResize")
    if mig.source_compute:
        try:
            await svc.agents.cast(mig.source_compute, _confirm_message(mig, ctx.request_id))
            return
        except StacklingError as exc:
            log.warning("cannot reach compute.%s to confirm the resize of %s (%s): the old "
                        "disks stay until its agent reconciles", mig.source_compute, uuid, exc)
    await finished(svc, uuid, mig.uuid, "confirmed", row.power_state, None, None)


def _confirm_message(mig: Migration, request_id: str) -> ConfirmResize:
    assert mig.source_compute is not None
    return ConfirmResize(
        instance_uuid=mig.instance_uuid, request_id=request_id, migration_uuid=mig.uuid,
        source_host=mig.source_compute, dest_host=mig.dest_compute or "",
        dest_node=mig.dest_node or "", flavor=FlavorInfo.model_validate(mig.new_flavor))


async def confirming_on(svc: ComputeService, host: str) -> list[ConfirmResize]:
    """The confirms still waiting on ``host``'s agent (see :class:`ConfirmingOnHost`)."""
    async with svc.store.read() as session:
        rows = (await session.execute(select(Migration).where(
            Migration.status == "confirming", Migration.source_compute == host)
            .order_by(Migration.id))).scalars()
        return [_confirm_message(mig, "") for mig in rows]


async def revert(svc: ComputeService, ctx: RequestContext, uuid: str) -> None:
    row, mig = await _pending(svc, ctx, uuid, "revertResize")
    async with svc.store.write() as session:
        won = await compare_and_swap(session, uuid,
                                     {"task_state": states.Task.RESIZE_REVERTING},
                                     task_states=[None], vm_states=[states.RESIZED])
        if not won:
            raise invalid_state(await get_row(session, uuid), "revertResize")
        moved = await session.get(Migration, mig.id)
        assert moved is not None
        moved.status = "reverting"
        moved.updated_at = utcnow()
        await instance_actions.record(session, ctx, uuid, "revertResize")
    await svc.agents.cast(row.host, RevertResize(
        instance_uuid=uuid, request_id=ctx.request_id, migration_uuid=mig.uuid,
        source_host=mig.source_compute or row.host, dest_host=row.host,
        dest_node=row.node or "", flavor=FlavorInfo.model_validate(mig.old_flavor),
        was_stopped=row.power_state == states.SHUTDOWN))


async def _confirmed(session: AsyncSession, uuid: str, mig: Migration) -> None:
    """The end of a confirm: the migration's allocation (the old flavor on the source) is
    freed and the server leaves ``resized`` for what it was before the resize."""
    row = await get_row(session, uuid, deleted=True)
    new = FlavorInfo.model_validate(mig.new_flavor)
    final = states.STOPPED if row.power_state == states.SHUTDOWN else states.ACTIVE
    await compare_and_swap(session, uuid, {
        "vm_state": final, "vcpus": new.vcpus, "memory_mb": new.memory_mb},
        task_states=[None], vm_states=[states.RESIZED])
    mig.status = "confirmed"
    await placement.remove_allocations_in(session, mig.uuid)


async def finished(svc: ComputeService, uuid: str, migration_uuid: str, status: str,
                   power_state: int, reason: str | None, host: str | None) -> None:
    """The conductor's half: the agent reports a resize step done."""
    async with svc.store.write() as session:
        mig = (await session.execute(select(Migration).where(
            Migration.uuid == migration_uuid))).scalar_one_or_none()
        if mig is None:
            return
        mig.updated_at = utcnow()
        if status == "confirmed":
            if mig.status == "confirming":
                await _confirmed(session, uuid, mig)
            return
        if status == "finished":
            mig.status = "finished"
            new = FlavorInfo.model_validate(mig.new_flavor)
            await compare_and_swap(session, uuid, {
                "vm_state": states.RESIZED, "task_state": None, "power_state": power_state,
                "host": mig.dest_compute, "node": mig.dest_node,
                "flavor": new.model_dump(), "root_gb": new.root_gb,
                "ephemeral_gb": new.ephemeral_gb},
                task_states=[states.Task.RESIZE_MIGRATING, states.Task.RESIZE_MIGRATED,
                             states.Task.RESIZE_FINISH])
            return
        old = FlavorInfo.model_validate(mig.old_flavor)
        values: dict[str, Any] = {"task_state": None, "vcpus": old.vcpus,
                                  "memory_mb": old.memory_mb, "power_state": power_state,
                                  "host": mig.source_compute, "node": mig.source_node,
                                  "flavor": old.model_dump(), "root_gb": old.root_gb,
                                  "ephemeral_gb": old.ephemeral_gb}
        if status == "reverted":
            mig.status = "reverted"
            values["vm_state"] = (states.STOPPED if power_state == states.SHUTDOWN
                                  else states.ACTIVE)
        else:  # error: back where it was, with a fault
            mig.status = "error"
        await compare_and_swap(session, uuid, values)
        if status != "reverted" and reason:
            add_fault(session, uuid, reason, host=host)
    if status in ("reverted", "error"):
        await placement.remove_allocations(svc.store, uuid)
        await placement.move_allocations(svc.store, migration_uuid, uuid)
