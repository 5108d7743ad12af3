"""The service catalog as tokens show it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.identity.models import Endpoint, Service


async def build_catalog(session: AsyncSession) -> list[dict[str, Any]]:
    services = (await session.scalars(select(Service).where(Service.enabled.is_(True)))).all()
    endpoints = (await session.scalars(select(Endpoint).where(Endpoint.enabled.is_(True)))).all()
    by_service: dict[str, list[dict[str, Any]]] = {}
    for ep in endpoints:
        by_service.setdefault(ep.service_id, []).append({
            "id": ep.id,
            "interface": ep.interface,
            "region_id": ep.region_id,
            "region": ep.region_id,
            "url": ep.url,
        })
    return [
        {
            "id": svc.id,
            "type": svc.type,
            "name": svc.extra.get("name", ""),
            "endpoints": by_service.get(svc.id, []),
        }
        for svc in services
    ]
