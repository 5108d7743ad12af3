"""Projects: the hierarchy below each domain, tags, options and extra attributes.

Domains are projects with ``is_domain`` set (see :mod:`stackling.identity.service.domains`);
a top-level project's ``parent_id`` is its domain. The rules are Keystone's
(``keystone/resource/core.py``): a parent lives in the same domain and every project above a
new one is enabled; a project is disabled only once its subtree is; only leaves are deleted;
``parent_id``, ``domain_id`` and ``is_domain`` never change; an ``immutable`` project refuses
changes until that option is cleared. Disabling or deleting a project revokes the tokens scoped
to it and deleting it removes what points at it (tags, role assignments, endpoint filters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import Conflict, Forbidden, NotFound, ValidationError
from stackling.common.ids import new_id
from stackling.identity.models import (
    ROOT_DOMAIN,
    ApplicationCredential,
    Assignment,
    Limit,
    Project,
    ProjectEndpoint,
    ProjectEndpointGroup,
    ProjectTag,
)
from stackling.identity.service.identity import Identity
from stackling.identity.service.roles import group_ids_of

MAX_DEPTH = 5  # Keystone's max_project_tree_depth (projects below the domain)
COLUMNS = frozenset({"id", "name", "domain_id", "description", "enabled", "parent_id",
                     "is_domain", "tags", "options", "links"})


@dataclass(slots=True)
class NewProject:
    name: str
    domain_id: str | None = None
    parent_id: str | None = None
    is_domain: bool = False
    enabled: bool = True
    description: str | None = ""
    tags: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


def conflict_message(name: str, project_id: str, is_domain: bool) -> str:
    if is_domain:
        details = ("it is not permitted to have two projects acting as domains with the same "
                   f"name: {name}")
    else:
        details = ("it is not permitted to have two projects with either the same name or "
                   f"same id in the same domain: name is {name}, project id {project_id}")
    return f"Conflict occurred attempting to store project - {details}."


def render(p: Project, tags: list[str]) -> dict[str, Any]:
    """Keystone's project reference (extra attributes flattened in)."""
    ref: dict[str, Any] = {k: v for k, v in (p.extra or {}).items() if k not in COLUMNS}
    ref.update(
        id=p.id, name=p.name, domain_id=None if p.is_domain else p.domain_id,
        description=p.description, enabled=p.enabled,
        parent_id=None if p.is_domain else p.parent_id, is_domain=p.is_domain,
        tags=list(tags), options=_clean_options(p.options),
    )
    return ref


def _clean_options(options: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (options or {}).items() if v is not None}


def is_immutable(p: Project) -> bool:
    return bool((p.options or {}).get("immutable"))


async def tags_of(session: AsyncSession, ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await session.execute(select(ProjectTag.project_id, ProjectTag.name).where(
        ProjectTag.project_id.in_(ids)).order_by(ProjectTag.project_id, ProjectTag.name))
    for project_id, name in rows.all():
        out[project_id].append(name)
    return out


async def render_many(session: AsyncSession, projects: list[Project]) -> list[dict[str, Any]]:
    tags = await tags_of(session, [p.id for p in projects])
    return [render(p, tags[p.id]) for p in projects]


async def load(session: AsyncSession, project_id: str) -> Project | None:
    return await session.get(Project, project_id)


async def require(session: AsyncSession, project_id: str) -> Project:
    p = await session.get(Project, project_id)
    if p is None:
        raise NotFound(f"Could not find project: {project_id}.")
    return p


# -- hierarchy ------------------------------------------------------------------------------


async def parents_of(session: AsyncSession, p: Project) -> list[Project]:
    """The parents of ``p``, nearest first, up to and including its domain."""
    out: list[Project] = []
    seen = {p.id}
    current = p
    while current.parent_id and current.parent_id not in seen:
        parent = await session.get(Project, current.parent_id)
        if parent is None:
            break
        out.append(parent)
        seen.add(parent.id)
        current = parent
    return out


async def subtree_of(session: AsyncSession, p: Project) -> list[Project]:
    """Every project below ``p`` (breadth first)."""
    domain_id = p.id if p.is_domain else p.domain_id
    rows = (await session.scalars(select(Project).where(
        Project.domain_id == domain_id, Project.is_domain.is_(False)))).all()
    children: dict[str, list[Project]] = {}
    for row in rows:
        if row.parent_id:
            children.setdefault(row.parent_id, []).append(row)
    out: list[Project] = []
    todo = [p.id]
    seen = {p.id}
    while todo:
        for child in children.get(todo.pop(0), []):
            if child.id not in seen:
                seen.add(child.id)
                out.append(child)
                todo.append(child.id)
    return out


def parents_as_ids(p: Project, parents: list[Project]) -> dict[str, Any] | None:
    """``{parent: {grandparent: ... {top: None}}}``, or None for a root."""
    result: dict[str, Any] | None = None
    for parent in reversed(parents):
        result = {parent.id: result}
    return result


def subtree_as_ids(p: Project, subtree: list[Project]) -> dict[str, Any] | None:
    children: dict[str, list[str]] = {}
    for child in subtree:
        if child.parent_id:
            children.setdefault(child.parent_id, []).append(child.id)

    def walk(node: str) -> dict[str, Any] | None:
        kids = children.get(node)
        if not kids:
            return None
        return {kid: walk(kid) for kid in kids}

    return walk(p.id)


# -- create / update / delete ---------------------------------------------------------------


async def _check_placement(session: AsyncSession, spec: NewProject) -> tuple[str, str | None]:
    """Where a new project goes: (domain_id, parent_id) after Keystone's checks."""
    if spec.is_domain:
        if spec.parent_id or spec.domain_id:
            raise ValidationError("only root projects are allowed to act as domains.")
        return ROOT_DOMAIN, None
    domain_id = spec.domain_id or ""
    domain = await session.get(Project, domain_id)
    if domain is None or not domain.is_domain:
        raise ValidationError(f"Could not find domain: {domain_id}.")
    parent_id = spec.parent_id or domain.id
    parent = await session.get(Project, parent_id)
    if parent is None:
        raise ValidationError(f"Could not find project: {parent_id}.")
    if parent.is_domain and parent.id != domain.id:
        raise ValidationError(
            f"Cannot create project, the parent ({parent.id}) is acting as a domain, but this "
            f"project's domain id ({domain.id}) does not match the parent's id.")
    if not parent.is_domain and parent.domain_id != domain.id:
        raise ValidationError(
            f"Cannot create project, since it specifies its domain_id {domain.id}, but "
            f"specifies a parent in a different domain ({parent.domain_id}).")
    chain = [parent, *await parents_of(session, parent)]
    for ref in chain:
        if not ref.enabled:
            raise ValidationError(
                f"cannot create a project in a branch containing a disabled project: {ref.id}")
    if len(chain) + 1 > MAX_DEPTH + 1:
        raise Forbidden(f"Max hierarchy depth reached for {parent.id} branch.")
    return domain.id, parent.id


async def create(svc: Identity, spec: NewProject) -> dict[str, Any]:
    project_id = spec.id or new_id()
    name = spec.name.strip()
    async with svc.store.write(conflict_message(name, project_id, spec.is_domain)) as session:
        domain_id, parent_id = await _check_placement(session, spec)
        project = Project(id=project_id, name=name, domain_id=domain_id, parent_id=parent_id,
                          is_domain=spec.is_domain, enabled=spec.enabled,
                          description=spec.description, options=_clean_options(spec.options),
                          extra=dict(spec.extra))
        session.add(project)
        await session.flush()
        for tag in dict.fromkeys(t.strip() for t in spec.tags):
            session.add(ProjectTag(project_id=project_id, name=tag))
        await session.flush()
        tags = sorted(dict.fromkeys(t.strip() for t in spec.tags))
        return render(project, tags)


def check_immutable(p: Project, changes: dict[str, Any], kind: str) -> None:
    """An immutable resource accepts only the update that clears ``immutable`` (alone)."""
    if not is_immutable(p):
        return
    opts = changes.get("options") or {}
    if len(changes) == 1 and "immutable" in opts and opts["immutable"] in (False, None):
        return
    message = f"Unable to update immutable {kind} resource: `{p.id}."
    raise Forbidden(message + ' Set resource option "immutable" to false first.')


async def update(svc: Identity, project_id: str, changes: dict[str, Any],
                 as_domain: bool = False) -> dict[str, Any]:
    """Apply ``changes`` (already type-checked); returns the new reference.

    Known keys: name, description, enabled, options, tags; any other key is an extra
    attribute. ``domain_id``, ``parent_id`` and ``is_domain`` may be given only unchanged.
    """
    disabled = False
    async with svc.store.write() as session:
        p = await load(session, project_id)
        if p is None or (as_domain and not p.is_domain):
            raise NotFound(f"Could not find {'domain' if as_domain else 'project'}: "
                           f"{project_id}.")
        kind = "domain" if p.is_domain else "project"
        if "domain_id" in changes and changes["domain_id"] != render(p, [])["domain_id"]:
            raise ValidationError("Cannot change Domain ID")
        check_immutable(p, changes, kind)
        if "parent_id" in changes and changes["parent_id"] != render(p, [])["parent_id"]:
            raise Forbidden("Update of `parent_id` is not allowed.")
        if "is_domain" in changes and changes["is_domain"] != p.is_domain:
            raise ValidationError("Update of `is_domain` is not allowed.")
        if "enabled" in changes and changes["enabled"] != p.enabled:
            await _check_enable_change(session, p, bool(changes["enabled"]))
            disabled = not changes["enabled"]
        new_name = changes["name"].strip() if "name" in changes else p.name
        message = conflict_message(new_name, p.id, p.is_domain)
        for key, value in changes.items():
            if key == "name":
                p.name = new_name
            elif key == "description":
                p.description = value
            elif key == "enabled":
                p.enabled = bool(value)
            elif key == "options":
                merged = {**(p.options or {}), **value}
                p.options = _clean_options(merged)
            elif key == "tags":
                await session.execute(delete(ProjectTag).where(ProjectTag.project_id == p.id))
                await session.flush()
                for tag in dict.fromkeys(t.strip() for t in value):
                    session.add(ProjectTag(project_id=p.id, name=tag))
            elif key not in COLUMNS:
                p.extra = {**(p.extra or {}), key: value}
        try:
            await session.flush()
        except IntegrityError as exc:  # a duplicate name, in Keystone's words
            raise Conflict(message) from exc
        ref = render(p, (await tags_of(session, [p.id]))[p.id])
    if disabled:
        if p.is_domain:
            await svc.revocations.revoke(domain_id=p.id)
        else:
            await svc.revocations.revoke(project_id=p.id)
    return ref


async def _check_enable_change(session: AsyncSession, p: Project, enable: bool) -> None:
    if enable:
        for parent in await parents_of(session, p):
            if not parent.enabled and not p.is_domain:
                raise Forbidden(f"Cannot enable project {p.id} since it has disabled parents")
        return
    if p.is_domain:
        return  # a domain may be disabled whatever its projects are (Keystone allows it)
    if any(child.enabled for child in await subtree_of(session, p)):
        raise Forbidden(f"Cannot disable project {p.id} since its subtree contains enabled "
                        "projects.")


async def purge_rows(session: AsyncSession, project_ids: list[str]) -> None:
    """Remove everything that points at these projects, then the projects themselves."""
    if not project_ids:
        return
    await session.execute(delete(ProjectTag).where(ProjectTag.project_id.in_(project_ids)))
    await session.execute(delete(Assignment).where(Assignment.target_id.in_(project_ids)))
    await session.execute(delete(Limit).where(Limit.project_id.in_(project_ids)))
    await session.execute(delete(ProjectEndpoint).where(
        ProjectEndpoint.project_id.in_(project_ids)))
    await session.execute(delete(ProjectEndpointGroup).where(
        ProjectEndpointGroup.project_id.in_(project_ids)))
    await session.execute(delete(ApplicationCredential).where(
        ApplicationCredential.project_id.in_(project_ids)))
    await session.execute(delete(Project).where(Project.id.in_(project_ids)))


async def delete_project(svc: Identity, project_id: str) -> None:
    """Delete a leaf project (a domain goes through :func:`domains.delete_domain`)."""
    async with svc.store.write() as session:
        p = await require(session, project_id)
        if is_immutable(p):
            raise Forbidden(f"Unable to delete immutable project resource: `{p.id}. Set "
                            'resource option "immutable" to false first.')
        if await subtree_of(session, p):
            raise Forbidden(f"Cannot delete the project {p.id} since it is not a leaf in the "
                            "hierarchy. Use the cascade option if you want to delete a whole "
                            "subtree.")
        await purge_rows(session, [p.id])
    await svc.revocations.revoke(project_id=project_id)


# -- listing --------------------------------------------------------------------------------


async def list_projects(svc: Identity, *, is_domain: bool | None,
                        domain_id: str | None = None) -> list[dict[str, Any]]:
    async with svc.store.read() as session:
        query = select(Project).order_by(Project.id)
        if is_domain is not None:
            query = query.where(Project.is_domain.is_(is_domain))
        if domain_id is not None:
            query = query.where(Project.domain_id == domain_id)
        rows = list((await session.scalars(query)).all())
        return await render_many(session, rows)


async def accessible_project_ids(session: AsyncSession, user_id: str) -> set[str]:
    """Projects the user holds a role on: directly, through a group, or inherited from a
    domain or a parent project (effective assignments, as Keystone computes them)."""
    actors = [user_id, *await group_ids_of(session, user_id)]
    rows = (await session.execute(select(Assignment.target_id, Assignment.inherited).where(
        Assignment.actor_id.in_(actors)))).all()
    if not rows:
        return set()
    targets = {t for t, _ in rows}
    found = {p.id: p for p in (await session.scalars(select(Project).where(
        Project.id.in_(targets)))).all()}
    out: set[str] = set()
    for target, inherited in rows:
        p = found.get(target)
        if p is None:
            continue
        if not inherited:
            if not p.is_domain:
                out.add(p.id)
            continue
        out.update(child.id for child in await subtree_of(session, p))
    return out


async def projects_for_user(svc: Identity, user_id: str) -> list[dict[str, Any]]:
    async with svc.store.read() as session:
        ids = await accessible_project_ids(session, user_id)
        if not ids:
            return []
        rows = list((await session.scalars(select(Project).where(
            Project.id.in_(ids)).order_by(Project.id))).all())
        return await render_many(session, rows)


async def expand(svc: Identity, project_id: str, *, parents: str | None, subtree: str | None,
                 user_id: str | None) -> dict[str, Any]:
    """Keystone's ``parents_as_list|ids`` and ``subtree_as_list|ids`` additions.

    The ``list`` forms show only projects the caller holds a role on, as Keystone does; the
    ``ids`` forms show the whole structure.
    """
    out: dict[str, Any] = {}
    async with svc.store.read() as session:
        p = await require(session, project_id)
        allowed: set[str] | None = None
        if "list" in (parents, subtree):
            allowed = await accessible_project_ids(session, user_id) if user_id else set()
        if parents is not None:
            chain = await parents_of(session, p)
            if parents == "list":
                assert allowed is not None
                out["parents"] = await render_many(session, [x for x in chain
                                                             if x.id in allowed])
            else:
                out["parents"] = parents_as_ids(p, chain)
        if subtree is not None:
            below = await subtree_of(session, p)
            if subtree == "list":
                assert allowed is not None
                out["subtree"] = await render_many(session, [x for x in below
                                                             if x.id in allowed])
            else:
                out["subtree"] = subtree_as_ids(p, below)
    return out


async def default_domain_for(svc: Identity, parent_id: str) -> str | None:
    """The domain of ``parent_id`` (a project or a domain), when the caller named no domain."""
    async with svc.store.read() as session:
        parent = await session.get(Project, parent_id)
    if parent is None:
        return None
    return parent.id if parent.is_domain else parent.domain_id

