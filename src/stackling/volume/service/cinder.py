"""The volume service object: database, bus and clients, wired once.

On start it migrates, seeds the default volume type (Cinder's ``__DEFAULT__``) and recovers
from a crash: what was in flight when the process died cannot finish, so ``creating``,
``extending``, ``deleting``, ``backing-up`` and ``restoring-backup`` rows go to the matching
error state with a message, never stay busy forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from stackling.bus import Transport
from stackling.clients.image import ImageClient
from stackling.common.config import Config
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.db.engine import create_engine, session_factory
from stackling.db.migrate import upgrade
from stackling.db.store import Store
from stackling.volume.models import Backup, GroupType, Snapshot, Volume, VolumeType

LOG = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "alembic_version_volume"
DEFAULT_TYPE_DESCRIPTION = "Default Volume Type"
DEFAULT_GROUP_TYPE = "default_group_type"

# what an interrupted operation leaves behind
_RECOVER_VOLUMES = {"creating": "error", "extending": "error_extending",
                    "deleting": "error_deleting", "downloading": "error",
                    "restoring-backup": "error_restoring", "uploading": "available",
                    "backing-up": "available"}
_RECOVER_SNAPSHOTS = {"creating": "error", "deleting": "error_deleting"}
_RECOVER_BACKUPS = {"creating": "error", "restoring": "available", "deleting": "error"}


class VolumeService:
    def __init__(self, config: Config, bus: Transport, images: ImageClient | None = None,
                 engine: AsyncEngine | None = None) -> None:
        self.config = config
        self.conf = config.volume
        self.bus = bus
        self.images = images
        self.engine = engine or create_engine(config.database_url("volume"),
                                              echo=config.database.echo)
        self.store = Store(session_factory(self.engine))
        self._background: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        await upgrade(self.engine, MIGRATIONS, VERSION_TABLE)
        await self._seed_default_type()

    async def close(self) -> None:
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.engine.dispose()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                LOG.error("background %s failed", name, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def recover(self, host: str) -> None:
        """Called by the volume worker of ``host`` when it starts."""
        now = utcnow()
        async with self.store.write() as session:
            for busy, failed in _RECOVER_VOLUMES.items():
                await session.execute(
                    update(Volume).where(Volume.status == busy, ~Volume.deleted,
                                         Volume.host.like(f"{host}%"))
                    .values(status=failed, updated_at=now,
                            error="The volume service restarted during the operation"))
            for busy, failed in _RECOVER_SNAPSHOTS.items():
                await session.execute(
                    update(Snapshot).where(Snapshot.status == busy, ~Snapshot.deleted,
                                           Snapshot.host.like(f"{host}%"))
                    .values(status=failed, updated_at=now))
            for busy, failed in _RECOVER_BACKUPS.items():
                await session.execute(
                    update(Backup).where(Backup.status == busy, ~Backup.deleted,
                                         Backup.host.like(f"{host}%"))
                    .values(status=failed, updated_at=now,
                            fail_reason="The backup service restarted during the operation"))

    async def _seed_default_type(self) -> None:
        name = self.conf.default_volume_type
        async with self.store.write() as session:
            found = (await session.execute(select(VolumeType.id).where(
                VolumeType.name == name, ~VolumeType.deleted))).first()
            if found is None:
                session.add(VolumeType(id=new_uuid(), name=name,
                                       description=DEFAULT_TYPE_DESCRIPTION, is_public=True,
                                       extra_specs={}, created_at=utcnow()))
            found = (await session.execute(select(GroupType.id).where(
                GroupType.name == DEFAULT_GROUP_TYPE, ~GroupType.deleted))).first()
            if found is None:
                session.add(GroupType(id=new_uuid(), name=DEFAULT_GROUP_TYPE,
                                      description="Default group type", is_public=True,
                                      group_specs={}, created_at=utcnow()))
