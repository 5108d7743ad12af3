"""Per-project quotas (``/v2.0/quotas``): configured defaults, per-project overrides, usage
counted from the real rows. Enforcement is in :func:`.common.check_quota`, under the write
lock, so concurrent creates cannot pass a limit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from stackling.network.errors import NeutronBadRequest
from stackling.network.models import Quota
from stackling.network.service.common import QUOTA_MODELS, quota_limit
from stackling.network.service.core import NetworkService

RESOURCES = tuple(QUOTA_MODELS)


def defaults(svc: NetworkService) -> dict[str, int]:
    return {r: int(getattr(svc.conf.quotas, r)) for r in RESOURCES}


async def show(svc: NetworkService, project_id: str) -> dict[str, int]:
    async with svc.store.read() as session:
        return {r: await quota_limit(session, svc, project_id, r) for r in RESOURCES}


async def details(svc: NetworkService, project_id: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    async with svc.store.read() as session:
        for resource, model in QUOTA_MODELS.items():
            used = (await session.execute(select(func.count()).select_from(model).where(
                model.project_id == project_id))).scalar_one()
            out[resource] = {"limit": await quota_limit(session, svc, project_id, resource),
                             "used": int(used), "reserved": 0}
    return out


async def update(svc: NetworkService, project_id: str, values: Any) -> dict[str, int]:
    if not isinstance(values, dict):
        raise NeutronBadRequest("Invalid input for quota: expected an object.",
                                "HTTPBadRequest")
    clean: dict[str, int] = {}
    values = dict(values)
    check_limit = values.pop("check_limit", False) is True
    values.pop("force", None)  # the opposite of check_limit in older clients
    for key, value in values.items():
        if key not in RESOURCES:
            raise NeutronBadRequest(f"Unrecognized attribute(s) '{key}'", "HTTPBadRequest")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise NeutronBadRequest(f"Invalid input for {key}. Reason: '{value}' is not an "
                                    "integer.", "HTTPBadRequest") from None
        if isinstance(value, bool) or number < -1:
            raise NeutronBadRequest(f"Invalid input for {key}. Reason: '{value}' should be "
                                    "greater than or equal to -1.", "HTTPBadRequest")
        clean[key] = number
    async with svc.write(notify=False) as session:
        for key, number in clean.items():
            if check_limit and number >= 0:
                model = QUOTA_MODELS[key]
                used = (await session.execute(select(func.count()).select_from(model).where(
                    model.project_id == project_id))).scalar_one()
                if number < used:
                    raise NeutronBadRequest(f"Quota limit {number} for {key} must be greater "
                                            f"than or equal to already used and reserved "
                                            f"{used}.", "InvalidQuotaValue")
            row = await session.get(Quota, (project_id, key))
            if row is None:
                session.add(Quota(project_id=project_id, resource=key, limit=number))
            else:
                row.limit = number
    return await show(svc, project_id)


async def reset(svc: NetworkService, project_id: str) -> None:
    async with svc.write(notify=False) as session:
        await session.execute(delete(Quota).where(Quota.project_id == project_id))


async def projects_with_overrides(svc: NetworkService) -> list[dict[str, Any]]:
    async with svc.store.read() as session:
        ids = sorted(set((await session.execute(select(Quota.project_id))).scalars()))
    out = []
    for pid in ids:
        limits: dict[str, Any] = dict(await show(svc, pid))
        limits["project_id"] = limits["tenant_id"] = pid
        out.append(limits)
    return out
