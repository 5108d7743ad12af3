"""Registering images from inside the cloud (no HTTP, no token): the bundled tiny guest on
first start, and tools. Same checks, inspection, states and cleanup as the API; the caller
acts as an admin of the image service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select

from stackling.common.context import RequestContext
from stackling.image.models import Image
from stackling.image.service import data, images
from stackling.image.service.glance import ImageService
from stackling.image.service.records import ImageRecord, load, load_many
from stackling.image.stores.base import Chunk

SYSTEM = RequestContext(request_id="stackling-image-register", roles=("admin",))


async def register_image(svc: ImageService, *, name: str, disk_format: str,
                         container_format: str, chunks: AsyncIterator[Chunk],
                         size: int | None = None, owner: str | None = None,
                         visibility: str = "public", properties: dict[str, Any] | None = None,
                         tags: list[str] | None = None, min_disk: int = 0, min_ram: int = 0
                         ) -> ImageRecord:
    """Create an image and upload ``chunks`` into it; returns it ``active``. On any failure
    the half-registered image is deleted and the error raised. ``owner`` None makes an
    image of no project (visible per ``visibility``, managed by admins)."""
    body: dict[str, Any] = {"name": name, "disk_format": disk_format,
                            "container_format": container_format, "visibility": visibility,
                            "min_disk": min_disk, "min_ram": min_ram, "tags": tags or [],
                            **(properties or {})}
    new = images.parse_create(body)
    new.fields["owner"] = owner
    record = await images.create(svc, SYSTEM, new)
    try:
        await data.upload(svc, record, chunks, size)
    except BaseException:
        await delete_image(svc, record.id)
        raise
    async with svc.db.read() as session:
        active = await load(session, record.id)
    assert active is not None
    return active


async def find_images(svc: ImageService, name: str) -> list[ImageRecord]:
    """Every (not deleted) image called ``name``, oldest first."""
    async with svc.db.read() as session:
        rows = (await session.scalars(select(Image).where(
            Image.name == name, ~Image.deleted).order_by(Image.created_at))).all()
        return await load_many(session, rows)


async def delete_image(svc: ImageService, image_id: str) -> None:
    """Delete the image and its data (already gone is fine; protected images are not
    deleted)."""
    async with svc.db.read() as session:
        record = await load(session, image_id)
    if record is not None:
        await images.delete(svc, record)
