"""An image as the service hands it around, loading it, and compare-and-swap updates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import BindParameter, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import Conflict, NotFound
from stackling.common.timeutils import utcnow
from stackling.db.base import table_of
from stackling.image.models import Image, ImageMember, ImageProperty, ImageTag

# properties Glance keeps to itself (the import lock and friends): shown, never settable
RESERVED_PREFIX = "os_glance_"


@dataclass
class ImageRecord:
    id: str
    name: str | None
    status: str
    visibility: str
    owner: str | None
    disk_format: str | None
    container_format: str | None
    size: int | None
    virtual_size: int | None
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    min_disk: int
    min_ram: int
    protected: bool
    os_hidden: bool
    store: str | None
    location: str | None
    staged: str | None
    created_at: datetime
    updated_at: datetime
    revision: int
    properties: dict[str, str | None] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    # the caller's project when it sees this shared image as a member (policy's member_id)
    member: str | None = None

    def copy(self, **changes: Any) -> ImageRecord:
        return replace(self, properties=dict(self.properties), tags=list(self.tags), **changes)


CORE_FIELDS = ("name", "visibility", "owner", "disk_format", "container_format", "min_disk",
               "min_ram", "protected", "os_hidden")


class StaleImage(Conflict):
    """The image changed between reading and writing it (retry from a fresh read)."""


def not_found(image_id: str) -> NotFound:
    return NotFound(f"No image found with ID {image_id}")


# every image show (and every boot asks for its image) runs these: built once
_IDS: Final[BindParameter[Any]] = bindparam("ids", expanding=True)
_IP: Final = table_of(ImageProperty).c  # table columns: no ORM layer per execution
_IG: Final = table_of(ImageTag).c
_PROPERTIES_OF: Final = select(_IP.image_id, _IP.name, _IP.value).where(_IP.image_id.in_(_IDS))
_TAGS_OF: Final = select(_IG.image_id, _IG.value).where(
    _IG.image_id.in_(_IDS)).order_by(_IG.value)
# one image (a show, a boot's lookup): plain rows, equality rather than expanding INs
_IM: Final = table_of(Image)
_LIVE_IMAGE_ROW: Final = select(_IM).where(_IM.c.id == bindparam("id"), ~_IM.c.deleted)
_PROPERTIES_OF_ONE: Final = select(_IP.name, _IP.value).where(_IP.image_id == bindparam("id"))
_TAGS_OF_ONE: Final = select(_IG.value).where(_IG.image_id == bindparam("id")).order_by(
    _IG.value)


async def load_many(session: AsyncSession, rows: Sequence[Image]) -> list[ImageRecord]:
    ids = [r.id for r in rows]
    props: dict[str, dict[str, str | None]] = {i: {} for i in ids}
    tags: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        for image_id, name, value in await session.execute(_PROPERTIES_OF, {"ids": ids}):
            props[image_id][name] = value
        for image_id, tag in await session.execute(_TAGS_OF, {"ids": ids}):
            tags[image_id].append(tag)
    return [_record(r, props[r.id], tags[r.id]) for r in rows]


def _record(row: Image, props: dict[str, str | None], tags: list[str]) -> ImageRecord:
    return ImageRecord(
        id=row.id, name=row.name, status=row.status, visibility=row.visibility,
        owner=row.owner, disk_format=row.disk_format, container_format=row.container_format,
        size=row.size, virtual_size=row.virtual_size, checksum=row.checksum,
        os_hash_algo=row.os_hash_algo, os_hash_value=row.os_hash_value,
        min_disk=row.min_disk, min_ram=row.min_ram, protected=row.protected,
        os_hidden=row.os_hidden, store=row.store, location=row.location, staged=row.staged,
        created_at=row.created_at, updated_at=row.updated_at, revision=row.revision,
        properties=props, tags=tags)


async def load(session: AsyncSession, image_id: str) -> ImageRecord | None:
    """The image, if it exists and is not deleted (no visibility check)."""
    if len(image_id) > 36:
        return None
    key = {"id": image_id}
    row = (await session.execute(_LIVE_IMAGE_ROW, key)).first()
    if row is None:
        return None
    props = {name: value for name, value in await session.execute(_PROPERTIES_OF_ONE, key)}
    tags = list((await session.execute(_TAGS_OF_ONE, key)).scalars())
    return _record(row, props, tags)  # type: ignore[arg-type]


async def member_status(session: AsyncSession, image_id: str, project_id: str | None
                        ) -> str | None:
    if not project_id:
        return None
    return await session.scalar(select(ImageMember.status).where(
        ImageMember.image_id == image_id, ImageMember.member == project_id))


async def cas(session: AsyncSession, image_id: str, *, status: str | Sequence[str] | None = None,
              revision: int | None = None, **values: Any) -> bool:
    """``UPDATE images SET values WHERE id AND (status / revision as expected)``; True when
    this writer won. Always bumps ``revision`` and ``updated_at``."""
    query = update(Image).where(Image.id == image_id, ~Image.deleted)
    if isinstance(status, str):
        query = query.where(Image.status == status)
    elif status is not None:
        query = query.where(Image.status.in_(list(status)))
    if revision is not None:
        query = query.where(Image.revision == revision)
    values.setdefault("updated_at", utcnow())
    result = await session.execute(
        query.values(revision=Image.revision + 1, **values).execution_options(
            synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


async def set_properties(session: AsyncSession, image_id: str,
                         changes: dict[str, Any]) -> None:
    """Write property changes: a value sets, :data:`REMOVE` deletes."""
    for name, value in changes.items():
        await session.execute(delete(ImageProperty).where(
            ImageProperty.image_id == image_id, ImageProperty.name == name))
        if value is not REMOVE:
            session.add(ImageProperty(image_id=image_id, name=name, value=value))
    await session.flush()


async def set_tags(session: AsyncSession, image_id: str, tags: Sequence[str]) -> None:
    await session.execute(delete(ImageTag).where(ImageTag.image_id == image_id))
    for tag in dict.fromkeys(tags):
        session.add(ImageTag(image_id=image_id, value=tag))
    await session.flush()


REMOVE: Any = object()
