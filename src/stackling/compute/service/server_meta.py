"""Server metadata (key/value pairs) and tags. Changing them needs the server in a stable
state (Nova's rule), checked in the same transaction as the change."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stackling.compute import states
from stackling.compute.models import Instance, InstanceMetadata, InstanceTag
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import compare_and_swap, get_row, locked

METADATA_STATES = {states.ACTIVE, states.PAUSED, states.SUSPENDED, states.STOPPED}
TAG_STATES = {states.ACTIVE, states.BUILDING, states.PAUSED, states.SUSPENDED,
              states.STOPPED, states.SHELVED, states.SHELVED_OFFLOADED}
MAX_TAGS = 50


async def _changeable(session: AsyncSession, uuid: str, allowed: set[str], action: str,
                      is_admin: bool, any_task: bool = False) -> Instance:
    row = await get_row(session, uuid)
    if row.locked and not is_admin:
        raise locked(uuid)
    if row.vm_state not in allowed or (row.task_state is not None and not any_task):
        what = ("task_state", row.task_state) if row.task_state else ("vm_state", row.vm_state)
        raise Conflict(f"Cannot '{action}' instance {uuid} while it is in {what[0]} {what[1]}")
    return row


async def get_metadata(svc: ComputeService, uuid: str) -> dict[str, str]:
    async with svc.store.read() as session:
        await get_row(session, uuid)
        rows = (await session.execute(select(InstanceMetadata).where(
            InstanceMetadata.instance_uuid == uuid).order_by(InstanceMetadata.id))).scalars()
        return {m.key: m.value for m in rows}


async def set_metadata(svc: ComputeService, uuid: str, items: dict[str, str], *,
                       replace: bool, is_admin: bool, limit: int) -> dict[str, str]:
    """Merge ``items`` into the metadata (or replace it all); 403 past the quota."""
    async with svc.store.write() as session:
        await _changeable(session, uuid, METADATA_STATES, "update metadata", is_admin)
        current = {m.key: m for m in (await session.execute(select(InstanceMetadata).where(
            InstanceMetadata.instance_uuid == uuid))).scalars()}
        keys = set(items) | (set() if replace else set(current))
        if 0 <= limit < len(keys):
            raise Forbidden(f"Quota exceeded for metadata_items: Requested {len(keys)}, but "
                            f"already used 0 of {limit} metadata_items")
        for key, m in current.items():
            if replace and key not in items:
                await session.delete(m)
        for key, value in items.items():
            if key in current:
                current[key].value = value
            else:
                session.add(InstanceMetadata(instance_uuid=uuid, key=key, value=value))
        await compare_and_swap(session, uuid, {})
        await session.flush()
        rows = (await session.execute(select(InstanceMetadata).where(
            InstanceMetadata.instance_uuid == uuid).order_by(InstanceMetadata.id))).scalars()
        return {m.key: m.value for m in rows}


async def delete_metadata(svc: ComputeService, uuid: str, key: str, is_admin: bool) -> None:
    async with svc.store.write() as session:
        await _changeable(session, uuid, METADATA_STATES, "delete metadata", is_admin)
        result = await session.execute(delete(InstanceMetadata).where(
            InstanceMetadata.instance_uuid == uuid, InstanceMetadata.key == key))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFound("Metadata item was not found")
        await compare_and_swap(session, uuid, {})


# -- tags -----------------------------------------------------------------------------------
async def get_tags(svc: ComputeService, uuid: str) -> list[str]:
    async with svc.store.read() as session:
        await get_row(session, uuid)
        return list((await session.execute(select(InstanceTag.tag).where(
            InstanceTag.instance_uuid == uuid).order_by(InstanceTag.tag))).scalars())


async def replace_tags(svc: ComputeService, uuid: str, tags: list[str],
                       is_admin: bool) -> list[str]:
    unique = list(dict.fromkeys(tags))
    if len(unique) > MAX_TAGS:
        raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    async with svc.store.write() as session:
        await _changeable(session, uuid, TAG_STATES, "update tags", is_admin, any_task=True)
        await session.execute(delete(InstanceTag).where(InstanceTag.instance_uuid == uuid))
        for tag in unique:
            session.add(InstanceTag(instance_uuid=uuid, tag=tag))
        await compare_and_swap(session, uuid, {})
    return sorted(unique)


async def add_tag(svc: ComputeService, uuid: str, tag: str, is_admin: bool) -> bool:
    """True when the tag was new."""
    async with svc.store.write() as session:
        await _changeable(session, uuid, TAG_STATES, "update tag", is_admin, any_task=True)
        tags = set((await session.execute(select(InstanceTag.tag).where(
            InstanceTag.instance_uuid == uuid))).scalars())
        if tag in tags:
            return False
        if len(tags) >= MAX_TAGS:
            raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
        session.add(InstanceTag(instance_uuid=uuid, tag=tag))
        await compare_and_swap(session, uuid, {})
        return True


async def delete_tag(svc: ComputeService, uuid: str, tag: str | None,
                     is_admin: bool) -> None:
    """Delete one tag (404 if absent) or, with ``tag=None``, all of them."""
    async with svc.store.write() as session:
        await _changeable(session, uuid, TAG_STATES, "delete tag", is_admin, any_task=True)
        query = delete(InstanceTag).where(InstanceTag.instance_uuid == uuid)
        if tag is not None:
            query = query.where(InstanceTag.tag == tag)
        result = await session.execute(query)
        if tag is not None and not result.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"Tag {tag} could not be found.")
        await compare_and_swap(session, uuid, {})
