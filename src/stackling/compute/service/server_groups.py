"""Server groups: a policy (affinity, anti-affinity and their soft variants) the scheduler
applies to the group's members. Created under the project's quota lock."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import false, select

from stackling.common.context import RequestContext
from stackling.common.errors import Forbidden, NotFound
from stackling.common.ids import new_uuid
from stackling.compute.models import Instance, ServerGroup, ServerGroupMember
from stackling.compute.service import quotas
from stackling.compute.service.compute import ComputeService

POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


@dataclass
class GroupRecord:
    group: ServerGroup
    members: list[str] = field(default_factory=list)


def not_found(uuid: str) -> NotFound:
    return NotFound(f"Instance group {uuid} could not be found.")


async def create(svc: ComputeService, ctx: RequestContext, name: str, policy: str,
                 rules: dict[str, Any]) -> GroupRecord:
    project_id = ctx.project_id or ""
    await quotas.ensure_lock(svc.store, project_id)
    async with svc.store.write() as session:
        await quotas.lock(session, project_id)
        limits = await quotas.limits_for(session, project_id, svc.conf.quotas)
        used = await quotas.usage(session, project_id)
        if 0 <= limits["server_groups"] <= used["server_groups"]:
            raise Forbidden("Quota exceeded, too many server groups.")
        group = ServerGroup(uuid=new_uuid(), name=name, user_id=ctx.user_id or "",
                            project_id=project_id, policy=policy, rules=dict(rules))
        session.add(group)
        await session.flush()
        return GroupRecord(group)


async def _members(session: Any, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    if ids:
        rows = (await session.execute(
            select(ServerGroupMember.group_id, ServerGroupMember.instance_uuid)
            .join(Instance, Instance.uuid == ServerGroupMember.instance_uuid)
            .where(ServerGroupMember.group_id.in_(ids), Instance.deleted == false())
            .order_by(ServerGroupMember.id))).all()
        for group_id, uuid in rows:
            out[group_id].append(uuid)
    return out


async def get(svc: ComputeService, ctx: RequestContext, uuid: str) -> GroupRecord:
    async with svc.store.read() as session:
        group = (await session.execute(select(ServerGroup).where(
            ServerGroup.uuid == uuid))).scalar_one_or_none()
        if group is None or (not ctx.is_admin and group.project_id != ctx.project_id):
            raise not_found(uuid)
        return GroupRecord(group, (await _members(session, [group.id]))[group.id])


async def list_groups(svc: ComputeService, ctx: RequestContext, *, all_projects: bool,
                      limit: int | None, offset: int) -> list[GroupRecord]:
    query = select(ServerGroup).order_by(ServerGroup.id)
    if not all_projects:
        query = query.where(ServerGroup.project_id == ctx.project_id)
    query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    async with svc.store.read() as session:
        groups = list((await session.execute(query)).scalars())
        members = await _members(session, [g.id for g in groups])
    return [GroupRecord(g, members.get(g.id, [])) for g in groups]


async def delete(svc: ComputeService, ctx: RequestContext, uuid: str) -> None:
    async with svc.store.write() as session:
        group = (await session.execute(select(ServerGroup).where(
            ServerGroup.uuid == uuid))).scalar_one_or_none()
        if group is None or (not ctx.is_admin and group.project_id != ctx.project_id):
            raise not_found(uuid)
        await session.delete(group)
