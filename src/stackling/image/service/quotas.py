"""Per-project image quotas, with Glance's unified-limit names and messages.

- ``image_count_total``: images the project owns (not deleted);
- ``image_count_uploading``: its images in ``saving``/``uploading``/``importing``;
- ``image_size_total`` (MiB): stored bytes of its images, plus bytes that uploads in flight
  have claimed (``images.reserved`` of images in ``saving``/``importing``);
- ``image_stage_total`` (MiB): staged bytes (``uploading``/``importing`` images' size) plus
  claims of staging uploads in flight (``reserved`` of ``uploading`` images).

Usage is always computed from the image rows, so it cannot drift. A check runs in the same
transaction as the change it allows, after :func:`lock` serialized the project's checks:
two concurrent requests can never both take the last unit. An over-limit request gets 413
with Glance's wording.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.config import ImageConfig, ImageQuotaConfig
from stackling.common.errors import PayloadTooLarge
from stackling.db.store import Store
from stackling.image.models import Image, QuotaLock

MIB = 1 << 20
UPLOADING = ("saving", "uploading", "importing")
NOT_COUNTED = ("killed", "deleted", "pending_delete")


def limits(conf: ImageConfig, project_id: str | None) -> ImageQuotaConfig:
    return conf.quota_for(project_id)


def unlimited(quota: ImageQuotaConfig) -> bool:
    return all(v < 0 for v in (quota.image_count_total, quota.image_count_uploading,
                               quota.image_size_total, quota.image_stage_total))


async def ensure_lock_row(db: Store, project_id: str) -> None:
    """Create the project's lock row once (outside the transaction that will use it)."""
    async with db.read() as session:
        if await session.get(QuotaLock, project_id) is not None:
            return
    try:
        async with db.session() as session, session.begin():
            session.add(QuotaLock(project_id=project_id, generation=0))
    except IntegrityError:
        pass  # somebody else made it


async def lock(session: AsyncSession, project_id: str) -> None:
    """Serialize quota checks of ``project_id`` until the transaction ends."""
    await session.execute(update(QuotaLock).where(QuotaLock.project_id == project_id)
                          .values(generation=QuotaLock.generation + 1))


async def usage(session: AsyncSession, project_id: str) -> dict[str, int]:
    """Current usage; sizes in bytes."""
    mine = (Image.owner == project_id) & ~Image.deleted
    count_total = await session.scalar(select(func.count()).select_from(Image).where(mine))
    uploading = await session.scalar(select(func.count()).select_from(Image).where(
        mine, Image.status.in_(UPLOADING)))
    stored = await session.scalar(select(func.coalesce(func.sum(Image.size), 0)).where(
        mine, Image.location.is_not(None), Image.status.not_in(NOT_COUNTED)))
    claimed = await session.scalar(select(func.coalesce(func.sum(Image.reserved), 0)).where(
        mine, Image.status.in_(("saving", "importing"))))
    staged = await session.scalar(select(func.coalesce(func.sum(Image.size), 0)).where(
        mine, Image.status.in_(("uploading", "importing"))))
    stage_claimed = await session.scalar(select(func.coalesce(func.sum(Image.reserved), 0))
                                         .where(mine, Image.status == "uploading"))
    return {
        "image_count_total": int(count_total or 0),
        "image_count_uploading": int(uploading or 0),
        "image_size_total": int(stored or 0) + int(claimed or 0),
        "image_stage_total": int(staged or 0) + int(stage_claimed or 0),
    }


def _limit_of(quota: ImageQuotaConfig, resource: str) -> int:
    value: int = getattr(quota, resource)
    return value


def over_limit(project_id: str, resource: str, limit: int, used: int, delta: int
               ) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Project {project_id} is over a limit for [Resource {resource} is over limit of "
        f"{limit} due to current usage {used} and delta {delta}]")


async def check(session: AsyncSession, quota: ImageQuotaConfig, project_id: str,
                deltas: dict[str, int]) -> None:
    """Raise 413 when adding ``deltas`` (counts, or bytes for sizes) to the project's usage
    goes over a limit. Call with the project :func:`lock` held."""
    wanted = {r: d for r, d in deltas.items() if _limit_of(quota, r) >= 0}
    if not wanted:
        return
    now = await usage(session, project_id)
    for resource, delta in wanted.items():
        limit = _limit_of(quota, resource)
        used = now[resource]
        if resource in ("image_size_total", "image_stage_total"):
            used_mib, delta_mib = used // MIB, -(-delta // MIB)
            if used + delta > limit * MIB:
                raise over_limit(project_id, resource, limit, used_mib, delta_mib)
        elif used + delta > limit:
            raise over_limit(project_id, resource, limit, used, delta)


async def report(db: Store, conf: ImageConfig, project_id: str) -> dict[str, dict[str, int]]:
    """``GET /v2/info/usage``: usage and limit per resource (sizes in MiB; -1 unlimited)."""
    quota = limits(conf, project_id)
    async with db.read() as session:
        now = await usage(session, project_id)
    out = {}
    for resource, used in now.items():
        if resource in ("image_size_total", "image_stage_total"):
            used = used // MIB
        out[resource] = {"usage": used, "limit": _limit_of(quota, resource)}
    return out
