"""A database locked by another connection, and a clock on the event loop while a test
waits for it: shared by the inline driver's and the inline session's tests."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def blocker(path: Path) -> sqlite3.Connection:
    """Another process, as far as SQLite can tell: a plain connection holding the write
    lock, with one row (``other``) of its own in ``items``."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO items (name) VALUES ('other')")
    return other


async def while_ticking(work: Awaitable[Any], release: Callable[[], object]
                        ) -> tuple[float, int]:
    """Run ``work``, calling ``release`` 0.2 s in; how long it took and how often the loop
    ran something else meanwhile."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async def release_later() -> None:
        await asyncio.sleep(0.2)
        release()

    tick_task = asyncio.create_task(ticker())
    releaser = asyncio.create_task(release_later())
    t0 = time.monotonic()
    await work
    waited = time.monotonic() - t0
    tick_task.cancel()
    await releaser
    return waited, ticks
