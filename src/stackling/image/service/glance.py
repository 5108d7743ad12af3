"""The image service object: database, stores and background work, wired once.

On start it migrates, prepares the stores and recovers from a crash: uploads that were in
flight (``saving``) go back to ``queued`` (their partial data is already gone: the stores
remove partial writes), imports that were running go back to ``uploading`` when their staged
data survived (the import may be retried) or ``queued``, and their tasks fail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from stackling.common.config import Config
from stackling.common.timeutils import utcnow
from stackling.db.engine import create_engine, session_factory
from stackling.db.migrate import upgrade
from stackling.db.store import Store as Database
from stackling.image.models import Image, ImageProperty, MetadefResourceType, Task
from stackling.image.stores import Store, create_store

LOG = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "alembic_version_image"
STAGING_STORE = "os_glance_staging_store"

# resource types Glance's metadefs know (glance-manage db_load_metadefs)
RESOURCE_TYPES = ("OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor",
                  "OS::Nova::Aggregate", "OS::Nova::Server", "OS::Trove::Instance",
                  "OS::Glance::Snapshot")


class ImageService:
    def __init__(self, config: Config, engine: AsyncEngine | None = None,
                 store: Store | None = None, staging: Store | None = None) -> None:
        self.config = config
        self.conf = config.image
        self.engine = engine or create_engine(config.database_url("image"),
                                              echo=config.database.echo)
        self.db = Database(session_factory(self.engine))
        kind = self.conf.store
        self.store = store or create_store(
            kind, kind, self.conf.store_dir or config.data_dir / "images")
        self.staging = staging or create_store(
            kind, STAGING_STORE, self.conf.staging_dir or config.data_dir / "image-staging")
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def stores(self) -> dict[str, Store]:
        """The stores images may live in (``/v2/info/stores``), by id."""
        return {self.store.name: self.store}

    async def start(self) -> None:
        await upgrade(self.engine, MIGRATIONS, VERSION_TABLE)
        await self.store.start()
        await self.staging.start()
        await self._recover()
        await self._seed_resource_types()

    async def close(self) -> None:
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.engine.dispose()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run background work (imports); cancelled on close, errors logged."""
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                LOG.error("background %s failed", name, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def idle(self) -> None:
        """Wait until no background work runs (tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def _recover(self) -> None:
        now = utcnow()
        async with self.db.write() as session:
            await session.execute(update(Image).where(Image.status == "saving", ~Image.deleted)
                                  .values(status="queued", size=None, virtual_size=None,
                                          reserved=0, updated_at=now,
                                          revision=Image.revision + 1))
            await session.execute(update(Image).where(Image.status == "importing",
                                                      ~Image.deleted, Image.staged.is_(None))
                                  .values(status="queued", size=None, virtual_size=None,
                                          reserved=0, updated_at=now,
                                          revision=Image.revision + 1))
            await session.execute(update(Image).where(Image.status == "importing",
                                                      ~Image.deleted,
                                                      Image.staged.is_not(None))
                                  .values(status="uploading", reserved=0, updated_at=now,
                                          revision=Image.revision + 1))
            # a staging upload that died: its partial data is gone
            await session.execute(update(Image).where(Image.status == "uploading",
                                                      ~Image.deleted, Image.staged.is_(None))
                                  .values(status="queued", size=None, reserved=0,
                                          updated_at=now, revision=Image.revision + 1))
            # the import locks of imports that died with the process
            await session.execute(delete(ImageProperty).where(
                ImageProperty.name.in_(("os_glance_import_task",
                                        "os_glance_importing_to_stores")),
                ImageProperty.image_id.in_(select(Image.id).where(
                    Image.status != "importing"))))
            await session.execute(update(Task).where(Task.status.in_(("pending",
                                                                        "processing")))
                                  .values(status="failure", updated_at=now,
                                          message="The image service restarted during this "
                                                  "task"))

    async def _seed_resource_types(self) -> None:
        async with self.db.write() as session:
            have = set((await session.scalars(select(MetadefResourceType.name))).all())
            now = utcnow()
            for name in RESOURCE_TYPES:
                if name not in have:
                    session.add(MetadefResourceType(name=name, protected=True, created_at=now,
                                                    updated_at=now))
