"""Image records: create, find (with Glance's visibility rules), save, delete, deactivate,
reactivate, tags. State changes are compare-and-swap on ``status`` or ``revision``.

The lifecycle (Glance's, see ``TRANSITIONS``): ``queued`` -> ``saving`` (upload) ->
``active``; ``queued`` -> ``uploading`` (staged) -> ``importing`` -> ``active``; a failed
upload or import returns to ``queued``; ``active`` <-> ``deactivated``; anything -> ``deleted``
(a soft delete). ``killed`` marks an image whose failed upload left data that could not be
removed; it can only be deleted.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import delete as sa_delete
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from stackling.common.timeutils import utcnow
from stackling.image.models import Image, ImageMember, ImageProperty, ImageTag
from stackling.image.service import quotas, schema
from stackling.image.service.glance import ImageService
from stackling.image.service.patch import diff
from stackling.image.service.records import (
    RESERVED_PREFIX,
    ImageRecord,
    StaleImage,
    cas,
    load,
    member_status,
    not_found,
    set_properties,
    set_tags,
)

LOG = logging.getLogger(__name__)

TRANSITIONS: Final = {
    "queued": ("saving", "uploading", "importing", "active", "deleted"),
    "saving": ("active", "killed", "deleted", "queued"),
    "uploading": ("importing", "queued", "deleted"),
    "importing": ("active", "deleted", "queued"),
    "active": ("pending_delete", "deleted", "deactivated"),
    "killed": ("deleted",),
    "pending_delete": ("deleted", "active"),
    "deleted": (),
    "deactivated": ("active", "deleted"),
}
# create-body keys that are attributes rather than custom properties
BASE_KEYS: Final = ("id", "name", "visibility", "owner", "disk_format", "container_format",
                    "min_disk", "min_ram", "protected", "os_hidden")
DISALLOWED: Final = ("direct_url", "self", "file", "schema", "stores")
READ_ONLY_ON_CREATE: Final = ("created_at", "updated_at", "status", "checksum",
                              "os_hash_algo", "os_hash_value", "size", "virtual_size")
RESERVED: Final = ("location", "deleted", "deleted_at")


def transition_error(current: str, new: str) -> Conflict:
    return Conflict(f"Image status transition from {current} to {new} is not allowed")


@dataclass
class NewImage:
    fields: dict[str, Any]
    properties: dict[str, Any]
    tags: list[str]


def parse_create(body: dict[str, Any]) -> NewImage:
    """Split and check a create body (Glance's deserializer and image factory rules)."""
    for key in DISALLOWED:
        if key in body:
            raise Forbidden(f"Attribute '{key}' is read-only.")
    schema.validate(body)
    body = dict(body)
    tags = body.pop("tags", []) or []
    if "locations" in body:
        raise Forbidden("It's not allowed to add locations if locations are invisible.")
    fields: dict[str, Any] = {k: body.pop(k) for k in BASE_KEYS if k in body}
    for key in body:
        if len(key) > 255:
            raise BadRequest("Custom property should not be greater than 255 characters.")
        if key in READ_ONLY_ON_CREATE:
            raise Forbidden(f"Attribute '{key}' is read-only.")
        if key in RESERVED or key.startswith(RESERVED_PREFIX):
            raise Forbidden(f"Attribute '{key}' is reserved.")
    for key in ("min_disk", "min_ram"):
        if (fields.get(key) or 0) < 0:
            raise BadRequest(f"Invalid value '{fields[key]}' for parameter '{key}': Cannot be "
                             "a negative value.")
    return NewImage(fields, body, list(dict.fromkeys(tags)))


def check_limits(svc: ImageService, properties: dict[str, Any], tags: list[str]) -> None:
    conf = svc.conf
    if 0 <= conf.property_quota < len(properties):
        raise PayloadTooLarge(f"Maximum number of image properties exceeded. Attempted: "
                              f"{len(properties)}, Maximum: {conf.property_quota}")
    if 0 <= conf.tag_quota < len(tags):
        raise PayloadTooLarge(f"Maximum number of image tags exceeded. Attempted: "
                              f"{len(tags)}, Maximum: {conf.tag_quota}")


async def create(svc: ImageService, ctx: RequestContext, new: NewImage) -> ImageRecord:
    """Insert a ``queued`` image; enforces ``image_count_total`` under concurrency."""
    fields = dict(new.fields)
    image_id = fields.pop("id", None) or str(uuid.uuid4())
    owner = fields.pop("owner", ctx.project_id)
    check_limits(svc, new.properties, new.tags)
    quota = quotas.limits(svc.conf, owner)
    if owner and quota.image_count_total >= 0:
        await quotas.ensure_lock_row(svc.db, owner)
    now = utcnow()
    async with svc.db.write() as session:
        if await session.get(Image, image_id) is not None:
            raise Conflict(f"An image with identifier {image_id} already exists")
        if owner and quota.image_count_total >= 0:
            await quotas.lock(session, owner)
            await quotas.check(session, quota, owner, {"image_count_total": 1})
        session.add(Image(
            id=image_id, name=fields.get("name"), status="queued",
            visibility=fields.get("visibility") or "shared", owner=owner,
            disk_format=fields.get("disk_format"),
            container_format=fields.get("container_format"),
            min_disk=fields.get("min_disk") or 0, min_ram=fields.get("min_ram") or 0,
            protected=bool(fields.get("protected", False)),
            os_hidden=bool(fields.get("os_hidden", False)), reserved=0, revision=1,
            created_at=now, updated_at=now, deleted=False))
        await session.flush()
        await set_properties(session, image_id, new.properties)
        await set_tags(session, image_id, new.tags)
        record = await load(session, image_id)
    assert record is not None
    return record


def visible(ctx: RequestContext, is_admin: bool, record: ImageRecord,
            member: str | None) -> bool:
    """Glance's is_image_visible (any membership status counts for a single image)."""
    if is_admin or record.owner is None or record.visibility in ("public", "community"):
        return True
    if ctx.project_id is not None and ctx.project_id == record.owner:
        return True
    return record.visibility == "shared" and member is not None


async def find(svc: ImageService, ctx: RequestContext, is_admin: bool, image_id: str
               ) -> ImageRecord:
    """The image as the caller may see it, or 404 ``No image found with ID``."""
    async with svc.db.read() as session:
        record = await load(session, image_id)
        if record is None:
            raise not_found(image_id)
        status = None
        if record.visibility == "shared" and ctx.project_id != record.owner:
            status = await member_status(session, image_id, ctx.project_id)
    if not visible(ctx, is_admin, record, status):
        raise not_found(image_id)
    if record.visibility == "shared" and ctx.project_id != record.owner:
        record.member = ctx.project_id
    return record


async def save(svc: ImageService, old: ImageRecord, new: ImageRecord) -> ImageRecord:
    """Write what changed between ``old`` and ``new``; StaleImage if the image changed
    since ``old`` was read."""
    core, props, tags = diff(old, new)
    if props or tags is not None:
        check_limits(svc, new.properties, new.tags)
    async with svc.db.write() as session:
        if not await cas(session, old.id, revision=old.revision, **core):
            raise StaleImage(f"Image {old.id} changed while being updated")
        if props:
            await set_properties(session, old.id, props)
        if tags is not None:
            await set_tags(session, old.id, tags)
        record = await load(session, old.id)
    if record is None:
        raise not_found(old.id)
    record.member = old.member
    return record


async def delete(svc: ImageService, record: ImageRecord) -> None:
    """Soft-delete the image, then remove its data (and staged data)."""
    if record.protected:
        raise Forbidden(f"Image {record.id} is protected and cannot be deleted.")
    async with svc.db.write() as session:
        row = await session.get(Image, record.id)
        if row is None or row.deleted:
            raise NotFound(f"Failed to find image {record.id} to delete")
        if row.protected:
            raise Forbidden(f"Image {record.id} is protected and cannot be deleted.")
        deleted = await session.execute(
            update(Image).where(Image.id == record.id, Image.revision == row.revision,
                                ~Image.deleted)
            .values(status="deleted", deleted=True, deleted_at=utcnow(), updated_at=utcnow(),
                    reserved=0, revision=Image.revision + 1))
        if getattr(deleted, "rowcount", 0) != 1:
            raise StaleImage(f"Image {record.id} changed while being deleted")
        location, staged = row.location, row.staged
    await _remove_data(svc, record.id, location, staged)


async def _remove_data(svc: ImageService, image_id: str, location: str | None,
                       staged: str | None) -> None:
    for store, where in ((svc.store, location), (svc.staging, staged)):
        if where:
            try:
                await store.delete(where)
            except Exception:  # the image is deleted either way; say what is left behind
                LOG.exception("image %s: could not delete its data at %s", image_id, where)


async def deactivate(svc: ImageService, record: ImageRecord) -> None:
    if record.status == "deactivated":
        return
    if record.status != "active":
        raise Forbidden(f"Not allowed to deactivate image in status '{record.status}'")
    async with svc.db.write() as session:
        if not await _set_status(session, record.id, "active", "deactivated"):
            raise Forbidden("Not allowed to deactivate image in status "
                            f"'{await _status(session, record.id)}'")


async def reactivate(svc: ImageService, record: ImageRecord) -> None:
    if record.status == "active":
        return
    if record.status != "deactivated":
        raise Forbidden(f"Not allowed to reactivate image in status '{record.status}'")
    async with svc.db.write() as session:
        if not await _set_status(session, record.id, "deactivated", "active"):
            raise Forbidden("Not allowed to reactivate image in status "
                            f"'{await _status(session, record.id)}'")


async def _set_status(session: AsyncSession, image_id: str, expect: str, new: str) -> bool:
    result = await session.execute(
        update(Image).where(Image.id == image_id, ~Image.deleted, Image.status == expect)
        .values(status=new, updated_at=utcnow(), revision=Image.revision + 1))
    return bool(getattr(result, "rowcount", 0) == 1)


async def _status(session: AsyncSession, image_id: str) -> str:
    value = await session.scalar(select(Image.status).where(Image.id == image_id))
    return str(value)


async def add_tag(svc: ImageService, record: ImageRecord, tag: str) -> None:
    if tag in record.tags:
        return
    if 0 <= svc.conf.tag_quota <= len(record.tags):
        raise PayloadTooLarge(f"Image tag limit exceeded for image {record.id}: Maximum "
                              f"number of tags exceeded. Attempted: {len(record.tags) + 1}, "
                              f"Maximum: {svc.conf.tag_quota}")
    async with svc.db.write() as session:
        count = await session.scalar(select(func.count()).select_from(ImageTag).where(
            ImageTag.image_id == record.id))
        if 0 <= svc.conf.tag_quota <= int(count or 0):
            raise PayloadTooLarge(f"Image tag limit exceeded for image {record.id}")
        exists = await session.get(ImageTag, (record.id, tag))
        if exists is None:
            session.add(ImageTag(image_id=record.id, value=tag))
            await cas(session, record.id)


async def remove_tag(svc: ImageService, record: ImageRecord, tag: str) -> None:
    async with svc.db.write() as session:
        row = await session.get(ImageTag, (record.id, tag))
        if row is None:
            raise NotFound("The resource could not be found.")
        await session.delete(row)
        await cas(session, record.id)


async def set_property(svc: ImageService, image_id: str, name: str, value: str | None) -> None:
    """Set (or with None, remove) one property without touching anything else."""
    async with svc.db.write() as session:
        await session.execute(sa_delete(ImageProperty).where(
            ImageProperty.image_id == image_id, ImageProperty.name == name))
        if value is not None:
            session.add(ImageProperty(image_id=image_id, name=name, value=value))


async def shared_with(svc: ImageService, image_id: str) -> list[str]:
    async with svc.db.read() as session:
        return list((await session.scalars(select(ImageMember.member).where(
            ImageMember.image_id == image_id))).all())
