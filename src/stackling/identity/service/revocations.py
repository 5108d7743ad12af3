"""Token revocation: events that say which tokens issued before a moment are void.

An event matches a token when every attribute the event sets matches the token and the token
was issued at or before ``issued_before``. Events are kept until the last token they could
match has expired. The in-memory list follows the store's revision (and a TTL for changes
made by other processes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from stackling.common.timeutils import utcnow
from stackling.identity.models import RevocationEvent
from stackling.identity.service.store import Store
from stackling.identity.service.token_format import TokenData

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    issued_before: datetime
    user_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    role_id: str | None = None
    audit_id: str | None = None
    audit_chain_id: str | None = None
    app_cred_id: str | None = None

    def matches(self, token: TokenData, domain_ids: frozenset[str],
                role_ids: frozenset[str]) -> bool:
        if token.issued_at > self.issued_before:
            return False
        if self.user_id is not None and self.user_id != token.user_id:
            return False
        if self.project_id is not None and self.project_id != token.project_id:
            return False
        if self.domain_id is not None and self.domain_id not in domain_ids:
            return False
        if self.role_id is not None and self.role_id not in role_ids:
            return False
        if self.audit_id is not None and self.audit_id != token.audit_ids[0]:
            return False
        if self.audit_chain_id is not None and self.audit_chain_id != token.audit_ids[-1]:
            return False
        return not (self.app_cred_id is not None and self.app_cred_id != token.app_cred_id)


class Revocations:
    def __init__(self, store: Store, token_lifetime: int, cache_ttl: float = 2.0) -> None:
        self.store = store
        self.token_lifetime = token_lifetime
        self.cache_ttl = cache_ttl
        self._events: list[Event] = []
        self._loaded_revision = -1
        self._loaded_at = 0.0
        # Called after every new event, e.g. to tell other processes' token caches.
        self.listeners: list[Callable[[], Awaitable[None]]] = []

    async def revoke(self, **attrs: str | None) -> None:
        """Record an event now. Attributes: user_id, project_id, domain_id, role_id,
        audit_id, audit_chain_id, app_cred_id."""
        now = utcnow()
        async with self.store.write() as session:
            await session.execute(delete(RevocationEvent).where(RevocationEvent.expires_at < now))
            session.add(RevocationEvent(
                issued_before=now, revoked_at=now,
                expires_at=now + timedelta(seconds=self.token_lifetime), **attrs,
            ))
        for listener in self.listeners:
            try:
                await listener()
            except Exception:  # the event is stored; caches still expire on their own
                log.warning("could not announce a token revocation", exc_info=True)

    async def _load(self) -> None:
        revision = self.store.revision
        async with self.store.read() as session:
            rows = (await session.scalars(select(RevocationEvent))).all()
        self._events = [
            Event(issued_before=r.issued_before, user_id=r.user_id, project_id=r.project_id,
                  domain_id=r.domain_id, role_id=r.role_id, audit_id=r.audit_id,
                  audit_chain_id=r.audit_chain_id, app_cred_id=r.app_cred_id)
            for r in rows
        ]
        self._loaded_revision = revision
        self._loaded_at = time.monotonic()

    async def events(self) -> list[Event]:
        stale = time.monotonic() - self._loaded_at > self.cache_ttl
        if self._loaded_revision != self.store.revision or stale:
            await self._load()
        return self._events

    async def is_revoked(self, token: TokenData, domain_ids: frozenset[str],
                         role_ids: frozenset[str]) -> bool:
        return any(e.matches(token, domain_ids, role_ids) for e in await self.events())

    async def list_since(self, since: datetime | None) -> list[RevocationEvent]:
        async with self.store.read() as session:
            query = select(RevocationEvent).order_by(RevocationEvent.revoked_at)
            if since is not None:
                query = query.where(RevocationEvent.revoked_at >= since)
            return list((await session.scalars(query)).all())
