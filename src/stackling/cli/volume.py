"""The block storage service as a component of ``stackling up``: the Cinder v3 API, and this
node's volume worker (cinder-volume, doing cinder-backup's work for its volumes) over the
configured backend, on the shared bus. The scheduler runs inside the API's service layer."""

from __future__ import annotations

import socket

import httpx
from sqlalchemy import text
from starlette.types import ASGIApp

from stackling.cli.component import Component, Runtime
from stackling.clients.image import ImageClient
from stackling.clients.session import ServiceSession
from stackling.common.config import Config
from stackling.volume.api.app import create_app
from stackling.volume.backends import Backend, create_backend
from stackling.volume.backup.directory import DirectoryBackupStore
from stackling.volume.backup.store import BackupStore, MemoryBackupStore
from stackling.volume.manager import VolumeManager
from stackling.volume.service.cinder import VolumeService


def backup_store(config: Config) -> BackupStore:
    if config.volume.backup_store == "memory":
        return MemoryBackupStore()
    return DirectoryBackupStore(config.volume.backup_dir or config.data_dir / "volume-backups")


class VolumeComponent(Component):
    name = "volume"
    prefix = "/volume"
    service_type = "block-storage"
    service_name = "cinder"
    description = "Block Storage (stackling)"
    service_user = "cinder"
    catalog_aliases = (("volumev3", "cinderv3"), ("volume", "cinderv3-legacy"))
    node_roles = ("volume",)

    def __init__(self, http: httpx.AsyncClient | None = None,
                 backend: Backend | None = None, backups: BackupStore | None = None) -> None:
        """``http`` reaches the other services (tests pass an in-process client);
        ``backend`` / ``backups`` replace the configured ones (tests)."""
        self.http = http
        self.backend = backend
        self.backups = backups
        self.svc: VolumeService | None = None
        self.manager: VolumeManager | None = None

    def catalog_url(self, public_url: str) -> str:
        return f"{public_url}{self.prefix}/v3"

    async def start(self, runtime: Runtime) -> ASGIApp:
        app = await self.start_api(runtime)
        await self.start_role("volume", runtime)
        return app

    async def _service(self, runtime: Runtime) -> VolumeService:
        if self.svc is not None:
            return self.svc
        config = runtime.config
        session = ServiceSession(runtime.identity_url, runtime.service_users[self.service_user],
                                 self.http or runtime.http, region=config.region)
        runtime.stack.push_async_callback(session.close)
        svc = VolumeService(config, runtime.bus, ImageClient(session))
        await svc.start()
        runtime.stack.push_async_callback(svc.close)
        self.svc = svc
        return svc

    async def start_api(self, runtime: Runtime) -> ASGIApp:
        """The API, whose service layer schedules (``stackling serve volume``)."""
        config = runtime.config
        svc = await self._service(runtime)
        return create_app(svc, runtime.validator,
                          config.volume.policy_file or config.policy_file)

    async def start_role(self, role: str, runtime: Runtime) -> None:
        """This host's volume worker over its backend (``stackling node --roles volume``).
        It still reads and writes the volume database itself: the node needs the
        database URL, unlike the compute and network agents."""
        if role != "volume":
            await super().start_role(role, runtime)
        config = runtime.config
        svc = await self._service(runtime)
        node = config.volume.host or socket.gethostname()
        backend = self.backend or create_backend(config)
        self.backend = backend
        manager = VolumeManager(svc, backend, self.backups or backup_store(config), node)
        await manager.start()
        runtime.stack.push_async_callback(manager.stop)
        self.manager = manager

    async def health(self) -> str:
        if self.svc is None:
            return "not started"
        async with self.svc.store.read() as session:
            await session.execute(text("SELECT 1"))
        return "ok"
