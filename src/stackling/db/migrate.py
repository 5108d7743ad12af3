"""Run a service's Alembic migrations against its database.

Each service keeps its migrations in ``<service>/migrations`` and its own version table
(``alembic_version_<service>``), so services may share one database or use their own.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(script_location: Path, version_table: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["version_table"] = version_table
    return cfg


async def upgrade(engine: AsyncEngine, script_location: Path, version_table: str,
                  revision: str = "head") -> None:
    """Upgrade the database to ``revision``. Safe to call on every start."""
    cfg = alembic_config(script_location, version_table)

    def _run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def current(engine: AsyncEngine, version_table: str) -> str | None:
    def _get(conn: Connection) -> str | None:
        ctx = MigrationContext.configure(conn, opts={"version_table": version_table})
        return ctx.get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_get)


def head(script_location: Path, version_table: str) -> str | None:
    scripts = ScriptDirectory.from_config(alembic_config(script_location, version_table))
    return scripts.get_current_head()
