"""SQLite for the async engine without a thread per connection: ``sqlite+stackling://``.

SQLAlchemy's ``aiosqlite`` driver runs every SQLite call on a worker thread per connection
and hands results back through the event loop. For SQLite -- a library call on a local
file that returns in microseconds -- that hand-off costs far more than the call (measured:
a one-row ORM select 1.2 ms of CPU through aiosqlite, 6 us in ``sqlite3`` itself), and
under load every statement also waits for the GIL and a loop turn. This dialect is the
standard ``pysqlite`` dialect run inline: SQLAlchemy's async layer calls it inside its
greenlet on the event loop thread, as it would any sync driver.

What must not happen inline is waiting: SQLite's own busy handler would sleep with the
whole loop blocked, and the lock's holder may be a transaction on this same loop. So the
connections have ``busy_timeout=0`` and a busy statement is retried here, the wait done
with ``asyncio.sleep`` (the loop runs on; back-off 1 ms .. 50 ms, for up to
:data:`BUSY_TIMEOUT` seconds). A transaction whose snapshot went stale before its first
write (``SQLITE_BUSY_SNAPSHOT``) cannot succeed by waiting and fails at once, as it
would with the busy handler.

Outside a greenlet on the event loop's thread (``db/inline_session`` runs statements there
directly) there is no way to wait without blocking the loop, so a busy *statement* raises
:class:`MustWait` before it has done anything, and the caller runs it again the greenlet
way. A busy *commit* cannot be given back like that (SQLAlchemy has closed its transaction
by then), and needs none: in WAL mode a commit holds the write lock already and never
meets a busy database; the plain-sleep fallback is there for the case that cannot happen.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util.concurrency import await_, in_greenlet

BUSY_TIMEOUT = 30.0
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_BUSY_SNAPSHOT = 517  # SQLITE_BUSY | (2 << 8): a read snapshot older than the last commit


class MustWait(Exception):
    """A statement met a locked database where waiting would block the event loop; it did
    nothing, and is to be run again inside SQLAlchemy's greenlet."""


def _retrying(call: Callable[[], Any], statement: bool = True) -> Any:
    """``call()``, retried while the database is locked, waiting without blocking the loop
    (inside SQLAlchemy's greenlet), given back as :class:`MustWait` (a statement on the
    loop's thread outside one) or with a plain sleep (anywhere else)."""
    delay = 0.001
    deadline = 0.0
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code == _BUSY_SNAPSHOT or (code is not None and code & 0xFF not in _BUSY):
                raise
            if code is None and "locked" not in str(exc):
                raise
            now = time.monotonic()
            if not deadline:
                deadline = now + BUSY_TIMEOUT
            elif now >= deadline:
                raise
            if in_greenlet():
                await_(asyncio.sleep(delay))
            elif statement and asyncio._get_running_loop() is not None:
                raise MustWait from exc
            else:
                time.sleep(delay)
            delay = min(delay * 2, 0.05)


async def _done() -> None:
    """Nothing to wait for. SQLAlchemy's async connection insists each statement awaited
    something (a sync driver by mistake would otherwise pass unnoticed): this is it."""


def _awaited() -> None:
    if in_greenlet():
        await_(_done())


class InlineCursor:
    """A ``sqlite3.Cursor`` whose statements wait out a locked database (see the module)."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        _retrying(lambda: self._cursor.execute(sql, parameters))
        _awaited()
        return self

    def executemany(self, sql: str, seq: Iterable[Any]) -> InlineCursor:
        rows = list(seq)
        _retrying(lambda: self._cursor.executemany(sql, rows))
        _awaited()
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def close(self) -> None:
        self._cursor.close()

    async def _async_soft_close(self) -> None:
        """What SQLAlchemy's async result calls on an async driver's cursor: the rows are
        already here."""

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class InlineConnection:
    """A ``sqlite3.Connection`` handing out :class:`InlineCursor` and committing the same
    patient way."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    def commit(self) -> None:
        _retrying(self._conn.commit, statement=False)

    def rollback(self) -> None:
        self._conn.rollback()

    def close(self) -> None:
        self._conn.close()

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        return self.cursor().execute(sql, parameters)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    driver = "stackling"
    is_async = True
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        conn = super().connect(*cargs, **cparams)
        return InlineConnection(cast(sqlite3.Connection, conn))

    def get_driver_connection(self, connection: Any) -> Any:
        return connection


registry.register("sqlite.stackling", __name__, "InlineSQLiteDialect")
