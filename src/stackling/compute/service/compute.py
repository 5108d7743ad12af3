"""The compute service object: database, bus clients and the image client, wired once.

compute-api, the scheduler and the conductor each hold one (in the all-in-one process they
share it); compute agents never do -- they have no database (see ``compute/agent``).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from stackling.bus import Transport
from stackling.clients.image import ImageClient
from stackling.clients.network import NetworkClient
from stackling.common.config import ComputeConfig, Config
from stackling.compute.rpcapi import ComputeAgentAPI, SchedulerAPI
from stackling.compute.service import flavors
from stackling.db.engine import create_engine, session_factory
from stackling.db.migrate import upgrade
from stackling.db.store import Store

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "alembic_version_compute"


class ComputeService:
    def __init__(self, config: Config, bus: Transport, images: ImageClient | None = None,
                 engine: AsyncEngine | None = None) -> None:
        self.config = config
        self.engine = engine or create_engine(config.database_url("compute"),
                                              echo=config.database.echo)
        self.store = Store(session_factory(self.engine))
        self.bus = bus
        self.scheduler = SchedulerAPI(bus)
        self.agents = ComputeAgentAPI(bus)
        self.images = images
        self.network: NetworkClient | None = None  # set when the cloud has a network service

    @property
    def conf(self) -> ComputeConfig:
        return self.config.compute

    async def start(self) -> None:
        """Migrate the database and create the default flavors on a fresh one."""
        await upgrade(self.engine, MIGRATIONS, VERSION_TABLE)
        if self.conf.bootstrap_flavors:
            await flavors.bootstrap(self.store)

    async def close(self) -> None:
        await self.engine.dispose()
