"""Server actions: each is a compare-and-swap into its task_state (409 if the server is not
in a state that allows it, or locked), an instance action record, and a cast to the agent of
the server's host, which finishes the transition through the conductor."""

from __future__ import annotations

import logging

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict, Forbidden, NotFound, StacklingError
from stackling.compute import states
from stackling.compute.rpcapi import (
    PauseInstance,
    RebootInstance,
    ResumeInstance,
    StartInstance,
    StopInstance,
    SuspendInstance,
    UnpauseInstance,
    _InstanceCast,
)
from stackling.compute.service import instance_actions
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import compare_and_swap, get_row, locked, start_action

log = logging.getLogger("stackling.compute.actions")

#: action -> (the message the agent gets, the name os-instance-actions shows)
_CASTS: dict[str, tuple[type[_InstanceCast], str]] = {
    "stop": (StopInstance, "stop"),
    "start": (StartInstance, "start"),
    "pause": (PauseInstance, "pause"),
    "unpause": (UnpauseInstance, "unpause"),
    "suspend": (SuspendInstance, "suspend"),
    "resume": (ResumeInstance, "resume"),
}


async def _cast_or_revert(svc: ComputeService, host: str | None, uuid: str,
                          message: _InstanceCast, task: str | None) -> None:
    if host is None:
        await _revert(svc, uuid, task)
        raise Conflict(f"Instance {uuid} is not ready (it has no host).")
    try:
        await svc.agents.cast(host, message)
    except StacklingError:
        await _revert(svc, uuid, task)
        raise


async def _revert(svc: ComputeService, uuid: str, task: str | None) -> None:
    async with svc.store.write() as session:
        await compare_and_swap(session, uuid, {"task_state": None}, task_states=[task])


async def simple_action(svc: ComputeService, ctx: RequestContext, uuid: str,
                        name: str) -> None:
    """stop, start, pause, unpause, suspend, resume."""
    message_cls, record = _CASTS[name]
    act = states.action(name)
    row = await start_action(svc.store, ctx, uuid, act, record=record)
    await _cast_or_revert(svc, row.host, uuid,
                          message_cls(instance_uuid=uuid, request_id=ctx.request_id), act.task)


async def reboot(svc: ComputeService, ctx: RequestContext, uuid: str, hard: bool) -> None:
    act = states.action("reboot_hard" if hard else "reboot")
    row = await start_action(svc.store, ctx, uuid, act, record="reboot")
    await _cast_or_revert(svc, row.host, uuid, RebootInstance(
        instance_uuid=uuid, request_id=ctx.request_id, reboot_type="HARD" if hard else "SOFT"),
        act.task)


async def lock(svc: ComputeService, ctx: RequestContext, uuid: str,
               reason: str | None) -> None:
    by = "owner"
    async with svc.store.write() as session:
        row = await get_row(session, uuid)
        if row.project_id != ctx.project_id:
            by = "admin"
        await compare_and_swap(session, uuid, {"locked": True, "locked_by": by,
                                               "locked_reason": reason})
        await instance_actions.record(session, ctx, uuid, "lock")


async def unlock(svc: ComputeService, ctx: RequestContext, uuid: str) -> None:
    async with svc.store.write() as session:
        row = await get_row(session, uuid)
        expected = "owner" if row.project_id == ctx.project_id else "admin"
        if row.locked and row.locked_by != expected and not ctx.is_admin:
            raise Forbidden("Policy doesn't allow "
                            "os_compute_api:os-lock-server:unlock:unlock_override to be "
                            "performed.")
        await compare_and_swap(session, uuid, {"locked": False, "locked_by": None,
                                               "locked_reason": None})
        await instance_actions.record(session, ctx, uuid, "unlock")


async def console_output(svc: ComputeService, uuid: str, length: int | None) -> str:
    async with svc.store.read() as session:
        row = await get_row(session, uuid)
    if row.host is None or row.vm_state == states.BUILDING:
        raise Conflict(f"Instance {uuid} is not ready")
    return await svc.agents.get_console_output(row.host, uuid, length)


async def reset_state(svc: ComputeService, ctx: RequestContext, uuid: str,
                      state: str) -> None:
    """Admins force a server's state (``active`` or ``error``), clearing its task."""
    async with svc.store.write() as session:
        await get_row(session, uuid)
        await compare_and_swap(session, uuid, {
            "vm_state": states.ACTIVE if state == "active" else states.ERROR,
            "task_state": None})
        await instance_actions.record(session, ctx, uuid, "resetState")


async def inject_network_info(svc: ComputeService, ctx: RequestContext, uuid: str) -> None:
    """Nova's admin action: checks the server exists and is not locked to the caller."""
    async with svc.store.read() as session:
        row = await get_row(session, uuid)
    if row.locked and not ctx.is_admin:
        raise locked(uuid)


async def security_group(svc: ComputeService, ctx: RequestContext, uuid: str, name: str,
                         add: bool) -> None:
    """Without a network service the groups are only recorded on the server."""
    async with svc.store.write() as session:
        row = await get_row(session, uuid)
        groups = [g for g in (row.security_groups or []) if isinstance(g, dict)]
        names = [g.get("name") for g in groups]
        if add:
            if name in names:
                raise BadRequest(f"Security group {name} is already associated with the "
                                 "instance")
            groups.append({"name": name})
        else:
            if name not in names:
                raise NotFound(f"Security group {name} not associated with the instance "
                               f"{uuid}")
            groups = [g for g in groups if g.get("name") != name]
        await compare_and_swap(session, uuid, {"security_groups": groups})
