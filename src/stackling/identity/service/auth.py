"""Authentication: turn a ``POST /v3/auth/tokens`` body into a user and a scope.

Every failure is a 401 with a message that names no secret. Unknown users cost a bcrypt
round like known ones (no user enumeration by timing). Lockout follows Keystone's
``lockout_failure_attempts`` / ``lockout_duration``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.config import IdentityConfig
from stackling.common.errors import Forbidden, NotFound, Unauthorized, ValidationError
from stackling.common.timeutils import utcnow
from stackling.identity.models import ROOT_DOMAIN, ApplicationCredential, Project, Trust, User
from stackling.identity.service.fernet import KeyRepository
from stackling.identity.service.oauth1 import AccessGrant, OAuth1
from stackling.identity.service.oauth1_signature import SignedRequest
from stackling.identity.service.password_policy import (
    DISABLED_MESSAGE,
    EXPIRED_MESSAGE,
    PasswordPolicy,
    record_failure,
    record_success,
)
from stackling.identity.service.passwords import PasswordHasher
from stackling.identity.service.receipts import MultiFactor
from stackling.identity.service.roles import project_roles
from stackling.identity.service.store import Store
from stackling.identity.service.token_format import TokenData
from stackling.identity.service.tokens import TokenService, ValidatedToken
from stackling.identity.service.trusts import Trusts, forbidden_action

SUPPORTED_METHODS = ("password", "token", "application_credential", "oauth1")


@dataclass(slots=True, frozen=True)
class Scope:
    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None
    unscoped: bool = False
    trust: Trust | None = None  # OS-TRUST:trust scope (the trust's project, if any)


def _obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(f"Invalid input for field '{field}': {value!r} is not of type "
                              "'object'" if not isinstance(value, str | bytes) else
                              f"Invalid input for field '{field}': expected an object.")
    return value


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"Invalid input for field '{field}': expected a string.")
    return value


class Authenticator:
    def __init__(self, store: Store, tokens: TokenService, hasher: PasswordHasher,
                 config: IdentityConfig, mfa: MultiFactor | None = None,
                 credential_keys: KeyRepository | None = None) -> None:
        self.store = store
        self.mfa = mfa  # None: multi-factor rules are not enforced
        self.tokens = tokens
        self.hasher = hasher
        self.config = config
        self.trusts = Trusts(store)
        self._scopes: dict[str, tuple[int, float, Scope]] = {}
        # OS-OAUTH1 secrets are kept under the credential keys; without them, no oauth1
        self.oauth1 = OAuth1(store, credential_keys) if credential_keys is not None else None

    async def authenticate(self, body: Any, receipt: str | None = None, *,
                           signed: SignedRequest | None = None) -> ValidatedToken:
        """A token for ``body``; ``receipt`` is the ``Openstack-Auth-Receipt`` header (the
        methods an earlier, multi-factor-incomplete attempt proved); ``signed`` is what the
        ``oauth1`` method checks the consumer's signature over."""
        auth = _obj(_obj(body, "body").get("auth"), "auth")
        identity = auth.get("identity")
        if identity is None:
            raise ValidationError("Invalid input for field 'identity': 'identity' is a "
                                  "required property")
        identity = _obj(identity, "identity")
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods or not all(
                isinstance(m, str) for m in methods):
            raise ValidationError("Invalid input for field 'identity/methods': expected a "
                                  "non-empty list of strings.")
        for method in methods:
            if method not in SUPPORTED_METHODS:
                raise Unauthorized("Attempted to authenticate with an unsupported method.")
            if method not in identity:
                raise ValidationError(f"Invalid input for field 'identity': '{method}' is a "
                                      "required property")
        user_id: str | None = None
        parent: TokenData | None = None
        app_cred: ApplicationCredential | None = None
        grant: AccessGrant | None = None
        used: list[str] = []
        for method in dict.fromkeys(methods):
            if method == "password":
                found = await self._password(_obj(identity["password"], "password"))
            elif method == "token":
                parent_vt = await self._token(_obj(identity["token"], "token"))
                parent = parent_vt.data
                found = parent.user_id
                used.extend(m for m in parent.methods if m not in used)
            elif method == "oauth1":
                if signed is None or self.oauth1 is None:
                    raise Unauthorized("Could not validate the access token")
                grant = await self.oauth1.authenticate(signed)
                found = grant.user_id
            else:
                app_cred = await self._app_cred(
                    _obj(identity["application_credential"], "application_credential"))
                found = app_cred.user_id
            if user_id is not None and found != user_id:
                raise Unauthorized("User IDs from the authentication methods do not match.")
            user_id = found
            if method not in used:
                used.append(method)
        assert user_id is not None
        if parent is not None and parent.trust_id is not None:
            raise forbidden_action("Using trust-scoped token to create another token. Create "
                                   "a new trust-scoped token instead")
        if parent is not None and parent.access_token_id is not None:
            raise forbidden_action("Using OAuth-scoped token to create another token. Create "
                                   "a new OAuth-scoped token instead")
        scope = await self._scope(auth.get("scope"))
        if self.mfa is not None:
            used = await self.mfa.check(user_id, used, receipt, SUPPORTED_METHODS)
        if grant is not None:  # the access token says the scope
            return await self.tokens.issue(user_id, tuple(used), project_id=grant.project_id,
                                           access_token_id=grant.access_token_id)
        if scope.trust is not None:
            if app_cred is not None:
                raise Unauthorized("Application credentials cannot request a scope.")
            return await self._issue_trust(user_id, tuple(used), scope.trust, parent)
        if app_cred is not None:
            return await self._issue_app_cred(user_id, tuple(used), app_cred, scope)
        if parent is not None and parent.app_cred_id is not None:
            raise Unauthorized("A token created with an application credential cannot be "
                               "used to create a new token.")
        if not (scope.project_id or scope.domain_id or scope.system or scope.unscoped):
            scope = await self._default_scope(user_id)
        return await self.tokens.issue(
            user_id, tuple(used), project_id=scope.project_id, domain_id=scope.domain_id,
            system=scope.system, parent=parent,
        )

    # -- methods ---------------------------------------------------------------------------
    async def _find_user(self, session: AsyncSession, spec: dict[str, Any]) -> User | None:
        if "id" in spec:
            return await session.get(User, _str(spec["id"], "user/id"))
        if "name" not in spec:
            raise ValidationError("Invalid input for field 'user': either 'id' or 'name' is "
                                  "required.")
        domain = _obj(spec.get("domain"), "user/domain") if "domain" in spec else None
        if domain is None:
            raise ValidationError("Expecting to find domain in user. The server could not "
                                  "comply with the request since it is either malformed or "
                                  "otherwise incorrect. The client is assumed to be in error.")
        domain_id = await self._domain_id(session, domain, Unauthorized)
        return (await session.scalars(select(User).where(
            User.name == _str(spec["name"], "user/name"), User.domain_id == domain_id
        ))).first()

    async def _domain_id(self, session: AsyncSession, spec: dict[str, Any],
                         error: type[Exception]) -> str:
        if "id" in spec:
            domain = await session.get(Project, _str(spec["id"], "domain/id"))
        elif "name" in spec:
            domain = (await session.scalars(select(Project).where(
                Project.name == _str(spec["name"], "domain/name"),
                Project.is_domain.is_(True)))).first()
        else:
            raise ValidationError("Invalid input for field 'domain': either 'id' or 'name' "
                                  "is required.")
        if domain is None or not domain.is_domain:
            raise error("Could not find domain: %s." % (spec.get("id") or spec.get("name")))
        return domain.id

    async def _password(self, spec: dict[str, Any]) -> str:
        user_spec = _obj(spec.get("user"), "password/user")
        password = user_spec.get("password")
        if not isinstance(password, str):
            raise ValidationError("Invalid input for field 'password/user/password': expected "
                                  "a string.")
        if len(password) > self.config.max_password_length:
            raise Unauthorized()
        async with self.store.read() as session:
            user = await self._find_user(session, user_spec)
        if user is None:
            await self.hasher.verify(password, None)
            raise Unauthorized()
        # Keystone's order and messages; a locked account gets the bare 401 (as Keystone's
        # notification wrapper turns AccountLocked into Unauthorized)
        policy = PasswordPolicy(self.config)
        now = utcnow()
        if policy.locked(user, now):
            raise Unauthorized()
        if not await self.hasher.verify(password, user.password_hash):
            await record_failure(self.store, policy, user, now)
            raise Unauthorized()
        if not policy.enabled(user, now):
            raise Unauthorized(DISABLED_MESSAGE.format(user_id=user.id))
        if policy.password_expired(user, now):
            raise Unauthorized(EXPIRED_MESSAGE.format(user_id=user.id))
        await record_success(self.store, policy, user, now)
        return user.id

    async def _token(self, spec: dict[str, Any]) -> ValidatedToken:
        token_id = spec.get("id")
        if not isinstance(token_id, str):
            raise ValidationError("Invalid input for field 'token/id': expected a string.")
        # an unknown, expired or revoked token is 404 here, as in Keystone
        return await self.tokens.validate(token_id)

    async def _app_cred(self, spec: dict[str, Any]) -> ApplicationCredential:
        secret = spec.get("secret")
        if not isinstance(secret, str):
            raise ValidationError("Invalid input for field 'application_credential/secret': "
                                  "expected a string.")
        async with self.store.read() as session:
            if "id" in spec:
                cred = await session.get(ApplicationCredential,
                                         _str(spec["id"], "application_credential/id"))
            elif "name" in spec and "user" in spec:
                user = await self._find_user(session, _obj(spec["user"], "user"))
                cred = None if user is None else (await session.scalars(
                    select(ApplicationCredential).where(
                        ApplicationCredential.user_id == user.id,
                        ApplicationCredential.name == _str(spec["name"], "name"))
                )).first()
            else:
                raise ValidationError("Invalid input for field 'application_credential': "
                                      "either 'id', or 'name' and 'user', are required.")
        if cred is None:
            await self.hasher.verify(secret, None)
            raise Unauthorized()
        if not await self.hasher.verify(secret, cred.secret_hash):
            raise Unauthorized()
        if cred.expires_at is not None and cred.expires_at <= utcnow():
            raise Unauthorized("Application credential has expired.")
        return cred

    async def _issue_app_cred(self, user_id: str, methods: tuple[str, ...],
                              cred: ApplicationCredential, scope: Scope) -> ValidatedToken:
        if scope.domain_id or scope.system or (
                scope.project_id and scope.project_id != cred.project_id):
            raise Unauthorized("Application credentials cannot request a scope.")
        return await self.tokens.issue(
            user_id, methods, project_id=cred.project_id, system=cred.system,
            app_cred_id=cred.id, expires_at=cred.expires_at,
        )

    # -- trusts ----------------------------------------------------------------------------
    async def _trust_scope(self, spec: dict[str, Any]) -> Scope:
        if set(spec) & {"project", "domain", "system", "unscoped"}:
            raise ValidationError("Expecting to find system, project, domain, OS-TRUST:trust "
                                  "or unscoped in scope. The server could not comply with the "
                                  "request since it is either malformed or otherwise "
                                  "incorrect. The client is assumed to be in error.")
        trust_id = _obj(spec["OS-TRUST:trust"], "scope/OS-TRUST:trust").get("id")
        if not trust_id:
            raise ValidationError("Expecting to find trust_id in trust. The server could not "
                                  "comply with the request since it is either malformed or "
                                  "otherwise incorrect. The client is assumed to be in error.")
        trust = await self.trusts.find(_str(trust_id, "OS-TRUST:trust/id"))
        if trust is None:  # missing, expired or used up
            raise Unauthorized()
        return Scope(project_id=trust.project_id, trust=trust)

    async def _issue_trust(self, user_id: str, methods: tuple[str, ...], trust: Trust,
                           parent: TokenData | None) -> ValidatedToken:
        """The trustee gets a token of the trust; one use is taken once it is made."""
        if user_id != trust.trustee_user_id:
            raise Forbidden()
        vt = await self.tokens.issue(user_id, methods, project_id=trust.project_id,
                                     parent=parent, expires_at=trust.expires_at,
                                     trust_id=trust.id)
        try:
            await self.trusts.consume(trust.id)
        except NotFound as exc:  # deleted meanwhile
            raise Unauthorized() from exc
        return vt

    # -- scope -----------------------------------------------------------------------------
    async def _scope(self, spec: Any) -> Scope:
        if spec is None:
            return Scope()
        if spec == "unscoped":
            return Scope(unscoped=True)
        spec = _obj(spec, "scope")
        if "OS-TRUST:trust" in spec:
            return await self._trust_scope(spec)
        # Names and ids resolve the same way until something is written: remember them
        # (only successes; the revision and cache_ttl bound staleness as for tokens).
        key = json.dumps(spec, sort_keys=True, separators=(",", ":"))
        now = time.monotonic()
        hit = self._scopes.get(key)
        if (hit is not None and hit[0] == self.store.revision
                and now - hit[1] < self.config.cache_ttl):
            return hit[2]
        revision = self.store.revision
        scope = await self._resolve_scope(spec)
        if len(self._scopes) >= 10000:
            self._scopes.clear()
        self._scopes[key] = (revision, now, scope)
        return scope

    async def _resolve_scope(self, spec: dict[str, Any]) -> Scope:
        async with self.store.read() as session:
            if "project" in spec:
                project = _obj(spec["project"], "scope/project")
                if "id" in project:
                    found = await session.get(Project, _str(project["id"], "project/id"))
                elif "name" in project:
                    if "domain" not in project:
                        raise ValidationError("Expecting to find domain in project.")
                    domain_id = await self._domain_id(
                        session, _obj(project["domain"], "project/domain"), Unauthorized)
                    found = (await session.scalars(select(Project).where(
                        Project.name == _str(project["name"], "project/name"),
                        Project.domain_id == domain_id))).first()
                else:
                    raise ValidationError("Invalid input for field 'project': either 'id' or "
                                          "'name' is required.")
                if found is None:
                    raise Unauthorized("Could not find project: %s." % (
                        project.get("id") or project.get("name")))
                return Scope(project_id=found.id)
            if "domain" in spec:
                domain_id = await self._domain_id(session, _obj(spec["domain"], "domain"),
                                                  Unauthorized)
                return Scope(domain_id=domain_id)
            if "system" in spec:
                system = _obj(spec["system"], "scope/system")
                if system.get("all") is not True:
                    raise ValidationError("Invalid input for field 'scope/system': only "
                                          "{'all': true} is supported.")
                return Scope(system="all")
        raise ValidationError("Invalid input for field 'scope': expected project, domain or "
                              "system.")

    async def _default_scope(self, user_id: str) -> Scope:
        async with self.store.read() as session:
            user = await session.get(User, user_id)
            if user is None or not user.default_project_id:
                return Scope()
            project = await session.get(Project, user.default_project_id)
            if project is None or not project.enabled or project.domain_id == ROOT_DOMAIN:
                return Scope()
            if not await project_roles(session, user_id, project.id):
                return Scope()
        return Scope(project_id=project.id)
