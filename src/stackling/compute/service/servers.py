"""Servers: list (filters, sort, ``limit``/``marker``), show, update, delete.

Delete is the API half of the teardown: compare-and-swap into ``deleting``, then either the
host's agent tears the VM down and reports back through the conductor
(:func:`stackling.compute.conductor`), or -- when the server never reached a host, or its host
is down -- the API finishes the delete itself (Nova's "local delete").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, StacklingError
from stackling.common.timeutils import utcnow
from stackling.compute import states
from stackling.compute.models import (
    Instance,
    InstanceTag,
    Migration,
    ServerGroupMember,
)
from stackling.compute.rpcapi import TerminateInstance
from stackling.compute.service import hosts, placement, volume_attachments
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import (
    ServerRecord,
    compare_and_swap,
    get_row,
    load_records,
    metadata_of,
    start_action,
    to_info,
)
from stackling.db.base import table_of

log = logging.getLogger("stackling.compute.servers")

#: sort keys -> column (nullable text columns sort as '')
SORT_KEYS: dict[str, Any] = {
    "created_at": Instance.created_at, "updated_at": Instance.updated_at,
    "display_name": Instance.display_name, "uuid": Instance.uuid, "id": Instance.id,
    "vm_state": Instance.vm_state, "power_state": Instance.power_state,
    "task_state": func.coalesce(Instance.task_state, ""),
    "host": func.coalesce(Instance.host, ""), "node": func.coalesce(Instance.node, ""),
    "hostname": Instance.hostname, "project_id": Instance.project_id,
    "user_id": Instance.user_id, "key_name": func.coalesce(Instance.key_name, ""),
    "availability_zone": func.coalesce(Instance.availability_zone, ""),
    "display_description": func.coalesce(Instance.display_description, ""),
    "image_ref": Instance.image_ref, "memory_mb": Instance.memory_mb,
    "vcpus": Instance.vcpus, "root_gb": Instance.root_gb,
    "ephemeral_gb": Instance.ephemeral_gb, "launch_index": Instance.launch_index,
    "reservation_id": Instance.reservation_id, "config_drive": Instance.config_drive,
    "locked": Instance.locked, "progress": Instance.progress,
    "access_ip_v4": func.coalesce(Instance.access_ip_v4, ""),
    "access_ip_v6": func.coalesce(Instance.access_ip_v6, ""),
    "launched_at": func.coalesce(Instance.launched_at, Instance.created_at),
    "terminated_at": func.coalesce(Instance.terminated_at, Instance.created_at),
    "instance_type_id": Instance.memory_mb,
}


@dataclass
class ListQuery:
    """Filters a ``GET /servers`` may carry (the API decides which the caller may use)."""

    project_id: str | None = None  # None: every project (admin with all_tenants)
    user_id: str | None = None
    name: str | None = None  # a regular expression
    status: list[states.StatusMatch] | None = None
    image: str | None = None
    flavor: str | None = None
    host: str | None = None
    node: str | None = None
    reservation_id: str | None = None
    changes_since: datetime | None = None
    changes_before: datetime | None = None
    deleted: bool | None = None  # None: only live servers, unless changes-since asks
    locked: bool | None = None
    tags: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    not_tags: list[str] = field(default_factory=list)
    not_tags_any: list[str] = field(default_factory=list)
    availability_zone: str | None = None
    key_name: str | None = None
    config_drive: bool | None = None
    description: str | None = None
    vm_state: list[str] = field(default_factory=list)
    task_state: list[str] = field(default_factory=list)
    power_state: list[int] = field(default_factory=list)
    uuid: str | None = None
    uuids: list[str] | None = None  # only these (the ``ip``/``ip6`` filters' matches)
    sort: list[tuple[str, str]] = field(default_factory=list)
    limit: int | None = None
    marker: str | None = None


def _conditions(q: ListQuery) -> list[ColumnElement[bool]]:
    c: list[ColumnElement[bool]] = []
    if q.project_id is not None:
        c.append(Instance.project_id == q.project_id)
    if q.deleted is True:
        c.append(Instance.deleted == true())
    elif q.deleted is None and q.changes_since is None:
        c.append(Instance.deleted == false())
    elif q.deleted is False:
        c.append(Instance.deleted == false())
    for attr, column in (("user_id", Instance.user_id), ("image", Instance.image_ref),
                         ("host", Instance.host), ("node", Instance.node),
                         ("reservation_id", Instance.reservation_id),
                         ("availability_zone", Instance.availability_zone),
                         ("key_name", Instance.key_name), ("uuid", Instance.uuid)):
        value = getattr(q, attr)
        if value is not None:
            c.append(column == value)
    if q.uuids is not None:
        c.append(Instance.uuid.in_(q.uuids))
    if q.name is not None:
        c.append(Instance.display_name.regexp_match(q.name))
    if q.description is not None:
        c.append(Instance.display_description.regexp_match(q.description))
    if q.flavor is not None:
        c.append(Instance.flavor["flavorid"].as_string() == q.flavor)
    if q.changes_since is not None:
        c.append(Instance.updated_at >= q.changes_since)
    if q.changes_before is not None:
        c.append(Instance.updated_at <= q.changes_before)
    if q.locked is not None:
        c.append(Instance.locked == (true() if q.locked else false()))
    if q.config_drive is not None:
        c.append(Instance.config_drive != "" if q.config_drive else Instance.config_drive == "")
    if q.vm_state:
        c.append(Instance.vm_state.in_(q.vm_state))
    if q.task_state:
        c.append(Instance.task_state.in_(q.task_state))
    if q.power_state:
        c.append(Instance.power_state.in_(q.power_state))
    if q.status is not None:
        c.append(or_(false(), *(_status_clause(m) for m in q.status)))
    for tag in q.tags:
        c.append(Instance.uuid.in_(select(InstanceTag.instance_uuid).where(
            InstanceTag.tag == tag)))
    if q.tags_any:
        c.append(Instance.uuid.in_(select(InstanceTag.instance_uuid).where(
            InstanceTag.tag.in_(q.tags_any))))
    if q.not_tags:
        # not (has all of not_tags)
        c.append(not_(and_(*(Instance.uuid.in_(select(InstanceTag.instance_uuid).where(
            InstanceTag.tag == tag)) for tag in q.not_tags))))
    if q.not_tags_any:
        c.append(Instance.uuid.not_in(select(InstanceTag.instance_uuid).where(
            InstanceTag.tag.in_(q.not_tags_any))))
    return c


def _status_clause(m: states.StatusMatch) -> ColumnElement[bool]:
    clause = Instance.vm_state == m.vm_state
    if m.tasks is not None:
        return and_(clause, Instance.task_state.in_(list(m.tasks)))
    if m.excluded:
        return and_(clause, or_(Instance.task_state.is_(None),
                                Instance.task_state.not_in(list(m.excluded))))
    return clause


def _keyset(sort: list[tuple[str, str]], marker: Instance) -> ColumnElement[bool]:
    """Rows after ``marker`` in the ``sort`` order (keys end with the unique ``id``)."""
    ors: list[ColumnElement[bool]] = []
    for i, (key, direction) in enumerate(sort):
        column = SORT_KEYS[key]
        value = _marker_value(key, marker)
        after = column < value if direction == "desc" else column > value
        equal_before = [SORT_KEYS[k] == _marker_value(k, marker) for k, _ in sort[:i]]
        ors.append(and_(*equal_before, after))
    return or_(*ors)


def _marker_value(key: str, row: Instance) -> Any:
    attr = {"instance_type_id": "memory_mb"}.get(key, key)
    value = getattr(row, attr)
    if key in ("launched_at", "terminated_at") and value is None:
        return row.created_at
    return "" if value is None else value


async def list_servers(svc: ComputeService, q: ListQuery) -> list[ServerRecord]:
    sort = list(q.sort) or [("created_at", "desc")]
    for key, _ in sort:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {key}")
    if all(k != "id" for k, _ in sort):
        sort.append(("id", sort[0][1]))
    conditions = _conditions(q)
    async with svc.store.read() as session:
        # plain rows of the table (the views only read them): no ORM objects to build
        query = select(table_of(Instance)).where(*conditions)
        if q.marker is not None:
            mark = (await session.execute(select(Instance).where(
                Instance.uuid == q.marker, *conditions))).scalar_one_or_none()
            if mark is None:
                mark = (await session.execute(select(Instance).where(
                    Instance.uuid == q.marker))).scalar_one_or_none()
                if mark is None:
                    raise BadRequest(f"marker [{q.marker}] not found")
            query = query.where(_keyset(sort, mark))
        query = query.order_by(*(SORT_KEYS[k].desc() if d == "desc" else SORT_KEYS[k].asc()
                                 for k, d in sort))
        if q.limit is not None:
            query = query.limit(q.limit)
        rows = cast(list[Instance], list((await session.execute(query)).all()))
        records = await load_records(session, rows)
        await _host_statuses(svc, session, records)
    return records


async def _host_statuses(svc: ComputeService, session: AsyncSession,
                         records: list[ServerRecord]) -> None:
    """Nova's host_status: UP, DOWN, MAINTENANCE (disabled), UNKNOWN, or '' (no host)."""
    names = {r.row.host for r in records if r.row.host}
    if not names:
        return
    services = await hosts.service_states(session, names)
    now = utcnow()
    for r in records:
        if not r.row.host:
            continue
        service = services.get(r.row.host)
        if service is None:
            r.host_status = "UNKNOWN"
        elif service.forced_down or not hosts.is_up(service, svc.conf.service_down_time, now):
            r.host_status = "DOWN" if service.forced_down or service.last_seen_up else "UNKNOWN"
        elif service.disabled:
            r.host_status = "MAINTENANCE"
        else:
            r.host_status = "UP"


async def get_server(svc: ComputeService, uuid: str) -> ServerRecord:
    async with svc.store.read() as session:
        records = await load_records(session, [await get_row(session, uuid)])
        await _host_statuses(svc, session, records)
    return records[0]


@dataclass
class ServerUpdate:
    name: str | None = None
    description: str | None = None
    set_description: bool = False
    hostname: str | None = None
    access_ip_v4: str | None = None
    set_ipv4: bool = False
    access_ip_v6: str | None = None
    set_ipv6: bool = False
    auto_disk_config: bool | None = None


async def update_server(svc: ComputeService, ctx: RequestContext, uuid: str,
                        upd: ServerUpdate) -> ServerRecord:
    async with svc.store.write() as session:
        row = await get_row(session, uuid)
        if upd.name is not None:
            row.display_name = upd.name
        if upd.set_description:
            row.display_description = upd.description
        if upd.hostname is not None:
            row.hostname = upd.hostname
        if upd.set_ipv4:
            row.access_ip_v4 = upd.access_ip_v4
        if upd.set_ipv6:
            row.access_ip_v6 = upd.access_ip_v6
        if upd.auto_disk_config is not None:
            row.auto_disk_config = upd.auto_disk_config
        row.updated_at = utcnow()
    return await get_server(svc, uuid)


async def delete_server(svc: ComputeService, ctx: RequestContext, uuid: str,
                        allow: Callable[[Instance], None] | None = None) -> None:
    """Start the delete (409 if locked; ``allow``: the caller's 404/403 on the row, see
    :func:`start_action`); the agent of the server's host finishes it."""
    up, volumes, metadata = False, [], None

    async def read_host(session: AsyncSession, row: Instance) -> None:
        # what the agent is sent, as of the moment the delete won
        nonlocal up, volumes, metadata
        if not row.host:
            return
        service = (await hosts.service_states(session, {row.host})).get(row.host)
        up = service is not None and hosts.is_up(service, svc.conf.service_down_time)
        if up:
            volumes = await volume_attachments.release_refs_in(session, uuid)
            metadata = (await metadata_of(session, [uuid])).get(uuid)

    row = await start_action(svc.store, ctx, uuid, states.action("delete"), record="delete",
                             then=read_host, allow=allow)
    if row.host:
        if up:
            try:
                await svc.agents.cast(row.host, TerminateInstance(
                    instance_uuid=uuid, request_id=ctx.request_id, volumes=volumes,
                    instance=to_info(row, metadata)))
                return
            except StacklingError as exc:
                log.warning("cannot reach compute.%s to delete %s (%s): deleting locally",
                            row.host, uuid, exc)
        else:
            log.warning("host %s of server %s is down: deleting locally", row.host, uuid)
    await volume_attachments.release_locally(svc, uuid)
    await finish_delete(svc, uuid)


# every delete ends here: built once
_MG: Final = table_of(Migration).c
_UNFINISHED_MIGRATIONS: Final = select(_MG.uuid).where(
    _MG.instance_uuid == bindparam("uuid"),
    # (not a NOT IN of literals: its SQL would be rendered again on every execution)
    *(_MG.status != done for done in ("confirmed", "reverted", "error")))
_LEAVE_GROUPS: Final = delete(table_of(ServerGroupMember)).where(
    table_of(ServerGroupMember).c.instance_uuid == bindparam("uuid"))


async def finish_delete(svc: ComputeService, uuid: str, events: Sequence[
        Callable[[AsyncSession], Awaitable[None]]] = ()) -> None:
    """The end of every delete, in one transaction: free the claims (the instance's and
    those its unfinished resizes hold), soft-delete the record, and record ``events``
    (callables writing action events in that transaction)."""
    now = utcnow()
    async with svc.store.write() as session:
        for record in events:
            await record(session)
        await placement.remove_allocations_in(session, uuid)
        pending = list((await session.execute(_UNFINISHED_MIGRATIONS, {"uuid": uuid})).scalars())
        for migration in pending:
            await placement.remove_allocations_in(session, migration)
        await compare_and_swap(session, uuid, {
            "vm_state": states.DELETED, "task_state": None, "power_state": states.NOSTATE,
            "deleted": True, "deleted_at": now, "terminated_at": now})
        await session.execute(_LEAVE_GROUPS, {"uuid": uuid})
