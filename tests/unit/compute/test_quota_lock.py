"""The project lock quota checks serialize on (compute/service/quotas)."""

from __future__ import annotations

from sqlalchemy import delete, select

from stackling.compute.models import ProjectLock
from stackling.compute.service import quotas
from stackling.db.store import Store


async def _generation(store: Store, key: str) -> int | None:
    async with store.read() as session:
        found = await session.scalar(select(ProjectLock.generation).where(
            ProjectLock.project_id == key))
        return None if found is None else int(found)


async def test_the_lock_row_is_made_once_and_each_lock_moves_it(store: Store) -> None:
    await quotas.ensure_lock(store, "p1")
    assert await _generation(store, "p1") == 0
    for expected in (1, 2):
        async with store.write() as session:
            await quotas.lock(session, "p1")
        assert await _generation(store, "p1") == expected
    await quotas.ensure_lock(store, "p1")  # known: nothing is read or written
    assert await _generation(store, "p1") == 2


async def test_a_lock_row_gone_after_it_was_known_is_made_again(store: Store) -> None:
    await quotas.ensure_lock(store, "p2")
    async with store.write() as session:
        await session.execute(delete(ProjectLock).where(ProjectLock.project_id == "p2"))
    await quotas.ensure_lock(store, "p2")  # still believed to exist
    async with store.write() as session:
        await quotas.lock(session, "p2")
    assert await _generation(store, "p2") == 1
