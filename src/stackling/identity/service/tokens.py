"""Issue and validate tokens.

Validation is the hottest path of the whole cloud (every API call of every service goes
through it), so what a token needs besides its own payload -- the user, the scope, the
effective roles, the catalog -- is computed once per (user, scope) and kept until the
store's revision changes (or ``cache_ttl`` passes, for changes from other processes).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import MultiFernet
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import NotFound, Unauthorized
from stackling.common.timeutils import isotime, utcnow
from stackling.identity.models import ApplicationCredential, Project, User
from stackling.identity.service import oauth1 as oauth1_mod
from stackling.identity.service import roles as roles_mod
from stackling.identity.service import trusts as trusts_mod
from stackling.identity.service.catalog import build_catalog
from stackling.identity.service.endpoint_filter import endpoints_for_project
from stackling.identity.service.fernet import KeyRepository
from stackling.identity.service.revocations import Revocations
from stackling.identity.service.store import Store
from stackling.identity.service.token_format import TokenData, decode, encode, new_audit_id


@dataclass(slots=True)
class ScopeInfo:
    """Everything a token response shows that does not come from the token itself."""

    user: dict[str, Any]
    project: dict[str, Any] | None = None
    domain: dict[str, Any] | None = None
    system: dict[str, Any] | None = None
    roles: list[dict[str, str]] = field(default_factory=list)
    domain_ids: frozenset[str] = frozenset()
    role_ids: frozenset[str] = frozenset()
    is_domain: bool = False
    app_cred: dict[str, Any] | None = None
    trust: dict[str, Any] | None = None  # the token's OS-TRUST:trust block
    trustor_id: str | None = None
    oauth: dict[str, str] | None = None  # the token's OS-OAUTH1 block
    revision: int = 0
    loaded_at: float = 0.0
    # JSON of everything above as a token body shows it, per include_catalog (see render_bytes)
    json_parts: dict[bool, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ValidatedToken:
    id: str
    data: TokenData
    scope: ScopeInfo

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(r["name"] for r in self.scope.roles)


_PER_TOKEN = ("methods", "audit_ids", "expires_at", "issued_at")
_SUBST = re.compile(r"\$\((project_id|tenant_id|user_id)\)s|%\((project_id|tenant_id|user_id)\)s")


class TokenService:
    def __init__(self, store: Store, keys: KeyRepository, revocations: Revocations,
                 lifetime: int, allow_expired_window: int, cache_ttl: float = 2.0) -> None:
        self.store = store
        self.keys = keys
        self.revocations = revocations
        self.lifetime = lifetime
        self.allow_expired_window = allow_expired_window
        self.cache_ttl = cache_ttl
        self._scopes: dict[tuple[str, str, str | None, str | None, str | None, str | None],
                           ScopeInfo] = {}
        self._catalog: tuple[int, float, list[dict[str, Any]]] | None = None
        self._rendered: dict[tuple[str, bool], tuple[int, float, bytes]] = {}
        self._filters: dict[str, tuple[int, float, frozenset[str] | None]] = {}
        self._decoded: dict[str, TokenData] = {}
        self._decoded_with: MultiFernet | None = None

    # -- issuing ---------------------------------------------------------------------------
    async def issue(self, user_id: str, methods: tuple[str, ...], *,
                    project_id: str | None = None, domain_id: str | None = None,
                    system: str | None = None, parent: TokenData | None = None,
                    app_cred_id: str | None = None,
                    expires_at: datetime | None = None,
                    trust_id: str | None = None,
                    access_token_id: str | None = None) -> ValidatedToken:
        now = utcnow()
        expiry = now + timedelta(seconds=self.lifetime)
        if parent is not None:
            expiry = min(expiry, parent.expires_at)
            audit_ids: tuple[str, ...] = (new_audit_id(), parent.audit_ids[-1])
        else:
            audit_ids = (new_audit_id(),)
        if expires_at is not None:
            expiry = min(expiry, expires_at)
        data = TokenData(user_id=user_id, methods=methods, expires_at=expiry, issued_at=now,
                         audit_ids=audit_ids, project_id=project_id, domain_id=domain_id,
                         system=system, app_cred_id=app_cred_id, trust_id=trust_id,
                         access_token_id=access_token_id)
        scope = await self.scope_info(data, auth_error=True)
        return ValidatedToken(encode(data, self.keys.fernet()), data, scope)

    # -- validating ------------------------------------------------------------------------
    async def validate(self, token: str, allow_expired: bool = False) -> ValidatedToken:
        """Return what the token says, or raise NotFound (unknown, tampered, expired,
        revoked, or its user/scope no longer valid)."""
        data = self._decode(token)
        now = utcnow()
        if data.expires_at <= now:
            window = timedelta(seconds=self.allow_expired_window)
            if not allow_expired or data.expires_at + window <= now:
                raise NotFound("The token has expired.")
        scope = await self.scope_info(data, auth_error=False)
        if await self.revocations.is_revoked(data, scope.domain_ids, scope.role_ids) or (
                scope.trustor_id is not None and await self.revocations.is_revoked(
                    replace(data, user_id=scope.trustor_id), scope.domain_ids,
                    scope.role_ids)):  # events about the trustor void its trust's tokens
            raise NotFound("The token has been revoked.")
        return ValidatedToken(token, data, scope)

    async def project_catalog(self, project_id: str | None) -> list[dict[str, Any]]:
        """The catalog a project-scoped token shows: when the project has OS-EP-FILTER
        associations, only those endpoints (and services left with none are dropped), as
        Keystone's SQL catalog does."""
        catalog = await self.catalog()
        if project_id is None:
            return catalog
        now = time.monotonic()
        hit = self._filters.get(project_id)
        if hit is None or hit[0] != self.store.revision or now - hit[1] >= self.cache_ttl:
            revision = self.store.revision
            async with self.store.read() as session:
                endpoints = await endpoints_for_project(session, project_id)
            if len(self._filters) > 10000:
                self._filters.clear()
            hit = (revision, now, frozenset(e.id for e in endpoints) or None)
            self._filters[project_id] = hit
        allowed = hit[2]
        if allowed is None:
            return catalog
        filtered = [{**svc, "endpoints": [e for e in svc["endpoints"] if e["id"] in allowed]}
                    for svc in catalog]
        return [svc for svc in filtered if svc["endpoints"]]

    def _decode(self, token: str) -> TokenData:
        """Decrypt, remembering the result per token string for as long as the key set is
        the same (a token is immutable; its expiry and revocation are checked every time)."""
        fernet = self.keys.fernet()
        if fernet is not self._decoded_with:
            self._decoded.clear()
            self._decoded_with = fernet
        data = self._decoded.get(token)
        if data is None:
            data = decode(token, fernet)
            if len(self._decoded) >= 10000:
                self._decoded.clear()
            self._decoded[token] = data
        return data

    async def catalog(self) -> list[dict[str, Any]]:
        cached = self._catalog
        if (cached is not None and cached[0] == self.store.revision
                and time.monotonic() - cached[1] < self.cache_ttl):
            return cached[2]
        revision = self.store.revision
        async with self.store.read() as session:
            catalog = await build_catalog(session)
        self._catalog = (revision, time.monotonic(), catalog)
        return catalog

    async def scope_info(self, data: TokenData, auth_error: bool) -> ScopeInfo:
        scope_type, scope_id = data.scope_key
        key = (data.user_id, scope_type, scope_id, data.app_cred_id, data.trust_id,
               data.access_token_id)
        cached = self._scopes.get(key)
        now = time.monotonic()
        if (cached is not None and cached.revision == self.store.revision
                and now - cached.loaded_at < self.cache_ttl):
            return cached
        revision = self.store.revision
        error: type[Unauthorized] | type[NotFound] = Unauthorized if auth_error else NotFound
        async with self.store.read() as session:
            info = await self._load_scope(session, data, error)
        info.revision = revision
        info.loaded_at = now
        if len(self._scopes) > 10000:
            self._scopes.clear()
        self._scopes[key] = info
        return info

    async def _domain_ref(self, session: AsyncSession, domain_id: str,
                          error: type[Exception]) -> dict[str, Any]:
        domain = await session.get(Project, domain_id)
        if domain is None or not domain.is_domain:
            raise error(f"Could not find domain: {domain_id}.")
        if not domain.enabled:
            raise error(f"Domain is disabled: {domain_id}")
        return {"id": domain.id, "name": domain.name}

    async def _load_scope(self, session: AsyncSession, data: TokenData,
                          error: type[Unauthorized] | type[NotFound]) -> ScopeInfo:
        user = await session.get(User, data.user_id)
        if user is None:
            raise error(f"Could not find user: {data.user_id}.")
        if not user.enabled:
            raise error(f"User is disabled: {user.id}")
        user_domain = await self._domain_ref(session, user.domain_id, error)
        info = ScopeInfo(user={
            "id": user.id, "name": user.name, "domain": user_domain,
            "password_expires_at": isotime(user.password_expires_at)
            if user.password_expires_at else None,
        })
        domain_ids = {user.domain_id}
        refs: list[roles_mod.RoleRef] = []
        if data.project_id:
            project = await session.get(Project, data.project_id)
            if project is None:
                raise error(f"Could not find project: {data.project_id}.")
            if not project.enabled:
                raise error(f"Project is disabled: {project.id}")
            if project.is_domain:
                info.is_domain = True
                info.project = {"id": project.id, "name": project.name,
                                "domain": {"id": project.id, "name": project.name}}
            else:
                pdomain = await self._domain_ref(session, project.domain_id, error)
                info.project = {"id": project.id, "name": project.name, "domain": pdomain}
                domain_ids.add(project.domain_id)
            refs = await roles_mod.project_roles(session, user.id, project.id)
        elif data.domain_id:
            info.domain = await self._domain_ref(session, data.domain_id, error)
            domain_ids.add(data.domain_id)
            refs = await roles_mod.domain_roles(session, user.id, data.domain_id)
        elif data.system:
            info.system = {data.system: True}
            refs = await roles_mod.system_roles(session, user.id)
        if data.app_cred_id:
            refs = await self._app_cred_roles(session, data, refs, info, error)
        if data.trust_id:
            refs = await self._trust_roles(session, data, info, error)
        if data.access_token_id:
            found = await oauth1_mod.for_token(session, data.access_token_id, data.user_id,
                                               data.project_id, error)
            info.oauth, refs = found.block, found.roles
        scoped = data.project_id or data.domain_id or data.system
        if scoped and not refs:
            raise error(f"User {user.id} has no access to the requested scope.")
        info.roles = [r.as_dict() for r in refs]
        info.role_ids = frozenset(r.id for r in refs)
        info.domain_ids = frozenset(domain_ids)
        return info

    async def _app_cred_roles(self, session: AsyncSession, data: TokenData,
                              refs: list[roles_mod.RoleRef], info: ScopeInfo,
                              error: type[Exception]) -> list[roles_mod.RoleRef]:
        cred = await session.get(ApplicationCredential, data.app_cred_id)
        if cred is None or cred.user_id != data.user_id:
            raise error(f"Could not find Application Credential: {data.app_cred_id}.")
        if cred.expires_at is not None and cred.expires_at <= utcnow():
            raise error("Application credential has expired.")
        # The credential's roles, as far as the user still holds them (implied included).
        allowed = await roles_mod.expand_implied(session, set(cred.role_ids))
        info.app_cred = {"id": cred.id, "name": cred.name, "restricted": not cred.unrestricted}
        if cred.access_rules:  # shown (and enforced by every service) when there are any
            info.app_cred["access_rules"] = [dict(r) for r in cred.access_rules]
        return [r for r in refs if r.id in allowed]

    async def _trust_roles(self, session: AsyncSession, data: TokenData, info: ScopeInfo,
                           error: type[Exception]) -> list[roles_mod.RoleRef]:
        """A trust-scoped token: the trust's roles; the trustor shown when impersonating."""
        assert data.trust_id is not None
        found = await trusts_mod.for_token(session, data.trust_id, data.user_id, error)
        info.trust = found.as_dict()
        info.trustor_id = found.trustor.id
        if found.trust.impersonation:
            trustor = found.trustor
            info.user = {
                "id": trustor.id, "name": trustor.name,
                "domain": await self._domain_ref(session, trustor.domain_id, error),
                "password_expires_at": isotime(trustor.password_expires_at)
                if trustor.password_expires_at else None,
            }
        return found.roles

    # -- rendering -------------------------------------------------------------------------
    async def render(self, vt: ValidatedToken, include_catalog: bool = True) -> dict[str, Any]:
        """The ``{"token": {...}}`` body of Keystone's token API."""
        data, scope = vt.data, vt.scope
        body: dict[str, Any] = {
            "methods": list(data.methods),
            "user": scope.user,
            "audit_ids": list(data.audit_ids),
            "expires_at": isotime(data.expires_at),
            "issued_at": isotime(data.issued_at),
        }
        if scope.trust is not None:
            body["OS-TRUST:trust"] = scope.trust
        if scope.project is not None:
            body["project"] = scope.project
            if scope.trust is None:  # Keystone shows no is_domain on trust-scoped tokens
                body["is_domain"] = scope.is_domain
        elif scope.domain is not None:
            body["domain"] = scope.domain
        elif scope.system is not None:
            body["system"] = scope.system
        if data.project_id or data.domain_id or data.system:
            body["roles"] = scope.roles
        if scope.app_cred is not None:
            body["application_credential"] = scope.app_cred
        if scope.oauth is not None:
            body["OS-OAUTH1"] = scope.oauth
        if include_catalog and (data.project_id or data.domain_id or data.system):
            body["catalog"] = _substitute(await self.project_catalog(data.project_id), data)
        return {"token": body}


    async def render_bytes(self, vt: ValidatedToken, include_catalog: bool = True) -> bytes:
        """:meth:`render` as JSON bytes. What comes from the scope (user, project, roles,
        catalog: nearly all of it) is serialised once per :class:`ScopeInfo`; only the
        token's own fields are serialised per token."""
        data, scope = vt.data, vt.scope
        static = scope.json_parts.get(include_catalog)
        if static is None:
            body = (await self.render(vt, include_catalog))["token"]
            for name in _PER_TOKEN:
                body.pop(name)
            static = json.dumps(body, separators=(",", ":"))[1:-1]
            scope.json_parts[include_catalog] = static
        own = json.dumps({"methods": list(data.methods), "audit_ids": list(data.audit_ids),
                          "expires_at": isotime(data.expires_at),
                          "issued_at": isotime(data.issued_at)}, separators=(",", ":"))
        return f'{{"token":{own[:-1]}{"," if static else ""}{static}}}}}'.encode()

    async def render_json(self, vt: ValidatedToken, include_catalog: bool = True) -> bytes:
        """:meth:`render` as JSON bytes, kept per token until the store changes: the same
        token is validated again and again by every service it is shown to."""
        key = (vt.id, include_catalog)
        now = time.monotonic()
        hit = self._rendered.get(key)
        if hit is not None and hit[0] == vt.scope.revision and now - hit[1] < self.cache_ttl:
            return hit[2]
        body = await self.render_bytes(vt, include_catalog)
        if len(self._rendered) > 10000:
            self._rendered.clear()
        self._rendered[key] = (vt.scope.revision, now, body)
        return body


def _substitute(catalog: list[dict[str, Any]], data: TokenData) -> list[dict[str, Any]]:
    """Fill ``$(project_id)s``-style placeholders in endpoint URLs (Nova-style URLs)."""
    values = {"project_id": data.project_id or "", "tenant_id": data.project_id or "",
              "user_id": data.user_id}

    def fill(url: str) -> str:
        return _SUBST.sub(lambda m: values[m.group(1) or m.group(2)], url)

    if not any("(" in ep["url"] for svc in catalog for ep in svc["endpoints"]):
        return catalog
    return [
        {**svc, "endpoints": [{**ep, "url": fill(ep["url"])} for ep in svc["endpoints"]]}
        for svc in catalog
    ]
