"""Async engine and session factory for SQLite (default), PostgreSQL and MariaDB/MySQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from stackling.db import sqlite_inline  # noqa: F401  (registers sqlite+stackling)
from stackling.db.inline_session import InlineSession


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # no waiting inside SQLite: the inline driver waits out a busy database itself
    cur.execute("PRAGMA busy_timeout=0")
    cur.close()


def create_engine(url: str, echo: bool = False) -> AsyncEngine:
    """Create an async engine. SQLite files get WAL + foreign keys; their directory is made."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        # SQLite runs inline on the event loop (see ``db/sqlite_inline``), whichever
        # driver the URL names
        parsed = parsed.set(drivername="sqlite+stackling")
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(pool_size=16, max_overflow=64)
        else:
            kwargs["poolclass"] = StaticPool
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20, pool_recycle=3600)
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for ``engine``; on the inline SQLite driver they skip SQLAlchemy's greenlet
    where nothing can wait (``db/inline_session``)."""
    inline = engine.dialect.driver == "stackling"
    return async_sessionmaker(engine, expire_on_commit=False,
                              class_=InlineSession if inline else AsyncSession)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
