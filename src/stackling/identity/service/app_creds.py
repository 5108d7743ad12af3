"""Application credentials: a user's named, revocable login for one project and a subset of
the user's roles there, with a secret shown only once.

What Keystone checks, restated: the roles asked for (by id or by name, plus what they imply)
must all be in the creating token *and* held by the user on the project (else 400, "Invalid
application credential"); ``expires_at`` may not be in the past (400). The secret is kept as
a bcrypt hash. Access rules (service/path/method) are stored per user in ``access_rule``
and copied onto each credential that uses them; a rule in use cannot be deleted (403).
Deleting a credential voids the tokens made with it (a revocation event; token validation
also looks the credential up).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import BadRequest, Forbidden, NotFound
from stackling.common.ids import new_id
from stackling.common.timeutils import utcnow
from stackling.identity.models import (
    GLOBAL_ROLE_DOMAIN,
    AccessRule,
    ApplicationCredential,
    ImpliedRole,
    Role,
    User,
)
from stackling.identity.service.passwords import PasswordHasher
from stackling.identity.service.revocations import Revocations
from stackling.identity.service.roles import project_roles
from stackling.identity.service.store import Store

ACCESS_RULE_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


class AppCredValidationError(BadRequest):
    """Keystone's ApplicationCredentialValidationError."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Invalid application credential: {detail}")


def generate_secret() -> str:
    """64 random bytes, URL-safe base64 without padding (86 characters), as Keystone."""
    return base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode("ascii")


@dataclass(slots=True)
class NewAppCred:
    """A validated create request (shapes checked by the HTTP layer)."""

    name: str
    secret: str | None = None
    description: str | None = None
    expires_at: datetime | None = None
    unrestricted: bool = False
    roles: list[dict[str, str]] | None = None  # [{"id": ...} | {"name": ...}]
    access_rules: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AppCredView:
    """A credential with its roles resolved (what the API renders)."""

    cred: ApplicationCredential
    roles: list[dict[str, Any]]
    secret: str | None = None  # only right after create


def _role_dict(role: Role) -> dict[str, Any]:
    return {
        "id": role.id, "name": role.name,
        "domain_id": None if role.domain_id == GLOBAL_ROLE_DOMAIN else role.domain_id,
        "description": role.description, "options": role.options or {},
    }


def rule_dict(rule: AccessRule) -> dict[str, str]:
    return {"id": rule.id, "service": rule.service, "path": rule.path, "method": rule.method}


class AppCreds:
    def __init__(self, store: Store, hasher: PasswordHasher, revocations: Revocations) -> None:
        self.store = store
        self.hasher = hasher
        self.revocations = revocations

    # -- create ----------------------------------------------------------------------------
    async def create(self, user_id: str, project_id: str, token_role_ids: set[str],
                     new: NewAppCred) -> AppCredView:
        if new.expires_at is not None and new.expires_at <= utcnow():
            raise BadRequest("The 'expires_at' must not be before now. The server could not "
                             "comply with the request since it is either malformed or "
                             "otherwise incorrect. The client is assumed to be in error.")
        secret = new.secret or generate_secret()
        secret_hash = await self.hasher.hash(secret)
        async with self.store.write(
                conflict="Conflict occurred attempting to store application_credential - "
                         "Duplicate entry found with name "
                         f"{new.name}.") as session:
            role_ids = await self._wanted_roles(session, new.roles, token_role_ids)
            held = {r.id for r in await project_roles(session, user_id, project_id)}
            missing = [r for r in role_ids if r not in held]
            if missing:
                raise AppCredValidationError(
                    f"Could not find role assignment with role: {missing[0]}, user or group: "
                    f"{user_id}, project, domain, or system: {project_id}.")
            rules = [await self._access_rule(session, user_id, r) for r in new.access_rules]
            cred = ApplicationCredential(
                id=new_id(), name=new.name, secret_hash=secret_hash,
                description=new.description, user_id=user_id, project_id=project_id,
                system=None, expires_at=new.expires_at, unrestricted=new.unrestricted,
                role_ids=role_ids, access_rules=rules, created_at=utcnow(),
            )
            session.add(cred)
            await session.flush()
            roles = await self._roles(session, role_ids)
        return AppCredView(cred, roles, secret)

    async def _wanted_roles(self, session: AsyncSession, asked: list[dict[str, str]] | None,
                            token_role_ids: set[str]) -> list[str]:
        """The role ids the credential gets: the ones asked for plus what they imply (all of
        them in the token), or, when none are asked for, the token's roles."""
        if not asked:
            return sorted(token_role_ids)
        ids: list[str] = []
        for spec in asked:
            if "id" in spec:
                ids.append(spec["id"])
                continue
            found = (await session.scalars(select(Role).where(
                Role.name == spec["name"]))).all()
            if not found:
                raise NotFound(f"Role {spec['name']} is not defined")
            if len(found) > 1:
                raise BadRequest(f"There are multiple role entities named '{spec['name']}'. "
                                 "Please use ID instead of names to resolve the ambiguity.")
            ids.append(found[0].id)
        rules = (await session.execute(select(ImpliedRole.prior_role_id,
                                              ImpliedRole.implied_role_id))).all()
        for role_id in ids:  # grows while walked: implied roles of implied roles too
            ids.extend([i for p, i in rules if p == role_id and i not in ids])
        for role_id in ids:
            if role_id not in token_role_ids:
                raise AppCredValidationError(
                    "Cannot create an application credential with unassigned role")
        return list(dict.fromkeys(ids))

    async def _access_rule(self, session: AsyncSession, user_id: str,
                           spec: dict[str, str]) -> dict[str, str]:
        """Find the user's rule (by id, or by service+path+method) or make a new one."""
        rule: AccessRule | None = None
        if spec.get("id"):
            rule = await session.get(AccessRule, spec["id"])
            if rule is not None and rule.user_id != user_id:
                raise NotFound(f"Could not find Access Rule: {spec['id']}.")
        if rule is None and {"service", "path", "method"} <= set(spec):
            rule = (await session.scalars(select(AccessRule).where(
                AccessRule.user_id == user_id, AccessRule.service == spec["service"],
                AccessRule.path == spec["path"], AccessRule.method == spec["method"],
            ))).first()
            if rule is None:
                rule = AccessRule(id=spec.get("id") or new_id(), user_id=user_id,
                                  service=spec["service"], path=spec["path"],
                                  method=spec["method"])
                session.add(rule)
                await session.flush()
        if rule is None:
            raise NotFound(f"Could not find Access Rule: {spec.get('id')}.")
        return rule_dict(rule)

    async def _roles(self, session: AsyncSession, role_ids: list[str]) -> list[dict[str, Any]]:
        if not role_ids:
            return []
        found = {r.id: r for r in (await session.scalars(
            select(Role).where(Role.id.in_(role_ids)))).all()}
        return [_role_dict(found[r]) for r in role_ids if r in found]

    # -- read ------------------------------------------------------------------------------
    async def find(self, app_cred_id: str) -> ApplicationCredential | None:
        async with self.store.read() as session:
            return await session.get(ApplicationCredential, app_cred_id)

    async def get(self, app_cred_id: str) -> AppCredView:
        async with self.store.read() as session:
            cred = await session.get(ApplicationCredential, app_cred_id)
            if cred is None:
                raise NotFound(f"Could not find Application Credential: {app_cred_id}.")
            return AppCredView(cred, await self._roles(session, cred.role_ids))

    async def list_for_user(self, user_id: str, name: str | None = None
                            ) -> list[AppCredView]:
        async with self.store.read() as session:
            query = select(ApplicationCredential).where(
                ApplicationCredential.user_id == user_id)
            if name is not None:
                query = query.where(ApplicationCredential.name == name)
            creds = (await session.scalars(query.order_by(ApplicationCredential.created_at))
                     ).all()
            return [AppCredView(c, await self._roles(session, c.role_ids)) for c in creds]

    async def user_exists(self, user_id: str) -> bool:
        async with self.store.read() as session:
            return await session.get(User, user_id) is not None

    # -- delete ----------------------------------------------------------------------------
    async def delete(self, app_cred_id: str) -> None:
        async with self.store.write() as session:
            cred = await session.get(ApplicationCredential, app_cred_id)
            if cred is None:
                raise NotFound(f"Could not find Application Credential: {app_cred_id}.")
            await session.delete(cred)
        await self.revocations.revoke(app_cred_id=app_cred_id)

    async def delete_for_user(self, session: AsyncSession, user_id: str,
                              project_id: str | None = None) -> list[str]:
        """Remove a user's credentials (all, or those for one project) inside the caller's
        transaction, as Keystone does when a user is deleted/disabled or loses its roles on
        a project. Returns the ids removed; the caller revokes their tokens after commit."""
        query = select(ApplicationCredential.id).where(ApplicationCredential.user_id == user_id)
        if project_id is not None:
            query = query.where(ApplicationCredential.project_id == project_id)
        ids = list((await session.scalars(query)).all())
        if ids:
            await session.execute(delete(ApplicationCredential).where(
                ApplicationCredential.id.in_(ids)))
        if project_id is None:
            await session.execute(delete(AccessRule).where(AccessRule.user_id == user_id))
        return ids

    # -- access rules ----------------------------------------------------------------------
    async def access_rules(self, user_id: str, filters: dict[str, str]) -> list[dict[str, str]]:
        async with self.store.read() as session:
            query = select(AccessRule).where(AccessRule.user_id == user_id)
            for key in ("service", "path", "method"):
                if key in filters:
                    query = query.where(getattr(AccessRule, key) == filters[key])
            return [rule_dict(r) for r in (await session.scalars(query)).all()]

    async def access_rule(self, user_id: str, rule_id: str) -> dict[str, str]:
        async with self.store.read() as session:
            rule = await session.get(AccessRule, rule_id)
            if rule is None or rule.user_id != user_id:
                raise NotFound(f"Could not find Access Rule: {rule_id}.")
            return rule_dict(rule)

    async def delete_access_rule(self, user_id: str, rule_id: str) -> None:
        async with self.store.write() as session:
            rule = await session.get(AccessRule, rule_id)
            if rule is None or rule.user_id != user_id:
                raise NotFound(f"Could not find Access Rule: {rule_id}.")
            users = (await session.scalars(select(ApplicationCredential.access_rules).where(
                ApplicationCredential.user_id == user_id))).all()
            if any(r.get("id") == rule_id for rules in users for r in rules):
                raise Forbidden("May not delete access rule in use")
            await session.delete(rule)
