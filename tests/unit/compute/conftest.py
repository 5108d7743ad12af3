"""Fixtures of the compute unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackling.compute.models import Base
from stackling.db.engine import create_engine, session_factory
from stackling.db.store import Store


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    """A compute database (SQLite, every table made) behind a Store."""
    engine = create_engine(f"sqlite:///{tmp_path}/compute.sqlite")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return Store(session_factory(engine))
