"""Users: create, change, delete, passwords; never a password or its hash leaves here.

As in Keystone (``keystone/identity/core.py``): disabling a user, resetting or changing its
password, and deleting it revoke every token it holds; deleting it also removes its group
memberships, role assignments, application credentials and credentials. A user's
``default_project_id`` may name a missing project but never a domain. Password rules
(strength, expiry, history, minimum age, inactivity, lockout) come from ``password_policy``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import Conflict, NotFound, Unauthorized, ValidationError
from stackling.common.ids import new_id
from stackling.common.timeutils import isotime, utcnow
from stackling.identity.models import (
    ApplicationCredential,
    Assignment,
    Credential,
    Project,
    User,
    UserGroupMembership,
)
from stackling.identity.service.identity import Identity
from stackling.identity.service.password_policy import (
    DISABLED_MESSAGE,
    SELF_SERVICE_DISABLED,
    PasswordPolicy,
    record_failure,
    record_success,
)

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


def render(u: User, policy: PasswordPolicy | None = None,
           now: datetime | None = None) -> dict[str, Any]:
    """Keystone's user reference: no password, extra attributes flattened in. With a policy,
    ``enabled`` is false for a user disabled by inactivity, as Keystone shows it."""
    ref: dict[str, Any] = {k: v for k, v in (u.extra or {}).items() if k not in COLUMNS}
    if u.description is not None:
        ref["description"] = u.description
    if u.email is not None:
        ref["email"] = u.email
    if u.default_project_id:
        ref["default_project_id"] = u.default_project_id
    ref.update(
        id=u.id, name=u.name, domain_id=u.domain_id,
        enabled=policy.enabled(u, now or utcnow()) if policy else u.enabled,
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


def policy(svc: Identity) -> PasswordPolicy:
    return PasswordPolicy(svc.config.identity)


async def get(svc: Identity, user_id: str) -> dict[str, Any] | None:
    async with svc.store.read() as session:
        u = await session.get(User, user_id)
        return render(u, policy(svc)) if u is not None else None


async def create(svc: Identity, spec: NewUser) -> dict[str, Any]:
    name = spec.name.strip()
    rules = policy(svc)
    hashed = None
    if spec.password is not None:
        rules.check_strength(spec.password)
        hashed = await svc.hasher.hash(spec.password)
    now = utcnow()
    async with svc.store.write(conflict_message(name, spec.domain_id)) as session:
        await _check_domain(session, spec.domain_id)
        await _check_default_project(session, spec.default_project_id)
        user = User(id=new_id(), name=name, domain_id=spec.domain_id, enabled=spec.enabled,
                    default_project_id=spec.default_project_id, description=spec.description,
                    email=spec.email, password_hash=hashed,
                    password_created_at=now if hashed else None,
                    password_expires_at=rules.expires_at(now, spec.options, by_admin=True)
                    if hashed else None,
                    password_self_service=False, password_history=[], failed_auth_count=0,
                    created_at=now, options=dict(spec.options), extra=dict(spec.extra))
        session.add(user)
        await session.flush()
        return render(user, rules, now)


async def update(svc: Identity, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply type-checked ``changes``; unknown keys are extra attributes.

    As in Keystone, every update re-applies ``enabled`` (the value shown, so a user disabled
    by inactivity stays disabled): an enabled user's failure count is cleared and, when
    inactivity is tracked, its activity is stamped (re-enabling revives an inactive user).
    A password set here is an admin reset: no history or age check, first-use applies."""
    rules = policy(svc)
    hashed = None
    if "password" in changes:
        rules.check_strength(changes["password"])
    if changes.get("password") is not None:
        hashed = await svc.hasher.hash(changes["password"])
    now = utcnow()
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
        shown = rules.enabled(u, now)
        enabled = bool(changes.get("enabled", shown))
        revoke = revoke or (changes.get("enabled") is False and shown)
        for key, value in changes.items():
            if key == "name":
                u.name = new_name
            elif key in ("description", "email", "default_project_id"):
                setattr(u, key, value)
            elif key == "options":
                merged = {**(u.options or {}), **value}
                u.options = {k: v for k, v in merged.items() if v is not None}
            elif key not in COLUMNS:
                u.extra = {**(u.extra or {}), key: value}
        if enabled:
            u.failed_auth_count = 0
            u.failed_auth_at = None
            if rules.rules.disable_user_account_days_inactive:
                u.last_active_at = now
        u.enabled = enabled
        if "password" in changes:
            _set_password(u, rules, hashed, now, self_service=False)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(message) from exc
        ref = render(u, rules, now)
    if revoke:
        await svc.revocations.revoke(user_id=user_id)
    return ref


def _set_password(u: User, rules: PasswordPolicy, hashed: str | None, now: datetime, *,
                  self_service: bool) -> None:
    u.password_history = rules.history_after_change(u)
    u.password_hash = hashed
    u.password_created_at = now if hashed else None
    u.password_expires_at = (rules.expires_at(now, u.options or {}, by_admin=not self_service)
                             if hashed else None)
    u.password_self_service = self_service
    u.failed_auth_count = 0
    u.failed_auth_at = None


async def change_password(svc: Identity, user_id: str, original: str, new: str) -> None:
    """Self-service change: the original password must match (else 401), as a login would.

    Wrong originals count towards the account lockout like failed logins, so this door is no
    way around it; an expired password may be changed (that is the way out of expiry). Then
    Keystone's checks, in its order: strength, ``lock_password``, minimum age, history."""
    rules = policy(svc)
    now = utcnow()
    async with svc.store.read() as session:
        u = await session.get(User, user_id)
    if u is None:
        await svc.hasher.verify(original, None)
        raise Unauthorized()
    if rules.locked(u, now):
        raise Unauthorized()
    if not await svc.hasher.verify(original, u.password_hash):
        await record_failure(svc.store, rules, u, now)
        raise Unauthorized()
    if not rules.enabled(u, now):
        raise Unauthorized(DISABLED_MESSAGE.format(user_id=user_id))
    await record_success(svc.store, rules, u, now)
    rules.check_strength(new)
    if (u.options or {}).get("lock_password") is True:
        raise ValidationError(SELF_SERVICE_DISABLED)
    rules.check_minimum_age(u, now)
    await rules.check_history(svc.hasher, u, new)
    hashed = await svc.hasher.hash(new)
    async with svc.store.write() as session:
        row = await session.get(User, user_id)
        if row is None:
            raise NotFound(f"Could not find user: {user_id}.")
        _set_password(row, rules, hashed, utcnow(), self_service=True)
    await svc.revocations.revoke(user_id=user_id)


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
    rules, now = policy(svc), utcnow()
    return [(render(u, rules, now), u) for u in rows]
