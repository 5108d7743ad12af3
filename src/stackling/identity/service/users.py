"""Users: create, change, delete, passwords; never a password or its hash leaves here.

As in Keystone (``keystone/identity/core.py``): disabling a user, resetting or changing its
password, and deleting it revoke every token it holds; deleting it also removes its group
memberships, role assignments, application credentials and credentials. A user's
``default_project_id`` may name a missing project but never a domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import Conflict, NotFound, Unauthorized, ValidationError
from stackling.common.ids import new_id
from stackling.common.timeutils import as_aware, isotime, utcnow
from stackling.identity.models import (
    ApplicationCredential,
    Assignment,
    Credential,
    Project,
    User,
    UserGroupMembership,
)
from stackling.identity.service.identity import Identity

COLUMNS = frozenset({"id", "name", "domain_id", "enabled", "default_project_id", "description",
                     "email", "password", "options", "password_expires_at", "links",
                     "federated"})


@dataclass(slots=True)
class NewUser:
    name: str
    domain_id: str
    enabled: bool = True
    password: str | None = None
    default_project_id: str | None = None
    description: str | None = None
    email: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def conflict_message(name: str, domain_id: str) -> str:
    return ("Conflict occurred attempting to store user - Duplicate entry found with name "
            f"{name} at domain ID {domain_id}.")


def render(u: User) -> dict[str, Any]:
    """Keystone's user reference: no password, extra attributes flattened in."""
    ref: dict[str, Any] = {k: v for k, v in (u.extra or {}).items() if k not in COLUMNS}
    if u.description is not None:
        ref["description"] = u.description
    if u.email is not None:
        ref["email"] = u.email
    if u.default_project_id:
        ref["default_project_id"] = u.default_project_id
    ref.update(
        id=u.id, name=u.name, domain_id=u.domain_id, enabled=u.enabled,
        password_expires_at=isotime(u.password_expires_at) if u.password_expires_at else None,
        options={k: v for k, v in (u.options or {}).items() if v is not None},
    )
    return ref


async def _check_domain(session: AsyncSession, domain_id: str) -> None:
    domain = await session.get(Project, domain_id)
    if domain is None or not domain.is_domain:
        raise NotFound(f"Could not find domain: {domain_id}.")


async def _check_default_project(session: AsyncSession, project_id: str | None) -> None:
    if not project_id:
        return
    project = await session.get(Project, project_id)
    if project is not None and project.is_domain:
        raise ValidationError(f"User's default project ID cannot be a domain ID: {project_id}")


def check_password_length(svc: Identity, password: str) -> None:
    if len(password) > svc.config.identity.max_password_length:
        raise ValidationError("Password validation error: the password is too long.")


async def get(svc: Identity, user_id: str) -> dict[str, Any] | None:
    async with svc.store.read() as session:
        u = await session.get(User, user_id)
        return render(u) if u is not None else None


async def create(svc: Identity, spec: NewUser) -> dict[str, Any]:
    name = spec.name.strip()
    hashed = None
    if spec.password is not None:
        check_password_length(svc, spec.password)
        hashed = await svc.hasher.hash(spec.password)
    now = utcnow()
    async with svc.store.write(conflict_message(name, spec.domain_id)) as session:
        await _check_domain(session, spec.domain_id)
        await _check_default_project(session, spec.default_project_id)
        user = User(id=new_id(), name=name, domain_id=spec.domain_id, enabled=spec.enabled,
                    default_project_id=spec.default_project_id, description=spec.description,
                    email=spec.email, password_hash=hashed,
                    password_created_at=now if hashed else None, failed_auth_count=0,
                    created_at=now, options=dict(spec.options), extra=dict(spec.extra))
        session.add(user)
        await session.flush()
        return render(user)


async def update(svc: Identity, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply type-checked ``changes``; unknown keys are extra attributes."""
    hashed = None
    if changes.get("password") is not None:
        check_password_length(svc, changes["password"])
        hashed = await svc.hasher.hash(changes["password"])
    revoke = hashed is not None
    async with svc.store.write() as session:
        u = await session.get(User, user_id)
        if u is None:
            raise NotFound(f"Could not find user: {user_id}.")
        if "domain_id" in changes and changes["domain_id"] != u.domain_id:
            raise ValidationError("Cannot change Domain ID")
        await _check_default_project(session, changes.get("default_project_id"))
        new_name = changes["name"].strip() if "name" in changes else u.name
        message = conflict_message(new_name, u.domain_id)
        for key, value in changes.items():
            if key == "name":
                u.name = new_name
            elif key == "enabled":
                revoke = revoke or (u.enabled and not value)
                u.enabled = bool(value)
            elif key in ("description", "email", "default_project_id"):
                setattr(u, key, value)
            elif key == "password":
                u.password_hash = hashed
                u.password_created_at = utcnow() if hashed else None
                u.failed_auth_count = 0
                u.failed_auth_at = None
            elif key == "options":
                merged = {**(u.options or {}), **value}
                u.options = {k: v for k, v in merged.items() if v is not None}
            elif key not in COLUMNS:
                u.extra = {**(u.extra or {}), key: value}
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(message) from exc
        ref = render(u)
    if revoke:
        await svc.revocations.revoke(user_id=user_id)
    return ref


async def change_password(svc: Identity, user_id: str, original: str, new: str) -> None:
    """Self-service change: the original password must match (else 401).

    Wrong originals count towards the account lockout like failed logins, so this door is no
    way around it."""
    async with svc.store.read() as session:
        u = await session.get(User, user_id)
        stored = u.password_hash if u is not None else None
        locked = bool(u is not None and (u.options or {}).get("lock_password"))
    if u is not None and _locked_out(svc, u):
        raise Unauthorized(f"The account is locked for user: {user_id}.")
    if not await svc.hasher.verify(original, stored) or u is None:
        if u is not None:
            await _record_failure(svc, user_id)
        raise Unauthorized("Error when changing user password: Invalid user / password")
    if locked:
        raise ValidationError("You cannot change your password at this time due to password "
                              "policy disallowing password changes. Please contact your "
                              "administrator to reset your password.")
    check_password_length(svc, new)
    hashed = await svc.hasher.hash(new)
    async with svc.store.write() as session:
        row = await session.get(User, user_id)
        if row is None:
            raise NotFound(f"Could not find user: {user_id}.")
        row.password_hash = hashed
        row.password_created_at = utcnow()
        row.failed_auth_count = 0
        row.failed_auth_at = None
    await svc.revocations.revoke(user_id=user_id)


def _locked_out(svc: Identity, u: User) -> bool:
    attempts = svc.config.identity.lockout_failure_attempts
    if attempts is None or u.failed_auth_count < attempts or u.failed_auth_at is None:
        return False
    until = as_aware(u.failed_auth_at) + timedelta(seconds=svc.config.identity.lockout_duration)
    return until > utcnow()


async def _record_failure(svc: Identity, user_id: str) -> None:
    if svc.config.identity.lockout_failure_attempts is None:
        return
    async with svc.store.write() as session:
        await session.execute(sa_update(User).where(User.id == user_id).values(
            failed_auth_count=User.failed_auth_count + 1, failed_auth_at=utcnow()))


async def purge_users(session: AsyncSession, user_ids: list[str]) -> None:
    """Remove the users and everything that belongs to them."""
    if not user_ids:
        return
    await session.execute(delete(UserGroupMembership).where(
        UserGroupMembership.user_id.in_(user_ids)))
    await session.execute(delete(Assignment).where(Assignment.actor_id.in_(user_ids)))
    await session.execute(delete(ApplicationCredential).where(
        ApplicationCredential.user_id.in_(user_ids)))
    await session.execute(delete(Credential).where(Credential.user_id.in_(user_ids)))
    await session.execute(delete(User).where(User.id.in_(user_ids)))


async def delete_user(svc: Identity, user_id: str) -> None:
    async with svc.store.write() as session:
        if await session.get(User, user_id) is None:
            raise NotFound(f"Could not find user: {user_id}.")
        await purge_users(session, [user_id])
    await svc.revocations.revoke(user_id=user_id)


async def list_users(svc: Identity, domain_id: str | None = None,
                     user_ids: list[str] | None = None) -> list[tuple[dict[str, Any], User]]:
    """References plus rows (for filters on columns the reference does not carry)."""
    async with svc.store.read() as session:
        query = select(User).order_by(User.id)
        if domain_id is not None:
            query = query.where(User.domain_id == domain_id)
        if user_ids is not None:
            query = query.where(User.id.in_(user_ids))
        rows = list((await session.scalars(query)).all())
    return [(render(u), u) for u in rows]
