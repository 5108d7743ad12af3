"""The identity service object: its store, keys, tokens and authenticator, wired once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from stackling.common.config import Config
from stackling.common.context import RequestContext
from stackling.common.timeutils import isotime
from stackling.db.engine import create_engine, session_factory
from stackling.db.migrate import upgrade
from stackling.identity.service.auth import Authenticator
from stackling.identity.service.fernet import KeyRepository
from stackling.identity.service.passwords import PasswordHasher
from stackling.identity.service.receipts import MultiFactor, ReceiptService
from stackling.identity.service.revocations import Revocations
from stackling.identity.service.store import Store
from stackling.identity.service.tokens import ScopeInfo, TokenService, ValidatedToken
from stackling.web.auth import CachingValidator

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
#: validated tokens kept for the in-process services
CONTEXTS_KEPT = 4096
VERSION_TABLE = "alembic_version_identity"


class Identity:
    def __init__(self, config: Config, engine: AsyncEngine | None = None) -> None:
        self.config = config
        self.engine = engine or create_engine(config.database_url("identity"),
                                              echo=config.database.echo)
        self.store = Store(session_factory(self.engine))
        conf = config.identity
        self.keys = KeyRepository(config.key_repository(), conf.max_active_keys)
        self.credential_keys = KeyRepository(config.data_dir / "credential-keys",
                                             conf.max_active_keys)
        self.hasher = PasswordHasher(conf.password_hash_rounds)
        self.revocations = Revocations(self.store, conf.token_expiration, conf.cache_ttl)
        self.tokens = TokenService(self.store, self.keys, self.revocations,
                                   conf.token_expiration, conf.allow_expired_window,
                                   conf.cache_ttl)
        # auth receipts (multi-factor rules) have their own keys, as Keystone's fernet_receipts
        self.receipt_keys = KeyRepository(config.data_dir / "receipt-keys", conf.max_active_keys)
        self.authenticator = Authenticator(
            self.store, self.tokens, self.hasher, conf,
            MultiFactor(self.store, ReceiptService(self.receipt_keys), conf.cache_ttl),
            credential_keys=self.credential_keys)
        # validated tokens of the in-process services' requests (see validate_context)
        self._validations = CachingValidator(
            _Uncached(self.tokens), ttl=conf.cache_ttl, size=CONTEXTS_KEPT,
            generation=lambda: self.store.revision)

    async def start(self) -> None:
        """Migrate the database and make sure the key repositories exist."""
        await upgrade(self.engine, MIGRATIONS, VERSION_TABLE)
        self.keys.setup()
        self.credential_keys.setup()
        self.receipt_keys.setup()

    async def close(self) -> None:
        await self.engine.dispose()

    async def validate_context(self, token: str, request_id: str) -> RequestContext:
        """TokenValidator for in-process services (no HTTP round trip).

        Every API request validates its token; the same few tokens come back many times a
        second. A validation is kept while nothing in identity changed (the store's
        revision: every write here, and every revocation another process announces,
        bumps it), for at most ``identity.cache_ttl`` seconds (what revocation checks
        already allow for changes made elsewhere) and never past the token's expiry."""
        return await self._validations.validate_context(token, request_id)


class _Uncached:
    """Each validation afresh (what :class:`Identity` keeps in its cache)."""

    def __init__(self, tokens: TokenService) -> None:
        self.tokens = tokens

    async def validate_context(self, token: str, request_id: str) -> RequestContext:
        return to_context(await self.tokens.validate(token), request_id)


def to_context(vt: ValidatedToken, request_id: str = "") -> RequestContext:
    scope = vt.scope
    project = scope.project or {}
    domain = scope.domain or {}
    return RequestContext(
        request_id=request_id,
        user_id=scope.user["id"],  # the trustor, for a trust that allows impersonation
        user_name=scope.user["name"],
        user_domain_id=scope.user["domain"]["id"],
        project_id=project.get("id"),
        project_name=project.get("name"),
        project_domain_id=project.get("domain", {}).get("id") if project else None,
        domain_id=domain.get("id"),
        domain_name=domain.get("name"),
        system_scope=vt.data.system,
        roles=vt.role_names,
        role_ids=tuple(r["id"] for r in scope.roles),
        audit_ids=vt.data.audit_ids,
        methods=vt.data.methods,
        is_service="service" in vt.role_names,
        token=vt.id,
        application_credential_id=vt.data.app_cred_id,
        access_rules=access_rules_of(scope.app_cred),
        expires_at=isotime(vt.data.expires_at),
        extra=_delegation(scope),
    )


def access_rules_of(app_cred: dict[str, Any] | None) -> tuple[dict[str, Any], ...] | None:
    """The access rules a token's ``application_credential`` block carries (None: none)."""
    rules = (app_cred or {}).get("access_rules")
    return tuple(rules) if rules else None


def _delegation(scope: ScopeInfo) -> dict[str, Any]:
    """How the token was delegated (``trust`` / ``oauth1`` blocks), for policy decisions."""
    out: dict[str, Any] = {}
    if scope.trust is not None:
        out["trust"] = scope.trust
    if scope.oauth is not None:
        out["oauth1"] = scope.oauth
    return out
