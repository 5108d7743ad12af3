"""Generate an Alembic revision for a service by autogenerate: python tools/db_revision.py identity "message" 0002"""
import asyncio, sys
from pathlib import Path
from alembic import command
from stackling.db.engine import create_engine
from stackling.db.migrate import alembic_config, upgrade
svc = sys.argv[1]; msg = sys.argv[2]; rev_id = sys.argv[3]
loc = Path(f"src/stackling/{svc}/migrations")
async def main():
    eng = create_engine("sqlite+aiosqlite:////tmp/autogen.sqlite")
    await upgrade(eng, loc, f"alembic_version_{svc}")
    cfg = alembic_config(loc, f"alembic_version_{svc}")
    def run(conn):
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=msg, autogenerate=True, rev_id=rev_id)
    async with eng.begin() as conn:
        await conn.run_sync(run)
asyncio.run(main())
