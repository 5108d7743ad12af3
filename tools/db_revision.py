"""Generate a service's next Alembic revision by autogenerate.

    python tools/db_revision.py identity "add widget table" 0002

Upgrades a scratch SQLite database to the current head, then compares it with the models.
"""

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command

from stackling.db.engine import create_engine
from stackling.db.migrate import alembic_config, upgrade


async def main(service: str, message: str, rev_id: str) -> None:
    location = Path(f"src/stackling/{service}/migrations")
    table = f"alembic_version_{service}"
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/scratch.sqlite")
        await upgrade(engine, location, table)
        cfg = alembic_config(location, table)

        def run(conn: object) -> None:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)

        async with engine.begin() as conn:
            await conn.run_sync(run)
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
