"""``GET /v3/role_assignments``: list grants, or (``effective``) what they amount to.

An assignment is a plain dict, as in Keystone: ``role_id``; ``user_id`` or ``group_id``;
``project_id``, ``domain_id`` or ``system``; ``inherited_to_projects`` for OS-INHERIT grants;
and, for derived ones, ``indirect`` naming where it came from (``group_id``, the
``project_id``/``domain_id`` it was inherited from, the prior ``role_id``).

Effective mode replaces a group grant by one assignment per member, an inherited grant by
one per project below its target, adds implied roles (transitively) and drops domain-specific
roles, which never reach a token. As in Keystone, it does not list system grants.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import NotFound
from stackling.identity.models import (
    GLOBAL_ROLE_DOMAIN,
    GROUP_SYSTEM,
    SYSTEM_TARGET,
    USER_SYSTEM,
    Assignment,
    Group,
    ImpliedRole,
    Project,
    Role,
    User,
    UserGroupMembership,
)
from stackling.identity.service.assignments import (
    TYPES,
    load_project,
    project_ref,
    subtree_ids,
)
from stackling.identity.service.store import Store

Ref = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Query:
    role_id: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    system: bool = False
    domain_id: str | None = None
    project_id: str | None = None
    include_subtree: bool = False
    inherited: bool | None = None  # None: both
    effective: bool = False
    include_names: bool = False
    visible_domain: str | None = None  # a domain-scoped caller sees only its domain


async def list_assignments(store: Store, q: Query) -> list[Ref]:
    async with store.read() as session:
        subtree: list[str] = []
        if q.project_id and q.include_subtree:
            subtree = await subtree_ids(session, q.project_id)
        refs = await (_effective(session, q, subtree) if q.effective
                      else _direct(session, q, subtree))
        if q.visible_domain:
            refs = [r for r in refs if await _in_domain(session, r, q.visible_domain)]
        if q.include_names:
            refs = [await _with_names(session, r) for r in refs]
    return refs


# -- the table, as Keystone's assignment driver reads it ----------------------------------

def _ref(row: Assignment) -> Ref:
    actor = "user_id" if row.type.startswith("User") else "group_id"
    target = "project_id" if row.type.endswith("Project") else "domain_id"
    ref: Ref = {"role_id": row.role_id, actor: row.actor_id, target: row.target_id}
    if row.inherited:
        ref["inherited_to_projects"] = "projects"
    return ref


async def _rows(session: AsyncSession, *, role_id: str | None = None,
                user_id: str | None = None, group_ids: list[str] | None = None,
                domain_id: str | None = None, project_ids: list[str] | None = None,
                inherited: bool | None = None) -> list[Ref]:
    """Project and domain grants matching every given filter."""
    actors = ["user"] if user_id else ["group"] if group_ids else ["user", "group"]
    targets = ["project"] if project_ids else ["domain"] if domain_id else ["project", "domain"]
    query = select(Assignment).where(
        Assignment.type.in_([TYPES[(a, t)] for a in actors for t in targets]))
    if role_id:
        query = query.where(Assignment.role_id == role_id)
    actor_ids = group_ids or ([user_id] if user_id else None)
    if actor_ids:
        query = query.where(Assignment.actor_id.in_(actor_ids))
    target_ids = project_ids or ([domain_id] if domain_id else None)
    if target_ids:
        query = query.where(Assignment.target_id.in_(target_ids))
    if inherited is not None:
        query = query.where(Assignment.inherited.is_(inherited))
    return [_ref(row) for row in (await session.scalars(query)).all()]


async def _system_rows(session: AsyncSession, q: Query) -> list[Ref]:
    query = select(Assignment).where(Assignment.target_id == SYSTEM_TARGET,
                                     Assignment.type.in_([USER_SYSTEM, GROUP_SYSTEM]))
    if q.user_id:
        query = query.where(Assignment.type == USER_SYSTEM, Assignment.actor_id == q.user_id)
    elif q.group_id:
        query = query.where(Assignment.type == GROUP_SYSTEM, Assignment.actor_id == q.group_id)
    if q.role_id:
        query = query.where(Assignment.role_id == q.role_id)
    out: list[Ref] = []
    for row in (await session.scalars(query)).all():
        actor = "user_id" if row.type == USER_SYSTEM else "group_id"
        out.append({"system": {"all": True}, actor: row.actor_id, "role_id": row.role_id})
    return out


async def _direct(session: AsyncSession, q: Query, subtree: list[str]) -> list[Ref]:
    refs: list[Ref] = []
    if not q.system:
        refs = await _rows(session, role_id=q.role_id, user_id=q.user_id,
                           group_ids=[q.group_id] if q.group_id else None,
                           domain_id=q.domain_id,
                           project_ids=[*subtree, q.project_id] if q.project_id else None,
                           inherited=q.inherited)
    if q.system or not (q.project_id or q.domain_id):
        refs += await _system_rows(session, q)
    return refs


# -- effective mode -------------------------------------------------------------------------

async def _parents(session: AsyncSession, project_id: str) -> list[str]:
    """The project's ancestors that are projects (not its domain)."""
    out: list[str] = []
    project = await session.get(Project, project_id)
    while project is not None and project.parent_id and project.parent_id not in out:
        project = await session.get(Project, project.parent_id)
        if project is None or project.is_domain:
            break
        out.append(project.id)
    return out


async def _for_actor(session: AsyncSession, inherited: bool | None, *,
                     user_id: str | None = None, group_ids: list[str] | None = None,
                     project_id: str | None = None, subtree: list[str] | None = None,
                     domain_id: str | None = None) -> list[Ref]:
    """Grants (direct or inherited) that could reach the actor on the target."""
    of_interest = [*(subtree or []), project_id] if project_id else None
    refs: list[Ref] = []
    if inherited is not True:
        refs += await _rows(session, user_id=user_id, group_ids=group_ids, domain_id=domain_id,
                            project_ids=of_interest, inherited=False)
    if inherited is not False:
        if project_id and of_interest:
            project = await load_project(session, project_id)
            refs += await _rows(session, user_id=user_id, group_ids=group_ids,
                                domain_id=project.domain_id, inherited=True)
            sources = await _parents(session, project_id)
            if subtree:
                sources += of_interest
            if sources:
                refs += await _rows(session, user_id=user_id, group_ids=group_ids,
                                    project_ids=sources, inherited=True)
        else:
            refs += await _rows(session, user_id=user_id, group_ids=group_ids, inherited=True)
    return refs


async def _members(session: AsyncSession, ref: Ref, user_id: str | None) -> list[Ref]:
    """A group grant as one grant per member (only ``user_id``'s when given)."""
    if user_id:
        users = [user_id]
    else:
        users = list((await session.scalars(select(UserGroupMembership.user_id).where(
            UserGroupMembership.group_id == ref["group_id"]))).all())
    out = []
    for member in users:
        new = copy.deepcopy(ref)
        new["user_id"] = member
        new.setdefault("indirect", {})["group_id"] = new.pop("group_id")
        out.append(new)
    return out


async def _expand(session: AsyncSession, ref: Ref, user_id: str | None,
                  project_id: str | None, subtree: list[str]) -> list[Ref]:
    if ref.get("inherited_to_projects") != "projects":
        return await _members(session, ref, user_id) if "group_id" in ref else [ref]
    if project_id:
        projects = [project_id, *subtree]
        if subtree and ref.get("project_id") in projects:
            projects = await subtree_ids(session, ref["project_id"])
    elif "domain_id" in ref:
        projects = list((await session.scalars(select(Project.id).where(
            Project.domain_id == ref["domain_id"], Project.is_domain.is_(False)))).all())
    else:
        projects = await subtree_ids(session, ref["project_id"])
    bases = await _members(session, ref, user_id) if "group_id" in ref else [ref]
    out: list[Ref] = []
    for base in bases:
        for target in projects:
            new = copy.deepcopy(base)
            source = "project_id" if "project_id" in new else "domain_id"
            new.setdefault("indirect", {})[source] = new.pop(source)
            new["project_id"] = target
            new.pop("inherited_to_projects")
            out.append(new)
    return out


async def _add_implied(session: AsyncSession, refs: list[Ref]) -> list[Ref]:
    implies: dict[str, list[str]] = {}
    for prior, implied in (await session.execute(select(
            ImpliedRole.prior_role_id, ImpliedRole.implied_role_id))).all():
        implies.setdefault(prior, []).append(implied)
    results = list(refs)
    todo = list(refs)
    seen: set[str] = set()
    while todo:
        ref = todo.pop()
        seen.add(json.dumps(ref, sort_keys=True))
        for implied in implies.get(ref["role_id"], ()):
            new = copy.deepcopy(ref)
            new["role_id"] = implied
            new.setdefault("indirect", {})["role_id"] = ref["role_id"]
            if json.dumps(new, sort_keys=True) in seen:
                continue  # a cycle of rules
            results.append(new)
            todo.append(new)
    return results


async def _effective(session: AsyncSession, q: Query, subtree: list[str]) -> list[Ref]:
    if q.group_id or (q.domain_id and q.inherited):
        return []
    inherited = False if q.domain_id else q.inherited
    refs = await _for_actor(session, inherited, user_id=q.user_id, project_id=q.project_id,
                            subtree=subtree, domain_id=q.domain_id)
    if q.user_id:
        groups = list((await session.scalars(select(UserGroupMembership.group_id).where(
            UserGroupMembership.user_id == q.user_id))).all())
        if groups:
            refs += await _for_actor(session, inherited, group_ids=groups,
                                     project_id=q.project_id, subtree=subtree,
                                     domain_id=q.domain_id)
    expanded: list[Ref] = []
    for ref in refs:
        expanded += await _expand(session, ref, q.user_id, q.project_id, subtree)
    expanded = await _add_implied(session, expanded)
    role_ids = {r["role_id"] for r in expanded}
    global_ids = set((await session.scalars(select(Role.id).where(
        Role.id.in_(role_ids), Role.domain_id == GLOBAL_ROLE_DOMAIN))).all()) if role_ids else set()
    return [r for r in expanded
            if r["role_id"] in global_ids and (not q.role_id or r["role_id"] == q.role_id)]


# -- scoping and names ----------------------------------------------------------------------

async def _in_domain(session: AsyncSession, ref: Ref, domain_id: str) -> bool:
    if ref.get("domain_id") == domain_id:
        return True
    if "project_id" in ref:
        project = await session.get(Project, ref["project_id"])
        return project is not None and project.domain_id == domain_id
    return False


async def _domain_name(session: AsyncSession, domain_id: str) -> str:
    domain = await session.get(Project, domain_id)
    if domain is None:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return domain.name


async def _with_names(session: AsyncSession, ref: Ref) -> Ref:
    out = copy.deepcopy(ref)
    if "domain_id" in ref:
        out["domain_name"] = await _domain_name(session, ref["domain_id"])
    if "user_id" in ref:
        user = await session.get(User, ref["user_id"])
        out.update(user_name=user.name if user else "",
                   user_domain_id=user.domain_id if user else "",
                   user_domain_name=await _domain_name(session, user.domain_id) if user else "")
    if "group_id" in ref:
        group = await session.get(Group, ref["group_id"])
        out.update(group_name=group.name if group else "",
                   group_domain_id=group.domain_id if group else "",
                   group_domain_name=await _domain_name(session, group.domain_id)
                   if group else "")
    if "project_id" in ref:
        project = project_ref(await load_project(session, ref["project_id"]))
        out.update(project_name=project["name"], project_domain_id=project["domain_id"],
                   project_domain_name=await _domain_name(session, project["domain_id"]))
    role = await session.get(Role, ref["role_id"])
    if role is not None:
        out["role_name"] = role.name
        if role.domain_id != GLOBAL_ROLE_DOMAIN:
            out.update(role_domain_id=role.domain_id,
                       role_domain_name=await _domain_name(session, role.domain_id))
    return out
