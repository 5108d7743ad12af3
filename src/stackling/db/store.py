"""A service's database access: read sessions, write transactions, and a change counter.

Every committed write bumps :attr:`Store.revision`; per-process caches (identity's token
caches, for one) compare revisions and drop what is stale. Other processes sharing the
database see changes within their caches' TTL.

On SQLite, write transactions of one process queue on an asyncio lock. SQLite has one
writer at a time; without the lock, concurrent transactions meet in SQLite's busy handler,
which sleeps (1 ms, then up to 100 ms a try) with the lock free in between, and a
transaction that read before it wrote can fail outright when another commit moved the
snapshot on. Queueing in-process hands the lock over without sleeping; other processes on
the same file still meet the driver's busy retry (``db/sqlite_inline``). A write that waits
longer than :data:`LOCK_TIMEOUT` (behind a transaction held open across something slow, or
nested in another write, which SQLite could not run anyway) fails instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stackling.common.errors import Conflict, ServiceUnavailable

LOCK_TIMEOUT = 30.0


class Store:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.revision = 0
        bind = sessions.kw.get("bind")
        sqlite = bind is not None and bind.dialect.name == "sqlite"
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if sqlite else None
        self._queued = 0  # writers waiting for (or just woken with) the write lock
        self._inline = bind is not None and sqlite and bind.dialect.driver == "stackling"

    def changed(self) -> None:
        self.revision += 1

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session, closed on the way out. SQLAlchemy's own ``async with`` closes it in a
        task of its own, shielded from cancellation, which costs a task and several loop
        turns per session. On SQLite (run inline, see ``db/sqlite_inline``) closing never
        suspends, so nothing can interrupt it and it is awaited directly."""
        if not self._inline:
            async with self.sessions() as session:
                yield session
            return
        session = self.sessions()
        try:
            yield session
        finally:
            await session.close()

    read = session

    @asynccontextmanager
    async def write(self, conflict: str | None = None) -> AsyncIterator[AsyncSession]:
        """A transaction; commits on success. A uniqueness violation becomes 409 Conflict
        with ``conflict`` as its message (no SQL, no values leak into the message)."""
        lock = self._write_lock
        if lock is None:
            async with self.sessions() as session:
                try:
                    async with session.begin():
                        yield session
                except IntegrityError as exc:
                    raise _conflict(conflict) from exc
            self.changed()
            return
        if lock.locked() or self._queued:
            self._queued += 1
            try:
                async with asyncio.timeout(LOCK_TIMEOUT):
                    await lock.acquire()
            except TimeoutError:
                raise ServiceUnavailable("The database is busy; try again.") from None
            finally:
                self._queued -= 1
        else:
            # free, and no writer queued that a release has woken but not yet run: taken
            # at once, so there is nothing to time out (and the timer would cost more than
            # many a transaction)
            await lock.acquire()
        session = self.sessions()
        try:
            async with session.begin():
                yield session
        except IntegrityError as exc:
            raise _conflict(conflict) from exc
        finally:
            try:
                await session.close()
            finally:
                lock.release()
        self.changed()


def _conflict(message: str | None) -> Conflict:
    return Conflict(message or "Conflict occurred attempting to store the resource.")
