"""Sessions on the inline SQLite driver: statements run without a greenlet, and whatever must
wait (a database another connection has locked, a pool with no free connection, a flush)
still waits the greenlet way, with the event loop running and nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, String, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.ext.asyncio import session as asyncio_session
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from stackling.db.base import table_of
from stackling.db.engine import create_engine, session_factory
from stackling.db.inline_session import InlineSession
from stackling.db.store import Store
from tests.unit.db.busy import blocker, while_ticking


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


ITEMS = table_of(Item)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(f"sqlite:///{tmp_path}/t.sqlite")
    async with eng.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield eng
    await eng.dispose()


@pytest.fixture
def spawns(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of what went through SQLAlchemy's greenlet."""
    seen: list[str] = []
    real = getattr(asyncio_session, "greenlet_spawn")  # noqa: B009  (not re-exported)

    async def counting(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kw)

    monkeypatch.setattr(asyncio_session, "greenlet_spawn", counting)
    yield seen


async def test_the_factory_makes_inline_sessions_for_sqlite_only(engine: AsyncEngine) -> None:
    assert session_factory(engine)().__class__ is InlineSession
    other = create_async_engine("sqlite+aiosqlite://")
    try:
        assert session_factory(other)().__class__ is not InlineSession
    finally:
        await other.dispose()


async def test_a_transaction_of_statements_needs_no_greenlet(
        engine: AsyncEngine, spawns: list[str]) -> None:
    st = Store(session_factory(engine))
    async with st.write() as session:
        await session.execute(insert(ITEMS).values(name="a"))
        assert await session.scalar(select(ITEMS.c.name)) == "a"
    async with st.read() as session:
        got = await session.get(Item, 1)
        assert got is not None and got.name == "a"
        assert [i.name for i in await session.scalars(select(Item))] == ["a"]
    assert spawns == []


async def test_a_flush_goes_through_the_greenlet(engine: AsyncEngine,
                                                 spawns: list[str]) -> None:
    st = Store(session_factory(engine))
    async with st.write() as session:
        session.add(Item(name="orm"))
        # an autoflushing query with something to flush is not run directly either
        assert [i.name for i in await session.scalars(select(Item))] == ["orm"]
        session.add(Item(name="orm2"))
    assert spawns == ["execute", "__exit__"]
    async with st.read() as session:
        names = sorted((await session.execute(select(ITEMS.c.name))).scalars())
    assert names == ["orm", "orm2"]


async def test_a_locked_database_is_waited_out_while_the_loop_runs(
        engine: AsyncEngine, tmp_path: Path) -> None:
    st = Store(session_factory(engine))
    other = blocker(tmp_path / "t.sqlite")

    async def write() -> None:
        async with st.write() as session:
            await session.execute(insert(ITEMS).values(name="mine"))
            await session.execute(insert(ITEMS).values(name="mine2"))

    waited, ticks = await while_ticking(write(), lambda: other.execute("COMMIT"))
    assert waited >= 0.15  # it waited for the other writer ...
    assert ticks >= 10  # ... with the loop running meanwhile
    async with st.read() as session:
        names = sorted((await session.execute(select(ITEMS.c.name))).scalars())
    assert names == ["mine", "mine2", "other"]  # each statement ran once


async def test_a_flush_waits_out_a_locked_database_too(engine: AsyncEngine,
                                                       tmp_path: Path) -> None:
    st = Store(session_factory(engine))
    other = blocker(tmp_path / "t.sqlite")

    async def write() -> None:
        async with st.write() as session:
            session.add(Item(name="orm"))

    waited, ticks = await while_ticking(write(), lambda: other.execute("ROLLBACK"))
    assert waited >= 0.15 and ticks >= 10
    async with st.read() as session:
        assert list((await session.execute(select(ITEMS.c.name))).scalars()) == ["orm"]


async def test_a_session_waits_for_a_pooled_connection(tmp_path: Path) -> None:
    eng = create_async_engine(f"sqlite+stackling:///{tmp_path}/p.sqlite", pool_size=1,
                              max_overflow=0)
    try:
        async with eng.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        make = session_factory(eng)
        first = make()
        await first.execute(select(ITEMS))  # holds the only connection
        second = make()

        async def read() -> None:
            assert list(await second.scalars(select(Item))) == []
            await second.close()

        task = asyncio.create_task(read())
        await asyncio.sleep(0.05)
        assert not task.done()  # waiting for the connection, not failing
        await first.close()
        await asyncio.wait_for(task, 5)
    finally:
        await eng.dispose()
