"""Groups and their members.

Removing a user from a group revokes that user's tokens (its roles may have come through the
group); deleting a group that holds role assignments revokes the tokens of all its members,
as Keystone does (``keystone/identity/core.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import Conflict, NotFound, ValidationError
from stackling.common.ids import new_id
from stackling.identity.models import Assignment, Group, Project, User, UserGroupMembership
from stackling.identity.service.identity import Identity

COLUMNS = frozenset({"id", "name", "domain_id", "description", "links"})


def conflict_message(name: str, domain_id: str) -> str:
    return ("Conflict occurred attempting to store group - Duplicate entry found with name "
            f"{name} at domain ID {domain_id}.")


def render(g: Group) -> dict[str, Any]:
    ref: dict[str, Any] = {k: v for k, v in (g.extra or {}).items() if k not in COLUMNS}
    ref.update(id=g.id, name=g.name, domain_id=g.domain_id, description=g.description)
    return ref


async def get(svc: Identity, group_id: str) -> dict[str, Any] | None:
    async with svc.store.read() as session:
        g = await session.get(Group, group_id)
        return render(g) if g is not None else None


async def create(svc: Identity, name: str, domain_id: str, description: str | None,
                 extra: dict[str, Any]) -> dict[str, Any]:
    name = name.strip()
    async with svc.store.write(conflict_message(name, domain_id)) as session:
        domain = await session.get(Project, domain_id)
        if domain is None or not domain.is_domain:
            raise NotFound(f"Could not find domain: {domain_id}.")
        group = Group(id=new_id(), name=name, domain_id=domain_id, description=description,
                      extra=dict(extra))
        session.add(group)
        await session.flush()
        return render(group)


async def update(svc: Identity, group_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    async with svc.store.write() as session:
        g = await session.get(Group, group_id)
        if g is None:
            raise NotFound(f"Could not find group: {group_id}.")
        if "domain_id" in changes and changes["domain_id"] != g.domain_id:
            raise ValidationError("Cannot change Domain ID")
        message = conflict_message(changes.get("name", g.name).strip(), g.domain_id)
        for key, value in changes.items():
            if key == "name":
                g.name = value.strip()
            elif key == "description":
                g.description = value
            elif key not in COLUMNS:
                g.extra = {**(g.extra or {}), key: value}
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(message) from exc
        return render(g)


async def purge_groups(session: AsyncSession, group_ids: list[str]) -> None:
    if not group_ids:
        return
    await session.execute(delete(UserGroupMembership).where(
        UserGroupMembership.group_id.in_(group_ids)))
    await session.execute(delete(Assignment).where(Assignment.actor_id.in_(group_ids)))
    await session.execute(delete(Group).where(Group.id.in_(group_ids)))


async def delete_group(svc: Identity, group_id: str) -> None:
    async with svc.store.write() as session:
        if await session.get(Group, group_id) is None:
            raise NotFound(f"Could not find group: {group_id}.")
        had_roles = (await session.scalars(select(Assignment.role_id).where(
            Assignment.actor_id == group_id))).first() is not None
        members = await _member_ids(session, group_id)
        await purge_groups(session, [group_id])
    if had_roles:
        for user_id in members:
            await svc.revocations.revoke(user_id=user_id)


async def list_groups(svc: Identity, domain_id: str | None = None) -> list[dict[str, Any]]:
    async with svc.store.read() as session:
        query = select(Group).order_by(Group.id)
        if domain_id is not None:
            query = query.where(Group.domain_id == domain_id)
        return [render(g) for g in (await session.scalars(query)).all()]


async def _member_ids(session: AsyncSession, group_id: str) -> list[str]:
    return list((await session.scalars(select(UserGroupMembership.user_id).where(
        UserGroupMembership.group_id == group_id))).all())


async def _require_both(session: AsyncSession, group_id: str, user_id: str) -> None:
    if await session.get(Group, group_id) is None:
        raise NotFound(f"Could not find group: {group_id}.")
    if await session.get(User, user_id) is None:
        raise NotFound(f"Could not find user: {user_id}.")


async def member_ids(svc: Identity, group_id: str) -> list[str]:
    async with svc.store.read() as session:
        if await session.get(Group, group_id) is None:
            raise NotFound(f"Could not find group: {group_id}.")
        return await _member_ids(session, group_id)


async def add_member(svc: Identity, group_id: str, user_id: str) -> None:
    async with svc.store.write() as session:
        await _require_both(session, group_id, user_id)
        if await session.get(UserGroupMembership, (user_id, group_id)) is None:
            session.add(UserGroupMembership(user_id=user_id, group_id=group_id))


async def is_member(svc: Identity, group_id: str, user_id: str) -> bool:
    async with svc.store.read() as session:
        await _require_both(session, group_id, user_id)
        return await session.get(UserGroupMembership, (user_id, group_id)) is not None


async def remove_member(svc: Identity, group_id: str, user_id: str) -> None:
    async with svc.store.write() as session:
        row = await session.get(UserGroupMembership, (user_id, group_id))
        if row is None:
            await _require_both(session, group_id, user_id)
            raise NotFound(f"User '{user_id}' not found in group '{group_id}'")
        await session.delete(row)
    await svc.revocations.revoke(user_id=user_id)


async def groups_for_user(svc: Identity, user_id: str) -> list[dict[str, Any]]:
    async with svc.store.read() as session:
        if await session.get(User, user_id) is None:
            raise NotFound(f"Could not find user: {user_id}.")
        rows = (await session.scalars(select(Group).join(
            UserGroupMembership, UserGroupMembership.group_id == Group.id).where(
            UserGroupMembership.user_id == user_id).order_by(Group.id))).all()
        return [render(g) for g in rows]
