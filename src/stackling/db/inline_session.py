"""Sessions for the inline SQLite driver that call SQLAlchemy directly when nothing can wait.

An ``AsyncSession`` runs every operation -- begin, each statement, commit, close -- in a
greenlet of its own (``greenlet_spawn``), so that a driver can suspend mid-call. On the
inline SQLite driver (``db/sqlite_inline``) nothing suspends except a statement that meets
a database locked by another connection, yet the greenlets cost more than the work: a
one-statement write transaction measured about 210 us that way and 95 us called directly.

:class:`InlineSession` calls the synchronous session directly on the loop's thread where
that is safe, and goes the greenlet way otherwise:

- begin, rollback and close never wait (no statement; SQLite's rollback takes no lock);
- a statement runs directly while the session has nothing to flush (an autoflush could
  fail half-way, and a failed flush rolls the whole transaction back). If it meets a locked
  database the driver gives it back unrun (:class:`~stackling.db.sqlite_inline.MustWait`),
  and so does the pool when it has no connection to hand out without waiting
  (``MissingGreenlet``); either way it runs again inside a greenlet, where it waits
  without blocking the loop;
- a commit runs directly when there is nothing to flush (see ``db/sqlite_inline`` on why a
  commit never needs to wait), through the greenlet when there is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction
from sqlalchemy.util import EMPTY_DICT, immutabledict

from stackling.db.sqlite_inline import MustWait

_BUFFERED = immutabledict({"prebuffer_rows": True})  # as AsyncSession.execute asks
_GIVEN_BACK = (MustWait, MissingGreenlet)


class InlineTransaction(AsyncSessionTransaction):
    """``async with session.begin():`` without a greenlet where none is needed."""

    async def start(self, is_ctxmanager: bool = False) -> InlineTransaction:
        sync = self.session.sync_session
        self.sync_transaction = self._assign_proxied(
            sync.begin_nested() if self.nested else sync.begin())
        if is_ctxmanager:
            self.sync_transaction.__enter__()
        return self

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        if type_ is not None or self.session.sync_session._is_clean():
            self._sync_transaction().__exit__(type_, value, traceback)
        else:
            await super().__aexit__(type_, value, traceback)

    async def commit(self) -> None:
        if self.session.sync_session._is_clean():
            self._sync_transaction().commit()
        else:
            await super().commit()

    async def rollback(self) -> None:
        self._sync_transaction().rollback()


class InlineSession(AsyncSession):
    """An ``AsyncSession`` for ``sqlite+stackling`` engines (see the module)."""

    def begin(self) -> InlineTransaction:
        return InlineTransaction(self)

    def begin_nested(self) -> InlineTransaction:
        return InlineTransaction(self, nested=True)

    async def execute(self, statement: Any, params: Any = None, *,
                      execution_options: Any = EMPTY_DICT, bind_arguments: Any = None,
                      **kw: Any) -> Any:
        sync = self.sync_session
        if sync._is_clean() and not execution_options.get("stream_results"):
            options = (immutabledict(execution_options).union(_BUFFERED)
                       if execution_options else _BUFFERED)
            try:
                return sync.execute(statement, params, execution_options=options,
                                    bind_arguments=bind_arguments, **kw)
            except _GIVEN_BACK:
                pass
        return await super().execute(statement, params, execution_options=execution_options,
                                     bind_arguments=bind_arguments, **kw)

    async def scalar(self, statement: Any, params: Any = None, *,
                     execution_options: Any = EMPTY_DICT, bind_arguments: Any = None,
                     **kw: Any) -> Any:
        result = await self.execute(statement, params, execution_options=execution_options,
                                    bind_arguments=bind_arguments, **kw)
        return result.scalar()

    async def get(self, entity: Any, ident: Any, **kw: Any) -> Any:
        sync = self.sync_session
        if sync._is_clean():
            try:
                return sync.get(entity, ident, **kw)
            except _GIVEN_BACK:
                pass
        return await super().get(entity, ident, **kw)

    async def commit(self) -> None:
        sync = self.sync_session
        if sync._is_clean():
            sync.commit()
        else:
            await super().commit()

    async def rollback(self) -> None:
        self.sync_session.rollback()

    async def close(self) -> None:
        self.sync_session.close()
