"""The image service as a component of ``stackling up``: the Glance v2 API over the image
stores, and (on a first start, when the host can build it) the bundled tiny guest image,
registered in process through :mod:`stackling.image.service.register`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from starlette.types import ASGIApp

from stackling.cli.component import Component, Runtime
from stackling.common.blocking import run_blocking
from stackling.common.config import Config
from stackling.image.api.app import create_app
from stackling.image.guest.ensure import ensure_tiny_image
from stackling.image.guest.register import ImageSpec, RegisteredImage
from stackling.image.service import register
from stackling.image.service.glance import ImageService

LOG = logging.getLogger(__name__)


async def file_chunks(path: Path, size: int = 1 << 20) -> AsyncIterator[bytes]:
    fh = await run_blocking(path.open, "rb")
    try:
        while chunk := await run_blocking(fh.read, size):
            yield chunk
    finally:
        fh.close()


class LocalRegistrar:
    """The tiny guest's registrar (``stackling.image.guest.register.ImageRegistrar``) over
    the in-process image service."""

    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    async def find(self, name: str) -> list[RegisteredImage]:
        return [RegisteredImage(r.id, r.name or "", r.status, dict(r.properties))
                for r in await register.find_images(self.svc, name)]

    async def create(self, spec: ImageSpec) -> str:
        record = await register.register_image(
            self.svc, name=spec.name, disk_format=spec.disk_format,
            container_format=spec.container_format, chunks=file_chunks(spec.path),
            size=spec.path.stat().st_size, visibility=spec.visibility,
            properties=dict(spec.properties), min_ram=spec.min_ram)
        return record.id

    async def delete(self, image_id: str) -> None:
        await register.delete_image(self.svc, image_id)


async def _tiny_image(config: Config, svc: ImageService) -> None:
    result = await ensure_tiny_image(config, LocalRegistrar(svc))
    if result is None and config.image.build_tiny_image == "always":
        LOG.error("tiny guest image: build_tiny_image is 'always' but it was not registered")


class ImageComponent(Component):
    name = "image"
    prefix = "/image"
    service_type = "image"
    service_name = "glance"
    description = "Image (stackling)"
    service_user = "glance"

    def __init__(self) -> None:
        self.svc: ImageService | None = None

    async def start(self, runtime: Runtime) -> ASGIApp:
        config = runtime.config
        svc = ImageService(config)
        await svc.start()
        runtime.stack.push_async_callback(svc.close)
        self.svc = svc
        app = create_app(svc, runtime.validator, config.image.policy_file or config.policy_file)
        if config.image.build_tiny_image != "never":
            task = asyncio.create_task(_tiny_image(config, svc), name="tiny guest image")

            async def stop() -> None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

            runtime.stack.push_async_callback(stop)
        return app

    async def health(self) -> str:
        if self.svc is None:
            return "not started"
        async with self.svc.db.read() as session:
            await session.execute(text("SELECT 1"))
        return "ok"
