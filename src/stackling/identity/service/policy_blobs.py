"""The v3 ``/policies`` API: opaque (blob, type) documents, stored and never enforced, as in
Keystone (deprecated there since Queens, still used by a few deployment tools)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import NotFound
from stackling.common.ids import new_id
from stackling.identity.models import Policy
from stackling.identity.service import fieldcheck as check
from stackling.identity.service.store import Store

_COLUMNS = ("id", "type", "blob", "links")


def policy_ref(policy: Policy) -> dict[str, Any]:
    return {**policy.extra, "id": policy.id, "type": policy.type, "blob": policy.blob}


def _check(body: dict[str, Any], *, create: bool) -> None:
    check.string(body, "blob", required=create)
    check.string(body, "type", required=create, max_len=255)


async def _get(session: AsyncSession, policy_id: str) -> Policy:
    policy = await session.get(Policy, policy_id)
    if policy is None:
        raise NotFound(f"Could not find policy: {policy_id}.")
    return policy


async def list_policies(store: Store, type_: str | None = None) -> list[dict[str, Any]]:
    query = select(Policy).order_by(Policy.id)
    if type_ is not None:
        query = query.where(Policy.type == type_)
    async with store.read() as session:
        return [policy_ref(p) for p in (await session.scalars(query)).all()]


async def get_policy(store: Store, policy_id: str) -> dict[str, Any]:
    async with store.read() as session:
        return policy_ref(await _get(session, policy_id))


async def create_policy(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    _check(body, create=True)
    policy = Policy(id=new_id(), type=body["type"], blob=body["blob"],
                    extra={k: v for k, v in body.items() if k not in _COLUMNS})
    async with store.write() as session:
        session.add(policy)
        await session.flush()
        return policy_ref(policy)


async def update_policy(store: Store, policy_id: str, body: dict[str, Any]) -> dict[str, Any]:
    check.not_empty(body, "policy")
    _check(body, create=False)
    check.matching_id(body, policy_id)
    async with store.write() as session:
        policy = await _get(session, policy_id)
        if "type" in body:
            policy.type = body["type"]
        if "blob" in body:
            policy.blob = body["blob"]
        extra = {k: v for k, v in body.items() if k not in _COLUMNS}
        if extra:
            policy.extra = {**policy.extra, **extra}
        await session.flush()
        return policy_ref(policy)


async def delete_policy(store: Store, policy_id: str) -> None:
    async with store.write() as session:
        await _get(session, policy_id)
        await session.execute(delete(Policy).where(Policy.id == policy_id))
