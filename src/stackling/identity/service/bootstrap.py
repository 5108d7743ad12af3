"""First-start bootstrap: region, Default domain, roles, admin and demo, and the catalog.

Idempotent: every run makes sure things exist and leaves what exists alone, except the
catalog URLs (they follow the address the cloud is served at) and, when asked, passwords.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.ids import new_id
from stackling.common.timeutils import utcnow
from stackling.identity.models import (
    GLOBAL_ROLE_DOMAIN,
    ROOT_DOMAIN,
    SYSTEM_TARGET,
    USER_PROJECT,
    USER_SYSTEM,
    Assignment,
    Endpoint,
    ImpliedRole,
    Project,
    Region,
    Role,
    Service,
    User,
)
from stackling.identity.service.passwords import PasswordHasher
from stackling.identity.service.store import Store

DEFAULT_DOMAIN_ID = "default"
INTERFACES = ("public", "internal", "admin")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    type: str
    name: str
    url: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Account:
    user: str
    project: str
    role: str
    password: str | None  # None: keep the current password
    system: bool = False  # also grant the role on the system (Keystone's bootstrap does)


async def _role(session: AsyncSession, name: str) -> Role:
    role = (await session.scalars(select(Role).where(
        Role.name == name, Role.domain_id == GLOBAL_ROLE_DOMAIN))).first()
    if role is None:
        # immutable, as Keystone's bootstrap makes its default roles
        role = Role(id=new_id(), name=name, domain_id=GLOBAL_ROLE_DOMAIN,
                    options={"immutable": True}, extra={})
        session.add(role)
        await session.flush()
    return role


async def _project(session: AsyncSession, name: str, description: str) -> Project:
    project = (await session.scalars(select(Project).where(
        Project.name == name, Project.domain_id == DEFAULT_DOMAIN_ID))).first()
    if project is None:
        project = Project(id=new_id(), name=name, domain_id=DEFAULT_DOMAIN_ID,
                          parent_id=DEFAULT_DOMAIN_ID, is_domain=False, enabled=True,
                          description=description, options={}, extra={})
        session.add(project)
        await session.flush()
    return project


async def _account(session: AsyncSession, hasher: PasswordHasher, account: Account,
                   role: Role) -> None:
    project = await _project(session, account.project, f"Bootstrap project {account.project}")
    user = (await session.scalars(select(User).where(
        User.name == account.user, User.domain_id == DEFAULT_DOMAIN_ID))).first()
    now = utcnow()
    if user is None:
        user = User(id=new_id(), name=account.user, domain_id=DEFAULT_DOMAIN_ID, enabled=True,
                    default_project_id=project.id, created_at=now, options={}, extra={},
                    failed_auth_count=0)
        session.add(user)
    # (re)bootstrapping counts as activity, so an inactivity limit never strands the cloud's
    # own accounts (Keystone's bootstrap re-enables its admin the same way)
    user.last_active_at = now
    if account.password is not None:
        user.password_hash = await hasher.hash(account.password)
        user.password_created_at = now
        user.failed_auth_count = 0
        user.failed_auth_at = None
    await session.flush()
    wanted = [(USER_PROJECT, project.id)]
    if account.system:
        wanted.append((USER_SYSTEM, SYSTEM_TARGET))
    for kind, target in wanted:
        if await session.get(Assignment, (kind, user.id, target, role.id, False)) is None:
            session.add(Assignment(type=kind, actor_id=user.id, target_id=target,
                                   role_id=role.id, inherited=False))


async def _catalog(session: AsyncSession, region: str, entries: list[CatalogEntry]) -> None:
    for entry in entries:
        service = (await session.scalars(select(Service).where(
            Service.type == entry.type))).first()
        if service is None:
            service = Service(id=new_id(), type=entry.type, enabled=True,
                              extra={"name": entry.name, "description": entry.description})
            session.add(service)
            await session.flush()
        current = {e.interface: e for e in (await session.scalars(select(Endpoint).where(
            Endpoint.service_id == service.id, Endpoint.region_id == region))).all()}
        for interface in INTERFACES:
            endpoint = current.get(interface)
            if endpoint is None:
                session.add(Endpoint(id=new_id(), service_id=service.id, interface=interface,
                                     region_id=region, url=entry.url, enabled=True, extra={}))
            elif endpoint.url != entry.url:
                endpoint.url = entry.url


async def bootstrap(store: Store, hasher: PasswordHasher, *, region: str,
                    catalog: list[CatalogEntry], accounts: list[Account]) -> None:
    async with store.write() as session:
        if await session.get(Region, region) is None:
            session.add(Region(id=region, description="", extra={}))
        if await session.get(Project, DEFAULT_DOMAIN_ID) is None:
            session.add(Project(id=DEFAULT_DOMAIN_ID, name="Default", domain_id=ROOT_DOMAIN,
                                is_domain=True, enabled=True, options={}, extra={},
                                description="The default domain"))
        await session.flush()
        roles = {name: await _role(session, name)
                 for name in ("admin", "manager", "member", "reader", "service")}
        # admin implies manager implies member implies reader, as Keystone bootstraps them.
        for prior, implied in (("admin", "manager"), ("manager", "member"),
                               ("member", "reader")):
            key = (roles[prior].id, roles[implied].id)
            if await session.get(ImpliedRole, key) is None:
                session.add(ImpliedRole(prior_role_id=key[0], implied_role_id=key[1]))
        # where service users (compute, image, ...) live, as in a Keystone deployment
        await _project(session, "service", "Service users of the cloud's own components")
        for account in accounts:
            await _account(session, hasher, account, roles[account.role])
        await _catalog(session, region, catalog)
