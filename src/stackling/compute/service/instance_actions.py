"""Instance actions and their events (``os-instance-actions``): what was asked of a server
(recorded by the API, keyed by the request id) and how each step went (events, reported by
the scheduler, conductor and agents)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import Integer, Select, and_, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import NotFound
from stackling.common.timeutils import utcnow
from stackling.compute.models import InstanceAction, InstanceActionEvent
from stackling.db.store import Store


async def record(session: AsyncSession, ctx: RequestContext, uuid: str, action: str) -> None:
    """Start an action (inside the caller's transaction)."""
    await session.execute(insert(InstanceAction).values(
        action=action, instance_uuid=uuid, request_id=ctx.request_id or "",
        user_id=ctx.user_id, project_id=ctx.project_id))


async def event(store: Store, uuid: str, request_id: str, name: str, phase: str, *,
                result: str | None = None, details: str | None = None,
                host: str | None = None) -> None:
    """Start (``phase="start"``) or finish an event of the action of ``request_id``.
    An event for an action that was never recorded is dropped."""
    async with store.write() as session:
        await event_in(session, uuid, request_id, name, phase, result=result,
                       details=details, host=host)


# Events are written on every step of every build and delete: plain column statements, no
# objects loaded or flushed (three statements an event).
_A, _E = InstanceAction, InstanceActionEvent
_NO_SYNC: Final = {"synchronize_session": False}


async def event_in(session: AsyncSession, uuid: str, request_id: str, name: str,
                   phase: str, *, result: str | None = None, details: str | None = None,
                   host: str | None = None, started: datetime | None = None) -> None:
    """:func:`event` inside the caller's transaction. ``phase="done"`` records a whole
    event at once (it started at ``started`` and finishes now with ``result``)."""
    finishing = phase not in ("start", "done")
    query: Select[int, int]
    if finishing:  # the action and its latest event of that name, in one read
        query = select(_A.id, _E.id).outerjoin(
            _E, and_(_E.action_id == _A.id, _E.event == name)).order_by(
            _A.id.desc(), _E.id.desc())
    else:
        query = select(_A.id, literal(None, Integer)).order_by(_A.id.desc())
    found = (await session.execute(query.where(
        _A.instance_uuid == uuid, _A.request_id == request_id).limit(1))).first()
    if found is None:
        return
    action_id, event_id = found
    now = utcnow()
    if phase == "start":
        await session.execute(insert(_E).values(action_id=action_id, event=name,
                                                start_time=now, host=host, details=details))
        await session.execute(update(_A).where(_A.id == action_id).values(updated_at=now)
                              .execution_options(**_NO_SYNC))
        return
    finished: dict[str, object] = {"finish_time": now, "result": result}
    if details:
        finished["details"] = details
    if event_id is not None:
        await session.execute(update(_E).where(_E.id == event_id).values(**finished)
                              .execution_options(**_NO_SYNC))
    else:
        await session.execute(insert(_E).values(action_id=action_id, event=name,
                                                start_time=started or now, host=host,
                                                **finished))
    changes: dict[str, object] = {"finish_time": now, "updated_at": now}
    if result == "Error":
        changes["message"] = "Error"
    await session.execute(update(_A).where(_A.id == action_id).values(**changes)
                          .execution_options(**_NO_SYNC))


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
