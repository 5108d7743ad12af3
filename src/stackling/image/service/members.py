"""Image members: sharing a ``shared`` image with other projects, who accept or reject it.

The owner (or an admin) adds and removes members; a member sets its own status. A member
sees only its own membership; the owner and admins see them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from stackling.common.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from stackling.common.timeutils import utcnow
from stackling.image.models import ImageMember
from stackling.image.service.glance import ImageService
from stackling.image.service.records import ImageRecord

STATUSES: Final = ("pending", "accepted", "rejected")


@dataclass
class Member:
    image_id: str
    member_id: str
    status: str
    created_at: datetime
    updated_at: datetime


def _member(row: ImageMember) -> Member:
    return Member(row.image_id, row.member, row.status, row.created_at, row.updated_at)


def require_shared(record: ImageRecord) -> None:
    if record.visibility != "shared":
        raise Forbidden("Only shared images have members.")


def _missing(member_id: str, image_id: str) -> NotFound:
    return NotFound(f"{member_id} not found in the member list of the image {image_id}.")


async def add(svc: ImageService, record: ImageRecord, member_id: str) -> Member:
    require_shared(record)
    now = utcnow()
    try:
        async with svc.db.write() as session:
            count = await session.scalar(select(func.count()).select_from(ImageMember).where(
                ImageMember.image_id == record.id))
            if 0 <= svc.conf.member_quota <= int(count or 0):
                raise PayloadTooLarge(
                    f"Image member limit exceeded for image {record.id}: Maximum number of "
                    f"image members exceeded. Attempted: {int(count or 0) + 1}, Maximum: "
                    f"{svc.conf.member_quota}:")
            row = ImageMember(image_id=record.id, member=member_id, status="pending",
                              created_at=now, updated_at=now)
            session.add(row)
            await session.flush()
            return _member(row)
    except Conflict as exc:
        raise Conflict(f"Member {member_id} is duplicated for image {record.id}") from exc
    except IntegrityError as exc:
        raise Conflict(f"Member {member_id} is duplicated for image {record.id}") from exc


async def listing(svc: ImageService, record: ImageRecord, project_id: str | None,
                  sees_all: bool) -> list[Member]:
    require_shared(record)
    query = select(ImageMember).where(ImageMember.image_id == record.id)
    if not sees_all:
        query = query.where(ImageMember.member == (project_id or ""))
    async with svc.db.read() as session:
        rows = (await session.scalars(query.order_by(ImageMember.created_at,
                                                     ImageMember.id))).all()
    return [_member(r) for r in rows]


async def get(svc: ImageService, record: ImageRecord, member_id: str, project_id: str | None,
              sees_all: bool) -> Member:
    if not sees_all and member_id != project_id:
        raise _missing(member_id, record.id)
    async with svc.db.read() as session:
        row = await session.scalar(select(ImageMember).where(
            ImageMember.image_id == record.id, ImageMember.member == member_id))
    if row is None:
        raise _missing(member_id, record.id)
    return _member(row)


async def set_status(svc: ImageService, record: ImageRecord, member_id: str, status: object
                     ) -> Member:
    if status not in STATUSES:
        raise BadRequest('Incorrect request: Status must be "pending", "accepted" or '
                         '"rejected".')
    async with svc.db.write() as session:
        row = await session.scalar(select(ImageMember).where(
            ImageMember.image_id == record.id, ImageMember.member == member_id))
        if row is None:
            raise _missing(member_id, record.id)
        row.status = str(status)
        row.updated_at = utcnow()
        await session.flush()
        return _member(row)


async def remove(svc: ImageService, record: ImageRecord, member_id: str) -> None:
    async with svc.db.write() as session:
        row = await session.scalar(select(ImageMember).where(
            ImageMember.image_id == record.id, ImageMember.member == member_id))
        if row is None:
            raise _missing(member_id, record.id)
        await session.delete(row)
