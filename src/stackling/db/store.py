"""A service's database access: read sessions, write transactions, and a change counter.

Every committed write bumps :attr:`Store.revision`; per-process caches (identity's token
caches, for one) compare revisions and drop what is stale. Other processes sharing the
database see changes within their caches' TTL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stackling.common.errors import Conflict


class Store:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.revision = 0

    def changed(self) -> None:
        self.revision += 1

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self, conflict: str | None = None) -> AsyncIterator[AsyncSession]:
        """A transaction; commits on success. A uniqueness violation becomes 409 Conflict
        with ``conflict`` as its message (no SQL, no values leak into the message)."""
        async with self.sessions() as session:
            try:
                async with session.begin():
                    yield session
            except IntegrityError as exc:
                raise Conflict(conflict or "Conflict occurred attempting to store the resource."
                               ) from exc
        self.changed()
