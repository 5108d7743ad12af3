"""Instance records: loading them for the API and the conductor, and the compare-and-swap
that every state change goes through.

:func:`compare_and_swap` is the one way to change a server's ``task_state``: a single
``UPDATE ... WHERE uuid = :u AND task_state IN (:expected) AND vm_state IN (:allowed)``.
Of two concurrent actions only one finds the row as it expected; the other gets 409.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    false,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import Conflict, NotFound
from stackling.common.timeutils import isotime, utcnow
from stackling.compute import states
from stackling.compute.models import (
    BlockDeviceMapping,
    Instance,
    InstanceFault,
    InstanceMetadata,
    InstanceTag,
    RequestSpec,
    ServerGroup,
    ServerGroupMember,
)
from stackling.compute.rpcapi import FlavorInfo, InstanceInfo
from stackling.compute.service import instance_actions
from stackling.db.base import table_of
from stackling.db.store import Store


def instance_name(row: Instance) -> str:
    return f"instance-{row.id:08x}"


def not_found(uuid: str) -> NotFound:
    return NotFound(f"Instance {uuid} could not be found.")


@dataclass
class ServerRecord:
    """An instance with what the API shows beside its row."""

    row: Instance
    metadata: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    fault: InstanceFault | None = None
    #: the zone the request spec pins the server to (2.96 shows it), if any
    pinned_zone: str | None = None
    volumes: list[tuple[str, bool]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    host_status: str = ""


def to_info(row: Instance, metadata: Mapping[str, str] | None = None) -> InstanceInfo:
    return InstanceInfo(
        uuid=row.uuid, name=row.display_name, instance_name=instance_name(row),
        hostname=row.hostname, project_id=row.project_id, user_id=row.user_id, host=row.host,
        node=row.node, vm_state=row.vm_state, task_state=row.task_state,
        power_state=row.power_state, flavor=FlavorInfo.model_validate(row.flavor),
        image_ref=row.image_ref, key_data=row.key_data, user_data=row.user_data,
        metadata=dict(metadata or {}),
        launched_at=isotime(row.launched_at) if row.launched_at else None,
        deleted=row.deleted, password=str((row.system_metadata or {}).get("password") or ""))


_ROW: Final = select(Instance).where(Instance.uuid == bindparam("uuid"))
_LIVE_ROW: Final = _ROW.where(Instance.deleted == false())


async def get_row(session: AsyncSession, uuid: str, *, deleted: bool = False) -> Instance:
    query = _ROW if deleted else _LIVE_ROW
    row = (await session.execute(query, {"uuid": uuid})).scalar_one_or_none()
    if row is None:
        raise not_found(uuid)
    return row


# What every server view needs beside the instance rows: prebuilt Core statements over the
# given uuids (a poll of /servers/detail runs all of them; nothing is built per call).
_UUIDS: Final[BindParameter[Any]] = bindparam("uuids", expanding=True)
_META, _TAG, _FAULT, _SPEC, _BDM = (table_of(m).c for m in (
    InstanceMetadata, InstanceTag, InstanceFault, RequestSpec, BlockDeviceMapping))
_GROUP, _MEMBER = table_of(ServerGroup).c, table_of(ServerGroupMember).c
_METADATA_OF: Final = select(_META.instance_uuid, _META.key, _META.value).where(
    _META.instance_uuid.in_(_UUIDS)).order_by(_META.id)
_TAGS_OF: Final = select(_TAG.instance_uuid, _TAG.tag).where(
    _TAG.instance_uuid.in_(_UUIDS)).order_by(_TAG.tag)
_FAULTS_OF: Final = select(table_of(InstanceFault)).where(
    _FAULT.instance_uuid.in_(_UUIDS)).order_by(_FAULT.id)
# views show one field of the (large) spec: only that is read and decoded
_ZONES_OF: Final = select(_SPEC.instance_uuid, _SPEC.spec["availability_zone"].as_string()
                          ).where(_SPEC.instance_uuid.in_(_UUIDS))
_VOLUMES_OF: Final = select(_BDM.instance_uuid, _BDM.volume_id, _BDM.delete_on_termination).where(
    _BDM.instance_uuid.in_(_UUIDS), _BDM.volume_id.is_not(None)).order_by(_BDM.id)
_GROUPS_OF: Final = select(_MEMBER.instance_uuid, _GROUP.uuid).select_from(
    table_of(ServerGroupMember).join(table_of(ServerGroup), _GROUP.id == _MEMBER.group_id)).where(
    _MEMBER.instance_uuid.in_(_UUIDS))


# one server's (an update, a delete): equality, no expanding IN to render per call
_METADATA_OF_ONE: Final = select(_META.instance_uuid, _META.key, _META.value).where(
    _META.instance_uuid == bindparam("uuid")).order_by(_META.id)


async def metadata_of(session: AsyncSession, uuids: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = defaultdict(dict)
    if len(uuids) == 1:
        rows = await session.execute(_METADATA_OF_ONE, {"uuid": uuids[0]})
    elif uuids:
        rows = await session.execute(_METADATA_OF, {"uuids": uuids})
    else:
        return out
    for uuid, key, value in rows:
        out[uuid][key] = value
    return out


async def load_records(session: AsyncSession, rows: list[Instance]) -> list[ServerRecord]:
    """Rows plus metadata, tags, latest fault, pinned zone, volumes, groups (a handful of
    queries whatever the number of rows)."""
    uuids = [r.uuid for r in rows]
    if not uuids:
        return []
    params = {"uuids": uuids}
    meta = await metadata_of(session, uuids)
    tags: dict[str, list[str]] = defaultdict(list)
    for uuid, tag in await session.execute(_TAGS_OF, params):
        tags[uuid].append(tag)
    faults: dict[str, InstanceFault] = {}
    for f in (await session.execute(_FAULTS_OF, params)).mappings():
        faults[f["instance_uuid"]] = InstanceFault(**f)  # the latest wins
    zones = {uuid: zone for uuid, zone in await session.execute(_ZONES_OF, params)}
    volumes: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for uuid, volume_id, delete_on_termination in await session.execute(_VOLUMES_OF, params):
        volumes[uuid].append((str(volume_id), delete_on_termination))
    groups: dict[str, list[str]] = defaultdict(list)
    for uuid, group in await session.execute(_GROUPS_OF, params):
        groups[uuid].append(group)
    return [ServerRecord(r, meta.get(r.uuid, {}), tags.get(r.uuid, []), faults.get(r.uuid),
                         zones.get(r.uuid), volumes.get(r.uuid, []),
                         groups.get(r.uuid, [])) for r in rows]


# compare_and_swap runs on every state change of every server: its UPDATE statements are
# built once per shape (which columns, how many expected states of each kind) and executed
# with parameters. The expected states are one bind parameter each, not an expanding IN,
# whose SQL would be rendered again on every execution.
_INSTANCES: Final = table_of(Instance)
_CAS: dict[tuple[Any, ...], Any] = {}


def _cas_statement(keys: tuple[str, ...], tasks: tuple[int, bool] | None, vms: int | None,
                   unlocked: bool) -> Any:
    shape = (keys, tasks, vms, unlocked)
    stmt = _CAS.get(shape)
    if stmt is not None:
        return stmt
    c = _INSTANCES.c
    # (bind names that are not column names: an UPDATE reserves those for its SET clause)
    conditions: list[ColumnElement[bool]] = [c.uuid == bindparam("w_uuid"),
                                             c.deleted == false()]
    if tasks is not None:
        named, none = tasks
        clauses: list[ColumnElement[bool]] = []
        if named:
            clauses.append(c.task_state.in_([bindparam(f"w_task{i}") for i in range(named)]))
        if none:
            clauses.append(c.task_state.is_(None))
        conditions.append(or_(*clauses) if clauses else false())
    if vms is not None:
        conditions.append(c.vm_state.in_([bindparam(f"w_vm{i}") for i in range(vms)])
                          if vms else false())
    if unlocked:
        conditions.append(c.locked == false())
    stmt = update(_INSTANCES).where(and_(*conditions)).values(
        {key: bindparam(f"v_{key}") for key in (*keys, "updated_at")})
    _CAS[shape] = stmt
    return stmt


async def compare_and_swap(session: AsyncSession, uuid: str, values: Mapping[str, Any], *,
                           task_states: Iterable[str | None] | None = None,
                           vm_states: Iterable[str] | None = None,
                           unlocked_for: RequestContext | None = None) -> bool:
    """Apply ``values`` to the instance only if it still is as expected. True if it was.

    ``unlocked_for``: also require the server not to be locked, unless that caller is an
    admin (Nova lets admins act on locked servers)."""
    params: dict[str, Any] = {"w_uuid": uuid}
    tasks: tuple[int, bool] | None = None
    if task_states is not None:
        expected = list(task_states)
        named = [t for t in expected if t is not None]
        tasks = (len(named), None in expected)
        for i, task in enumerate(named):
            params[f"w_task{i}"] = task
    vms: int | None = None
    if vm_states is not None:
        wanted = list(vm_states)
        vms = len(wanted)
        for i, vm in enumerate(wanted):
            params[f"w_vm{i}"] = vm
    keys = tuple(sorted(k for k in values if k != "updated_at"))
    for key in keys:
        params[f"v_{key}"] = values[key]
    params["v_updated_at"] = utcnow()
    stmt = _cas_statement(keys, tasks, vms,
                          unlocked_for is not None and not unlocked_for.is_admin)
    result = await session.execute(stmt, params)
    return bool(result.rowcount)  # type: ignore[attr-defined]


_LIVE_PLAIN: Final = select(_INSTANCES).where(_INSTANCES.c.uuid == bindparam("uuid"),
                                              _INSTANCES.c.deleted == false())


async def read_row(session: AsyncSession, uuid: str) -> Instance:
    """The live instance as a plain row, for reading only: the same attributes as an
    :class:`Instance`, without SQLAlchemy's ORM layer (every action and every conductor
    update reads one)."""
    row = (await session.execute(_LIVE_PLAIN, {"uuid": uuid})).first()
    if row is None:
        raise not_found(uuid)
    return cast(Instance, row)


def invalid_state(row: Instance, action: str) -> Conflict:
    """Nova's 409 for an action the server's state does not allow."""
    if row.task_state is not None:
        attr, state = "task_state", row.task_state
    else:
        attr, state = "vm_state", row.vm_state
    return Conflict(f"Cannot '{action}' instance {row.uuid} while it is in {attr} {state}")


def exhausted(uuid: str) -> str:
    """The fault of a build that failed on every host it was tried on (Nova's words)."""
    return ("Exceeded maximum number of retries. Exhausted all hosts available for retrying "
            f"build failures for instance {uuid}.")


def locked(uuid: str) -> Conflict:
    return Conflict(f"Instance {uuid} is locked")


async def start_action(store: Store, ctx: RequestContext, uuid: str, action: states.Action,
                       values: Mapping[str, Any] | None = None,
                       record: str | None = None,
                       then: Callable[[AsyncSession, Instance], Awaitable[None]] | None = None,
                       allow: Callable[[Instance], None] | None = None) -> Instance:
    """Move the server into ``action.task`` by compare-and-swap and record the instance
    action (``record``: its name in os-instance-actions). Returns the updated row.
    404 if the server is gone, 409 if it is locked or in a state the action does not allow.
    ``then(session, row)`` runs in the same transaction once the action has won (to read
    what the action needs as of that moment). ``allow(row)`` raises when the caller may not
    act on the server (404, 403): it runs before the state is judged, and what it refuses
    is rolled back, so the caller need not read the row first.
    """
    async with store.write() as session:
        won = await compare_and_swap(
            session, uuid, {"task_state": action.task, **(values or {})},
            task_states=action.task_states, vm_states=action.vm_states, unlocked_for=ctx)
        row = await read_row(session, uuid)
        if allow is not None:
            allow(row)
        if not won:
            if row.locked and not ctx.is_admin:
                raise locked(uuid)
            raise invalid_state(row, action.name)
        if record:
            await instance_actions.record(session, ctx, uuid, record)
        if then is not None:
            await then(session, row)
        return row


def add_fault(session: AsyncSession, uuid: str, message: str, *, code: int = 500,
              details: str | None = None, host: str | None = None) -> None:
    session.add(InstanceFault(instance_uuid=uuid, code=code, message=message[:255],
                              details=details, host=host))


async def set_error(store: Store, uuid: str, message: str, *, code: int = 500,
                    details: str | None = None, host: str | None = None,
                    task_states: Iterable[str | None] | None = None) -> bool:
    """Put the server in ERROR with a fault the user can read (``task_states``: only if it is
    still in one of them). False if the server was gone or had moved on."""
    async with store.write() as session:
        won = await compare_and_swap(session, uuid, {"vm_state": states.ERROR,
                                                     "task_state": None},
                                     task_states=task_states)
        if won:
            add_fault(session, uuid, message, code=code, details=details, host=host)
        return won
