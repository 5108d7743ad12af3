"""Effective roles: what a user holds on a project, a domain or the system.

A user holds a role on a project when it (or one of its groups) is assigned the role on the
project directly, or as *inherited* on one of the project's ancestors or its domain. Implied
roles are then added (transitively). Domain-specific roles never show in a token themselves,
only the global roles they imply, as in Keystone.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.identity.models import (
    GLOBAL_ROLE_DOMAIN,
    ROOT_DOMAIN,
    SYSTEM_TARGET,
    Assignment,
    ImpliedRole,
    Project,
    Role,
    UserGroupMembership,
)


@dataclass(frozen=True, slots=True)
class RoleRef:
    id: str
    name: str
    domain_id: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"id": self.id, "name": self.name}
        if self.domain_id:
            out["domain_id"] = self.domain_id
        return out


async def group_ids_of(session: AsyncSession, user_id: str) -> list[str]:
    rows = await session.scalars(
        select(UserGroupMembership.group_id).where(UserGroupMembership.user_id == user_id)
    )
    return list(rows.all())


async def ancestors_of(session: AsyncSession, project_id: str) -> list[str]:
    """Ids of the project's parents up to and including its domain (nearest first)."""
    out: list[str] = []
    current = await session.get(Project, project_id)
    seen = {project_id}
    while current is not None:
        parent = current.parent_id or (
            current.domain_id if current.domain_id != ROOT_DOMAIN else None
        )
        if parent is None or parent in seen:
            break
        out.append(parent)
        seen.add(parent)
        current = await session.get(Project, parent)
    return out


async def expand_implied(session: AsyncSession, role_ids: set[str]) -> set[str]:
    rules = (await session.execute(select(ImpliedRole.prior_role_id,
                                          ImpliedRole.implied_role_id))).all()
    implies: dict[str, set[str]] = {}
    for prior, implied in rules:
        implies.setdefault(prior, set()).add(implied)
    result = set(role_ids)
    todo = list(role_ids)
    while todo:
        for implied in implies.get(todo.pop(), ()):
            if implied not in result:
                result.add(implied)
                todo.append(implied)
    return result


async def _refs(session: AsyncSession, role_ids: set[str]) -> list[RoleRef]:
    if not role_ids:
        return []
    rows = (await session.scalars(select(Role).where(Role.id.in_(role_ids)))).all()
    return sorted(
        (RoleRef(r.id, r.name) for r in rows if r.domain_id == GLOBAL_ROLE_DOMAIN),
        key=lambda r: r.name,
    )


async def direct_role_ids(session: AsyncSession, user_id: str, target_id: str,
                          inherited_from: list[str] | None = None) -> set[str]:
    actors = [user_id, *await group_ids_of(session, user_id)]
    query = select(Assignment.role_id).where(
        Assignment.actor_id.in_(actors), Assignment.target_id == target_id,
        Assignment.inherited.is_(False),
    )
    ids = set((await session.scalars(query)).all())
    if inherited_from:
        query = select(Assignment.role_id).where(
            Assignment.actor_id.in_(actors), Assignment.target_id.in_(inherited_from),
            Assignment.inherited.is_(True),
        )
        ids |= set((await session.scalars(query)).all())
    return ids


async def project_roles(session: AsyncSession, user_id: str, project_id: str) -> list[RoleRef]:
    ancestors = await ancestors_of(session, project_id)
    ids = await direct_role_ids(session, user_id, project_id, ancestors)
    return await _refs(session, await expand_implied(session, ids))


async def domain_roles(session: AsyncSession, user_id: str, domain_id: str) -> list[RoleRef]:
    ids = await direct_role_ids(session, user_id, domain_id)
    return await _refs(session, await expand_implied(session, ids))


async def system_roles(session: AsyncSession, user_id: str) -> list[RoleRef]:
    ids = await direct_role_ids(session, user_id, SYSTEM_TARGET)
    return await _refs(session, await expand_implied(session, ids))
