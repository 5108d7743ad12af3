"""Quotas: limits per project (defaults, a ``default`` quota class, per-project overrides)
and usage counted from the real rows, checked under a per-project lock.

Every transaction that checks a quota and then creates what it counts first calls
:func:`lock` on the project's row: that write takes the row lock (the database lock on
SQLite), so concurrent creates are checked one after the other and none slips past a limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final
from weakref import WeakKeyDictionary

from sqlalchemy import bindparam, false, func, insert, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.config import ComputeQuotaConfig
from stackling.common.errors import Conflict, Forbidden
from stackling.compute.models import (
    Instance,
    KeyPair,
    ProjectLock,
    Quota,
    QuotaClass,
    ServerGroup,
)
from stackling.db.base import table_of
from stackling.db.store import Store

RESOURCES = ("instances", "cores", "ram", "metadata_items", "key_pairs", "server_groups",
             "server_group_members", "injected_files", "injected_file_content_bytes",
             "injected_file_path_bytes")
#: kept for the API's older microversions (no network service counts them here)
LEGACY = ("floating_ips", "fixed_ips", "security_groups", "security_group_rules")
DEFAULT_CLASS = "default"


#: per database, the lock rows known to exist (they are never deleted; :func:`lock` makes
#: one again should it be gone all the same)
_KNOWN: Final[WeakKeyDictionary[Store, set[str]]] = WeakKeyDictionary()


async def ensure_lock(store: Store, key: str) -> None:
    """Make sure the lock row exists (its own transaction; a concurrent creator is fine)."""
    known = _KNOWN.setdefault(store, set())
    if key in known:
        return
    async with store.read() as session:
        found = (await session.get(ProjectLock, key)) is not None
    if not found:
        try:
            async with store.write() as session:
                session.add(ProjectLock(project_id=key, generation=0))
        except Conflict:
            pass
    known.add(key)


# every boot checks its quota under the project's lock: these are built once
_PL: Final = table_of(ProjectLock)
_NEW_LOCK: Final = insert(_PL).values(project_id=bindparam("key"), generation=1)
_LOCK: Final = update(_PL).where(_PL.c.project_id == bindparam("key")).values(
    generation=_PL.c.generation + 1)
# (on the tables' columns, not the mapped classes': SQLAlchemy runs such statements without
# its ORM layer, about a third cheaper per execution)
_IT: Final = table_of(Instance).c
_SERVERS_USE: Final = select(
    func.count(), func.coalesce(func.sum(_IT.vcpus), 0),
    func.coalesce(func.sum(_IT.memory_mb), 0)).where(
    _IT.project_id == bindparam("project"), _IT.deleted == false())
_GROUPS_USE: Final = select(func.count()).select_from(table_of(ServerGroup)).where(
    table_of(ServerGroup).c.project_id == bindparam("project"))


async def lock(session: AsyncSession, key: str) -> None:
    """Serialize on ``key`` for the rest of this transaction (call :func:`ensure_lock`
    first, outside the transaction)."""
    if (await session.execute(_LOCK, {"key": key})).rowcount == 0:  # type: ignore[attr-defined]
        await session.execute(_NEW_LOCK, {"key": key})


# the default class's rows; for a boot, the project's own rows after them (one statement)
_QC: Final = table_of(QuotaClass).c
_QP: Final = table_of(Quota).c
_CLASS_ROWS: Final = select(literal(0).label("tier"), _QC.resource, _QC.hard_limit).where(
    _QC.class_name == DEFAULT_CLASS)
_LIMIT_ROWS: Final = union_all(
    _CLASS_ROWS,
    select(literal(1).label("tier"), _QP.resource, _QP.hard_limit).where(
        _QP.project_id == bindparam("project"), _QP.user_id == ""),
).order_by("tier")


async def defaults(session: AsyncSession, config: ComputeQuotaConfig) -> dict[str, int]:
    return _limits(config, await session.execute(_CLASS_ROWS))


async def limits_for(session: AsyncSession, project_id: str,
                     config: ComputeQuotaConfig) -> dict[str, int]:
    return _limits(config, await session.execute(_LIMIT_ROWS, {"project": project_id}))


def _limits(config: ComputeQuotaConfig, rows: Iterable[Any]) -> dict[str, int]:
    """The configured limits, overridden by ``rows`` of (tier, resource, hard limit) in
    order (resources stackling does not count are left out, legacy ones kept)."""
    limits = {r: int(getattr(config, r)) for r in RESOURCES}
    for _, resource, hard_limit in rows:
        if resource in limits or resource in LEGACY:
            limits[resource] = hard_limit
    return limits


async def usage(session: AsyncSession, project_id: str, *,
                groups: bool = True) -> dict[str, int]:
    """What the project uses now (deleted servers do not count); ``groups=False`` leaves
    out the server groups (a boot does not count them)."""
    key = {"project": project_id}
    count, cores, ram = (await session.execute(_SERVERS_USE, key)).one()
    used = {"instances": int(count), "cores": int(cores), "ram": int(ram)}
    if groups:
        used["server_groups"] = int((await session.execute(_GROUPS_USE, key)).scalar_one())
    return used


async def user_keypairs(session: AsyncSession, user_id: str) -> int:
    return int((await session.execute(select(func.count()).select_from(KeyPair).where(
        KeyPair.user_id == user_id))).scalar_one())


def check(limits: Mapping[str, int], used: Mapping[str, int],
          requested: Mapping[str, int]) -> None:
    """Raise Forbidden (Nova's 403 wording) when a request would exceed a limit."""
    overs = [r for r, amount in requested.items()
             if amount > 0 and limits.get(r, -1) >= 0 and used.get(r, 0) + amount > limits[r]]
    if overs:
        r = overs[0]
        names = ", ".join(overs)
        raise Forbidden(f"Quota exceeded for {names}: Requested {requested[r]}, but already "
                        f"used {used.get(r, 0)} of {limits[r]} {r}")


async def set_project_limits(store: Store, project_id: str, values: Mapping[str, int]) -> None:
    async with store.write() as session:
        current = {q.resource: q for q in (await session.execute(select(Quota).where(
            Quota.project_id == project_id, Quota.user_id == ""))).scalars()}
        for resource, limit in values.items():
            row = current.get(resource)
            if row is None:
                session.add(Quota(project_id=project_id, user_id="", resource=resource,
                                  hard_limit=limit))
            else:
                row.hard_limit = limit


async def reset_project_limits(store: Store, project_id: str) -> None:
    async with store.write() as session:
        for row in (await session.execute(select(Quota).where(
                Quota.project_id == project_id))).scalars():
            await session.delete(row)


async def class_limits(store: Store, class_name: str) -> dict[str, int]:
    async with store.read() as session:
        return {row.resource: row.hard_limit for row in (await session.execute(
            select(QuotaClass).where(QuotaClass.class_name == class_name))).scalars()}


async def set_class_limits(store: Store, class_name: str, values: Mapping[str, int]) -> None:
    async with store.write() as session:
        current = {q.resource: q for q in (await session.execute(select(QuotaClass).where(
            QuotaClass.class_name == class_name))).scalars()}
        for resource, limit in values.items():
            row = current.get(resource)
            if row is None:
                session.add(QuotaClass(class_name=class_name, resource=resource,
                                       hard_limit=limit))
            else:
                row.hard_limit = limit
