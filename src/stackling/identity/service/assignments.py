"""Role grants: an actor (user or group) holds a role on a target (project, domain, system),
possibly *inherited* to the projects below the target (OS-INHERIT).

Granting is idempotent. Revoking a grant that does not exist is 404. Revoking records
revocation events for the tokens it may affect: for each user concerned (the user, or every
member of the group) the tokens scoped to the project (or, for an inherited grant, to each
project below it), or every token touching the domain. System grants need no event: token
roles are recomputed at validation, and a system token left without roles stops validating.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import Conflict, Forbidden, NotFound, ValidationError
from stackling.identity.models import (
    GROUP_DOMAIN,
    GROUP_PROJECT,
    GROUP_SYSTEM,
    ROOT_DOMAIN,
    USER_DOMAIN,
    USER_PROJECT,
    USER_SYSTEM,
    Assignment,
    Group,
    Project,
    Role,
    User,
    UserGroupMembership,
)
from stackling.identity.service.revocations import Revocations
from stackling.identity.service.roles_admin import (
    load_domain,
    load_role,
    public_domain_id,
    role_dict,
)
from stackling.identity.service.store import Store

TYPES = {
    ("user", "project"): USER_PROJECT, ("group", "project"): GROUP_PROJECT,
    ("user", "domain"): USER_DOMAIN, ("group", "domain"): GROUP_DOMAIN,
    ("user", "system"): USER_SYSTEM, ("group", "system"): GROUP_SYSTEM,
}


@dataclass(frozen=True, slots=True)
class Grant:
    """One grant as the URL names it. ``target_id`` is ``SYSTEM_TARGET`` for the system."""

    actor: str  # "user" | "group"
    actor_id: str
    target: str  # "project" | "domain" | "system"
    target_id: str
    role_id: str = ""
    inherited: bool = False

    @property
    def type(self) -> str:
        return TYPES[(self.actor, self.target)]

    def row(self) -> Assignment:
        return Assignment(type=self.type, actor_id=self.actor_id, target_id=self.target_id,
                          role_id=self.role_id, inherited=self.inherited)

    def not_found(self) -> NotFound:
        target = "system" if self.target == "system" else self.target_id
        return NotFound(f"Could not find role assignment with role: {self.role_id}, user or "
                        f"group: {self.actor_id}, project, domain, or system: {target}.")


# -- entities as policy targets ----------------------------------------------------------------

def user_ref(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "domain_id": user.domain_id,
            "enabled": user.enabled}


def group_ref(group: Group) -> dict[str, Any]:
    return {"id": group.id, "name": group.name, "domain_id": group.domain_id}


def project_ref(project: Project) -> dict[str, Any]:
    domain_id = project.id if project.domain_id == ROOT_DOMAIN else project.domain_id
    return {"id": project.id, "name": project.name, "domain_id": domain_id,
            "parent_id": project.parent_id, "is_domain": project.is_domain,
            "enabled": project.enabled}


async def load_user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"Could not find user: {user_id}.")
    return user


async def load_group(session: AsyncSession, group_id: str) -> Group:
    group = await session.get(Group, group_id)
    if group is None:
        raise NotFound(f"Could not find group: {group_id}.")
    return group


async def load_project(session: AsyncSession, project_id: str) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise NotFound(f"Could not find project: {project_id}.")
    return project


async def policy_target(store: Store, grant: Grant, *, with_role: bool = True,
                        allow_missing_actor: bool = False) -> dict[str, Any]:
    """What grant rules look at: ``role``, ``user``/``group``, ``project``/``domain``.
    Raises 404 for the first missing entity, in Keystone's order (role, actor, target)."""
    out: dict[str, Any] = {}
    async with store.read() as session:
        if with_role:
            out["role"] = role_dict(await load_role(session, grant.role_id))
        try:
            if grant.actor == "user":
                out["user"] = user_ref(await load_user(session, grant.actor_id))
            else:
                out["group"] = group_ref(await load_group(session, grant.actor_id))
        except NotFound:
            if not allow_missing_actor:
                raise
        if grant.target == "project":
            out["project"] = project_ref(await load_project(session, grant.target_id))
        elif grant.target == "domain":
            domain = await load_domain(session, grant.target_id)
            out["domain"] = {"id": domain.id, "name": domain.name, "enabled": domain.enabled}
    return out


async def get_project_ref(store: Store, project_id: str) -> dict[str, Any]:
    async with store.read() as session:
        return project_ref(await load_project(session, project_id))


# -- grants --------------------------------------------------------------------------------

async def _find(session: AsyncSession, grant: Grant) -> Assignment | None:
    return await session.get(Assignment, (grant.type, grant.actor_id, grant.target_id,
                                          grant.role_id, grant.inherited))


async def create_grant(store: Store, grant: Grant) -> None:
    try:
        await _create_grant(store, grant)
    except Conflict:
        pass  # a concurrent request made the same grant: granting is idempotent


async def _create_grant(store: Store, grant: Grant) -> None:
    async with store.write() as session:
        role = await load_role(session, grant.role_id)
        role_domain = public_domain_id(role)
        if grant.target == "system" and role_domain:
            raise ValidationError(f"Role {role.id} is a domain-specific role. Unable to use "
                                  "a domain-specific role in a system assignment.")
        if grant.target == "project":
            project = await load_project(session, grant.target_id)
            if role_domain and project_ref(project)["domain_id"] != role_domain:
                raise Forbidden(f"Project {project.id} must be in the same domain as the "
                                f"role {role.id} being assigned.")
        if await _find(session, grant) is None:
            session.add(grant.row())


async def check_grant(store: Store, grant: Grant) -> None:
    async with store.read() as session:
        if await _find(session, grant) is None:
            raise grant.not_found()


async def list_grants(store: Store, grant: Grant) -> list[Role]:
    """Roles the actor holds directly on the target (``grant.role_id`` is ignored)."""
    async with store.read() as session:
        query = select(Role).join(Assignment, Assignment.role_id == Role.id).where(
            Assignment.type == grant.type, Assignment.actor_id == grant.actor_id,
            Assignment.target_id == grant.target_id,
            Assignment.inherited.is_(grant.inherited)).order_by(Role.name)
        return list((await session.scalars(query)).all())


async def delete_grant(store: Store, revocations: Revocations, grant: Grant) -> None:
    async with store.write() as session:
        await load_role(session, grant.role_id)
        row = await _find(session, grant)
        if row is None:
            raise grant.not_found()
        await session.delete(row)
        users = [grant.actor_id] if grant.actor == "user" else list((await session.scalars(
            select(UserGroupMembership.user_id).where(
                UserGroupMembership.group_id == grant.actor_id))).all())
        projects: list[str] = []
        if grant.target == "project":
            projects = (await subtree_ids(session, grant.target_id) if grant.inherited
                        else [grant.target_id])
    for user_id in users:
        if grant.target == "domain":
            await revocations.revoke(user_id=user_id, domain_id=grant.target_id)
        for project_id in projects:
            await revocations.revoke(user_id=user_id, project_id=project_id)


# -- project tree helpers ------------------------------------------------------------------

async def subtree_ids(session: AsyncSession, project_id: str) -> list[str]:
    """Ids of every project below ``project_id`` (not itself), nearest first."""
    out: list[str] = []
    todo = [project_id]
    while todo:
        children = list((await session.scalars(select(Project.id).where(
            Project.parent_id.in_(todo), Project.is_domain.is_(False)))).all())
        children = [c for c in children if c not in out and c != project_id]
        out.extend(children)
        todo = children
    return out
