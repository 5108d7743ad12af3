"""Instance actions and their events (``os-instance-actions``): what was asked of a server
(recorded by the API, keyed by the request id) and how each step went (events, reported by
the scheduler, conductor and agents)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import NotFound
from stackling.common.timeutils import utcnow
from stackling.compute.models import InstanceAction, InstanceActionEvent
from stackling.db.store import Store


async def record(session: AsyncSession, ctx: RequestContext, uuid: str, action: str) -> None:
    """Start an action (inside the caller's transaction)."""
    session.add(InstanceAction(action=action, instance_uuid=uuid,
                               request_id=ctx.request_id or "", user_id=ctx.user_id,
                               project_id=ctx.project_id))


async def event(store: Store, uuid: str, request_id: str, name: str, phase: str, *,
                result: str | None = None, details: str | None = None,
                host: str | None = None) -> None:
    """Start (``phase="start"``) or finish an event of the action of ``request_id``.
    An event for an action that was never recorded is dropped."""
    async with store.write() as session:
        await event_in(session, uuid, request_id, name, phase, result=result,
                       details=details, host=host)


async def event_in(session: AsyncSession, uuid: str, request_id: str, name: str,
                   phase: str, *, result: str | None = None, details: str | None = None,
                   host: str | None = None, started: datetime | None = None) -> None:
    """:func:`event` inside the caller's transaction. ``phase="done"`` records a whole
    event at once (it started at ``started`` and finishes now with ``result``)."""
    act = (await session.execute(select(InstanceAction).where(
        InstanceAction.instance_uuid == uuid, InstanceAction.request_id == request_id)
        .order_by(InstanceAction.id.desc()).limit(1))).scalar_one_or_none()
    if act is None:
        return
    now = utcnow()
    act.updated_at = now
    if phase == "start":
        session.add(InstanceActionEvent(action_id=act.id, event=name, start_time=now,
                                        host=host, details=details))
        return
    ev = None
    if phase != "done":
        ev = (await session.execute(select(InstanceActionEvent).where(
            InstanceActionEvent.action_id == act.id, InstanceActionEvent.event == name)
            .order_by(InstanceActionEvent.id.desc()).limit(1))).scalar_one_or_none()
    if ev is None:
        ev = InstanceActionEvent(action_id=act.id, event=name, start_time=started or now,
                                 host=host)
        session.add(ev)
    ev.finish_time = now
    ev.result = result
    if details:
        ev.details = details
    if result == "Error":
        act.message = "Error"
    act.finish_time = now


@dataclass
class ActionRecord:
    action: InstanceAction
    events: list[InstanceActionEvent] = field(default_factory=list)


async def list_actions(store: Store, uuid: str) -> list[InstanceAction]:
    async with store.read() as session:
        return list((await session.execute(select(InstanceAction).where(
            InstanceAction.instance_uuid == uuid).order_by(
            InstanceAction.start_time.desc(), InstanceAction.id.desc()))).scalars())


async def get_action(store: Store, uuid: str, request_id: str) -> ActionRecord:
    async with store.read() as session:
        act = (await session.execute(select(InstanceAction).where(
            InstanceAction.instance_uuid == uuid, InstanceAction.request_id == request_id)
            .order_by(InstanceAction.id.desc()).limit(1))).scalar_one_or_none()
        if act is None:
            raise NotFound(f"Action for request_id {request_id} on instance {uuid} not "
                           "found")
        events = list((await session.execute(select(InstanceActionEvent).where(
            InstanceActionEvent.action_id == act.id).order_by(InstanceActionEvent.id))
        ).scalars())
        return ActionRecord(act, events)
