"""The inline SQLite driver and the store's write queue: a locked database is waited out
without blocking the event loop, a stale snapshot fails at once, writes of one process
queue instead of colliding, and nothing waits forever."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from stackling.common.errors import ServiceUnavailable
from stackling.db import sqlite_inline, store
from stackling.db.engine import create_engine, session_factory
from stackling.db.store import Store
from tests.unit.db.busy import blocker, while_ticking

META = MetaData()
ITEMS = Table("items", META, Column("id", Integer, primary_key=True), Column("name", String))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path}/t.sqlite")  # any SQLite URL
    async with eng.begin() as conn:
        await conn.run_sync(META.create_all)
    yield eng
    await eng.dispose()


async def test_the_driver_is_inline(engine: AsyncEngine) -> None:
    assert engine.dialect.driver == "stackling"
    async with engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() == 0
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"


async def test_a_locked_database_is_waited_out_while_the_loop_runs(
        engine: AsyncEngine, tmp_path: Path) -> None:
    other = blocker(tmp_path / "t.sqlite")

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(ITEMS).values(name="mine"))

    waited, ticks = await while_ticking(write(), lambda: other.execute("COMMIT"))
    assert waited >= 0.15  # it did wait for the other writer ...
    assert ticks >= 10  # ... and the loop kept running meanwhile
    async with engine.connect() as conn:
        names = sorted((await conn.execute(select(ITEMS.c.name))).scalars())
    assert names == ["mine", "other"]


async def test_waiting_ends(engine: AsyncEngine, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_inline, "BUSY_TIMEOUT", 0.2)
    other = blocker(tmp_path / "t.sqlite")
    try:
        with pytest.raises(OperationalError, match="locked"):
            async with engine.begin() as conn:
                await conn.execute(insert(ITEMS).values(name="mine"))
    finally:
        other.execute("ROLLBACK")


async def test_a_stale_snapshot_fails_at_once(engine: AsyncEngine, tmp_path: Path) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("BEGIN"))  # deferred: the read below pins a snapshot
        await conn.execute(select(ITEMS))
        other = sqlite3.connect(tmp_path / "t.sqlite", isolation_level=None)
        other.execute("INSERT INTO items (name) VALUES ('other')")
        t0 = time.monotonic()
        with pytest.raises(OperationalError):
            await conn.execute(insert(ITEMS).values(name="mine"))
        assert time.monotonic() - t0 < 1.0  # no retrying what waiting cannot fix
        await conn.rollback()


async def test_writes_of_one_process_queue(engine: AsyncEngine) -> None:
    st = Store(session_factory(engine))
    inside = 0
    most = 0

    async def write(n: int) -> None:
        nonlocal inside, most
        async with st.write() as session:
            inside += 1
            most = max(most, inside)
            await session.execute(insert(ITEMS).values(name=f"w{n}"))
            await asyncio.sleep(0.01)  # something else awaited inside the transaction
            inside -= 1

    await asyncio.gather(*(write(n) for n in range(10)))
    assert most == 1
    async with st.read() as session:
        assert len((await session.execute(select(ITEMS))).all()) == 10


async def test_a_write_never_waits_forever(engine: AsyncEngine,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "LOCK_TIMEOUT", 0.1)
    st = Store(session_factory(engine))
    release = asyncio.Event()

    async def holder() -> None:
        async with st.write():
            await release.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    with pytest.raises(ServiceUnavailable):
        async with st.write():
            pass
    release.set()
    await task
    async with st.write() as session:  # the lock was given back
        await session.execute(insert(ITEMS).values(name="after"))


async def test_a_write_behind_a_woken_writer_still_times_out(
        engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after a release the lock reads free, though the writer it woke has not run
    yet. A write arriving in that moment queues behind it with its timeout, rather than
    taking the free lock's path, which would wait for as long as that writer takes."""
    monkeypatch.setattr(store, "LOCK_TIMEOUT", 0.2)
    st = Store(session_factory(engine))
    release = asyncio.Event()

    async def first() -> float:
        async with st.write():
            await release.wait()
        t0 = time.monotonic()  # the lock is free; the second writer is woken, not run
        with pytest.raises(ServiceUnavailable):
            async with st.write():
                pass
        return time.monotonic() - t0

    async def second() -> None:
        async with st.write():
            await asyncio.sleep(1.0)

    one = asyncio.create_task(first())
    await asyncio.sleep(0.01)
    two = asyncio.create_task(second())
    await asyncio.sleep(0.01)
    release.set()
    assert await one < 0.8  # gave up after its timeout, not after the second writer
    await two
