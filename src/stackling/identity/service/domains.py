"""Domains: projects that act as domains (``is_domain``), shown through ``/v3/domains``.

A domain must be disabled before it is deleted (Keystone's guard against deleting one's own
domain by accident). Disabling it revokes every token that involves it; deleting it removes
its projects, users, groups, domain-specific roles, role assignments and configuration.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from stackling.common.errors import Forbidden, NotFound
from stackling.identity.models import (
    ROOT_DOMAIN,
    Assignment,
    DomainConfig,
    Group,
    ImpliedRole,
    Limit,
    Project,
    Role,
    User,
)
from stackling.identity.service import projects
from stackling.identity.service.groups import purge_groups
from stackling.identity.service.identity import Identity
from stackling.identity.service.users import purge_users

_PROJECT_ONLY = ("domain_id", "parent_id", "is_domain")


def render(p: Project, tags: list[str]) -> dict[str, Any]:
    """A domain reference: the project reference without its project-only fields."""
    ref = projects.render(p, tags)
    for key in _PROJECT_ONLY:
        ref.pop(key, None)
    return ref


async def get(svc: Identity, domain_id: str) -> dict[str, Any] | None:
    async with svc.store.read() as session:
        p = await session.get(Project, domain_id)
        if p is None or not p.is_domain:
            return None
        return render(p, (await projects.tags_of(session, [p.id]))[p.id])


async def get_by_name(svc: Identity, name: str) -> dict[str, Any] | None:
    async with svc.store.read() as session:
        p = (await session.scalars(select(Project).where(
            Project.domain_id == ROOT_DOMAIN, Project.name == name))).first()
        if p is None:
            return None
        return render(p, (await projects.tags_of(session, [p.id]))[p.id])


async def list_domains(svc: Identity) -> list[dict[str, Any]]:
    async with svc.store.read() as session:
        rows = list((await session.scalars(select(Project).where(
            Project.is_domain.is_(True)).order_by(Project.id))).all())
        tags = await projects.tags_of(session, [p.id for p in rows])
        return [render(p, tags[p.id]) for p in rows]


async def create(svc: Identity, spec: projects.NewProject) -> dict[str, Any]:
    spec.is_domain = True
    spec.domain_id = None
    spec.parent_id = None
    ref = await projects.create(svc, spec)
    for key in _PROJECT_ONLY:
        ref.pop(key, None)
    return ref


async def update(svc: Identity, domain_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    ref = await projects.update(svc, domain_id, changes, as_domain=True)
    for key in _PROJECT_ONLY:
        ref.pop(key, None)
    return ref


async def delete_domain(svc: Identity, domain_id: str) -> None:
    async with svc.store.write() as session:
        domain = await session.get(Project, domain_id)
        if domain is None or not domain.is_domain:
            raise NotFound(f"Could not find domain: {domain_id}.")
        if projects.is_immutable(domain):
            raise Forbidden(f"Unable to delete immutable domain resource: `{domain_id}. Set "
                            'resource option "immutable" to false first.')
        if domain.enabled:
            raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
        project_ids = list((await session.scalars(select(Project.id).where(
            Project.domain_id == domain_id, Project.is_domain.is_(False)))).all())
        await projects.purge_rows(session, project_ids)
        user_ids = list((await session.scalars(select(User.id).where(
            User.domain_id == domain_id))).all())
        await purge_users(session, user_ids)
        group_ids = list((await session.scalars(select(Group.id).where(
            Group.domain_id == domain_id))).all())
        await purge_groups(session, group_ids)
        role_ids = list((await session.scalars(select(Role.id).where(
            Role.domain_id == domain_id))).all())
        if role_ids:
            await session.execute(delete(Assignment).where(Assignment.role_id.in_(role_ids)))
            await session.execute(delete(ImpliedRole).where(
                ImpliedRole.prior_role_id.in_(role_ids)
                | ImpliedRole.implied_role_id.in_(role_ids)))
            await session.execute(delete(Role).where(Role.id.in_(role_ids)))
        await session.execute(delete(DomainConfig).where(DomainConfig.domain_id == domain_id))
        await session.execute(delete(Limit).where(Limit.domain_id == domain_id))
        await projects.purge_rows(session, [domain_id])
    await svc.revocations.revoke(domain_id=domain_id)
