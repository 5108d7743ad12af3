"""User messages (Cinder's messages API): a short record of why an asynchronous operation
failed, visible to the project that asked for it, kept for 30 days."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from stackling.common.context import RequestContext
from stackling.common.errors import NotFound
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.db.store import Store
from stackling.volume.models import UserMessage

KEEP = timedelta(days=30)
# Cinder's event ids for what stackling reports
SCHEDULE_FAILED = ("VOLUME_VOLUME_001_002",
                   "schedule allocate volume: Could not find any available weighted backend.")
CREATE_FAILED = ("VOLUME_VOLUME_001_003",
                 "create volume: Volume driver reported an error")
BACKUP_FAILED = ("VOLUME_BACKUP_001_003", "create backup: Backup driver failed to create backup")


async def record(store: Store, project_id: str, request_id: str, resource_type: str,
                 resource_uuid: str | None, event: tuple[str, str]) -> None:
    now = utcnow()
    async with store.write() as session:
        session.add(UserMessage(id=new_uuid(), project_id=project_id,
                                request_id=request_id or "", resource_type=resource_type,
                                resource_uuid=resource_uuid, event_id=event[0],
                                message_level="ERROR", user_message=event[1], created_at=now,
                                expires_at=now + KEEP))


async def list_messages(store: Store, ctx: RequestContext) -> list[UserMessage]:
    async with store.write() as session:
        await session.execute(sql_delete(UserMessage).where(UserMessage.expires_at < utcnow()))
    async with store.read() as session:
        stmt = select(UserMessage).order_by(UserMessage.created_at.desc())
        if not ctx.is_admin:
            stmt = stmt.where(UserMessage.project_id == ctx.project_id)
        return list((await session.execute(stmt)).scalars().all())


async def get(store: Store, ctx: RequestContext, message_id: str) -> UserMessage:
    async with store.read() as session:
        row = await session.get(UserMessage, message_id)
    if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
        raise NotFound(f"Message {message_id} could not be found.")
    return row


async def delete(store: Store, ctx: RequestContext, message_id: str) -> None:
    await get(store, ctx, message_id)
    async with store.write() as session:
        await session.execute(sql_delete(UserMessage).where(UserMessage.id == message_id))
