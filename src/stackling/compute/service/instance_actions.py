"""Instance actions and their events (``os-instance-actions``): what was asked of a server
(recorded by the API, keyed by the request id) and how each step went (events, reported by
the scheduler, conductor and agents)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import NotFound
from stackling.common.timeutils import utcnow
from stackling.compute.models import InstanceAction, InstanceActionEvent
from stackling.db.base import table_of
from stackling.db.store import Store

# Actions and events are written on every step of every build and delete: prebuilt Core
# statements on the tables, executed with parameters (nothing to construct, compile or
# flush per call; no ORM objects: nothing else adds these rows as objects, so no autoflush
# is needed). Three statements an event.
_AT: Final = table_of(InstanceAction)
_ET: Final = table_of(InstanceActionEvent)
_A: Final = _AT.c
_E: Final = _ET.c
_OF_REQUEST = and_(_A.instance_uuid == bindparam("uuid"), _A.request_id == bindparam("rid"))
_ACTION: Final = select(_A.id).where(_OF_REQUEST).order_by(_A.id.desc()).limit(1)
_ACTION_AND_EVENT: Final = (
    select(_A.id, _E.id)
    .select_from(_AT.outerjoin(_ET, and_(_E.action_id == _A.id, _E.event == bindparam("name"))))
    .where(_OF_REQUEST).order_by(_A.id.desc(), _E.id.desc()).limit(1))
_NEW_ACTION: Final = insert(_AT)
_NEW_EVENT: Final = insert(_ET)
_TOUCH: Final = update(_AT).where(_A.id == bindparam("aid")).values(updated_at=bindparam("t"))
_FINISH_ACTION: Final = update(_AT).where(_A.id == bindparam("aid")).values(
    finish_time=bindparam("t"), updated_at=bindparam("t"))
_FAIL_ACTION: Final = _FINISH_ACTION.values(message="Error")
_FINISH_EVENT: Final = update(_ET).where(_E.id == bindparam("eid")).values(
    finish_time=bindparam("t"), result=bindparam("res"))
_FINISH_EVENT_DETAILED: Final = _FINISH_EVENT.values(details=bindparam("det"))


async def record(session: AsyncSession, ctx: RequestContext, uuid: str, action: str) -> None:
    """Start an action (inside the caller's transaction)."""
    now = utcnow()
    await session.execute(_NEW_ACTION, {
        "action": action, "instance_uuid": uuid, "request_id": ctx.request_id or "",
        "user_id": ctx.user_id, "project_id": ctx.project_id, "start_time": now,
        "updated_at": now})


async def event(store: Store, uuid: str, request_id: str, name: str, phase: str, *,
                result: str | None = None, details: str | None = None,
                host: str | None = None, started: datetime | None = None) -> None:
    """Start (``phase="start"``) or finish an event of the action of ``request_id``.
    An event for an action that was never recorded is dropped."""
    async with store.write() as session:
        await event_in(session, uuid, request_id, name, phase, result=result,
                       details=details, host=host, started=started)


async def event_in(session: AsyncSession, uuid: str, request_id: str, name: str,
                   phase: str, *, result: str | None = None, details: str | None = None,
                   host: str | None = None, started: datetime | None = None) -> None:
    """:func:`event` inside the caller's transaction. ``phase="done"`` records a whole
    event at once (it started at ``started`` and finishes now with ``result``)."""
    key = {"uuid": uuid, "rid": request_id}
    event_id = None
    if phase in ("start", "done"):
        action_id = (await session.execute(_ACTION, key)).scalar()
    else:  # finishing: the action and its latest event of that name, in one read
        found = (await session.execute(_ACTION_AND_EVENT, {**key, "name": name})).first()
        action_id, event_id = found if found is not None else (None, None)
    if action_id is None:
        return
    now = utcnow()
    if phase == "start":
        await session.execute(_NEW_EVENT, {"action_id": action_id, "event": name,
                                           "start_time": now, "host": host,
                                           "details": details})
        await session.execute(_TOUCH, {"aid": action_id, "t": now})
        return
    if event_id is not None:
        await session.execute(_FINISH_EVENT_DETAILED if details else _FINISH_EVENT,
                              {"eid": event_id, "t": now, "res": result, "det": details})
    else:
        await session.execute(_NEW_EVENT, {"action_id": action_id, "event": name,
                                           "start_time": started or now, "finish_time": now,
                                           "result": result, "host": host,
                                           "details": details})
    await session.execute(_FAIL_ACTION if result == "Error" else _FINISH_ACTION,
                          {"aid": action_id, "t": now})


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
