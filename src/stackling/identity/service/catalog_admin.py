"""Regions, services and endpoints: the catalog as administrators edit it (Keystone's
``catalog_api``).

Every change goes through :meth:`Store.write`, which bumps the store revision the token
catalog cache follows, so the next token issued or validated shows the change.

Entities come back as plain dicts in Keystone's shape without ``links`` (the HTTP layer adds
them). Extra attributes a client sends are kept in ``extra`` and returned merged, as Keystone
does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import Conflict, Forbidden, NotFound, ValidationError
from stackling.common.ids import new_id
from stackling.identity.models import (
    Endpoint,
    ProjectEndpoint,
    Region,
    RegisteredLimit,
    Service,
)
from stackling.identity.service import fieldcheck as check
from stackling.identity.service.store import Store

INTERFACES = ("admin", "internal", "public")
# Keystone accepts only these ``$(name)s`` substitutions in endpoint URLs.
URL_SUBSTITUTIONS = ("tenant_id", "project_id", "user_id", "compute_host", "public_endpoint")
_REGION_COLUMNS = ("id", "description", "parent_region_id")
_SERVICE_COLUMNS = ("id", "type", "enabled")
_ENDPOINT_COLUMNS = ("id", "interface", "region_id", "region", "service_id", "url", "enabled",
                     "legacy_endpoint_id")


def _extra(body: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in columns and k != "links"}


# --- rendering -----------------------------------------------------------------------------


def region_ref(region: Region) -> dict[str, Any]:
    return {**region.extra, "id": region.id, "description": region.description,
            "parent_region_id": region.parent_region_id}


def service_ref(service: Service) -> dict[str, Any]:
    return {**service.extra, "id": service.id, "type": service.type,
            "enabled": service.enabled}


def endpoint_ref(endpoint: Endpoint) -> dict[str, Any]:
    return {**endpoint.extra, "id": endpoint.id, "interface": endpoint.interface,
            "region_id": endpoint.region_id, "region": endpoint.region_id,
            "service_id": endpoint.service_id, "url": endpoint.url,
            "enabled": endpoint.enabled}


# --- regions -------------------------------------------------------------------------------


async def _region(session: AsyncSession, region_id: str) -> Region:
    region = await session.get(Region, region_id)
    if region is None:
        raise NotFound(f"Could not find region: {region_id}.")
    return region


def _check_region_body(body: dict[str, Any]) -> None:
    check.string(body, "id")
    check.string(body, "description", nullable=True, max_len=255)
    check.string(body, "parent_region_id", nullable=True)


async def _no_cycle(session: AsyncSession, region_id: str, parent_id: str | None) -> None:
    seen: set[str] = set()
    while parent_id:
        if parent_id == region_id:
            raise ValidationError(f"The specified parent region {parent_id} would create a "
                                  "circular region hierarchy.")
        if parent_id in seen:  # an existing loop above us; not ours to report
            return
        seen.add(parent_id)
        parent = await session.get(Region, parent_id)
        parent_id = parent.parent_region_id if parent else None


async def list_regions(store: Store, parent_region_id: str | None = None
                       ) -> list[dict[str, Any]]:
    query = select(Region).order_by(Region.id)
    if parent_region_id is not None:
        query = query.where(Region.parent_region_id == parent_region_id)
    async with store.read() as session:
        return [region_ref(r) for r in (await session.scalars(query)).all()]


async def get_region(store: Store, region_id: str) -> dict[str, Any]:
    async with store.read() as session:
        return region_ref(await _region(session, region_id))


async def create_region(store: Store, body: dict[str, Any], region_id: str | None = None
                        ) -> dict[str, Any]:
    """POST (id optional) or PUT /regions/{id} (``region_id``, which must match a body id)."""
    _check_region_body(body)
    if region_id is not None:
        if body.get("id") is not None and body["id"] != region_id:
            raise ValidationError(f'Conflicting region IDs specified: "{region_id}" != '
                                  f'"{body["id"]}"')
    else:
        region_id = body.get("id") or new_id()
    if len(region_id) > 255:
        raise check.invalid("id", f"{region_id!r} is too long")
    parent_id = body.get("parent_region_id")
    async with store.write(conflict=f"Conflict occurred attempting to store region - "
                                    f"Duplicate ID, {region_id}.") as session:
        if await session.get(Region, region_id) is not None:
            raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, "
                           f"{region_id}.")
        if parent_id is not None:
            await _region(session, parent_id)
        region = Region(id=region_id, description=body.get("description") or "",
                        parent_region_id=parent_id,
                        extra=_extra(body, _REGION_COLUMNS))
        session.add(region)
        await session.flush()
        return region_ref(region)


async def update_region(store: Store, region_id: str, body: dict[str, Any]
                        ) -> dict[str, Any]:
    check.not_empty(body, "region")
    _check_region_body(body)
    check.matching_id(body, region_id)
    async with store.write() as session:
        if body.get("parent_region_id") is not None:
            await _region(session, body["parent_region_id"])
        region = await _region(session, region_id)
        if "parent_region_id" in body:
            await _no_cycle(session, region_id, body["parent_region_id"])
            region.parent_region_id = body["parent_region_id"]
        if "description" in body:
            region.description = body["description"] or ""
        extra = _extra(body, _REGION_COLUMNS)
        if extra:
            region.extra = {**region.extra, **extra}
        await session.flush()
        return region_ref(region)


async def _subtree(session: AsyncSession, region_id: str) -> list[str]:
    """``region_id`` and every region below it (stops at loops)."""
    found = [region_id]
    frontier = [region_id]
    while frontier:
        children = (await session.scalars(select(Region.id).where(
            Region.parent_region_id.in_(frontier)))).all()
        frontier = [c for c in children if c not in found]
        found.extend(frontier)
    return found


async def delete_region(store: Store, region_id: str) -> None:
    """Delete a region and its children; refused (403) while any of them has endpoints."""
    async with store.write() as session:
        await _region(session, region_id)
        ids = await _subtree(session, region_id)
        used = await session.scalar(select(func.count()).select_from(Endpoint).where(
            Endpoint.region_id.in_(ids)))
        if used:
            raise Forbidden(f"Unable to delete region {region_id} because it or its child "
                            "regions have associated endpoints.")
        limited = await session.scalar(select(func.count()).select_from(RegisteredLimit).where(
            RegisteredLimit.region_id.in_(ids)))
        if limited:
            raise Conflict(f"Unable to delete region {region_id} because registered limits "
                           "refer to it or its child regions.")
        await session.execute(delete(Region).where(Region.id.in_(ids)))


# --- services ------------------------------------------------------------------------------


async def _service(session: AsyncSession, service_id: str) -> Service:
    service = await session.get(Service, service_id)
    if service is None:
        raise NotFound(f"Could not find service: {service_id}.")
    return service


def _check_service_body(body: dict[str, Any], *, create: bool) -> None:
    check.string(body, "type", required=create, min_len=1, max_len=255)
    check.string(body, "name", min_len=1, max_len=255)
    check.boolean(body, "enabled")


async def list_services(store: Store, type_: str | None = None, name: str | None = None
                        ) -> list[dict[str, Any]]:
    query = select(Service).order_by(Service.id)
    if type_ is not None:
        query = query.where(Service.type == type_)
    async with store.read() as session:
        services = (await session.scalars(query)).all()
    return [service_ref(s) for s in services
            if name is None or s.extra.get("name") == name]


async def get_service(store: Store, service_id: str) -> dict[str, Any]:
    async with store.read() as session:
        return service_ref(await _service(session, service_id))


async def create_service(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    _check_service_body(body, create=True)
    extra = {"name": "", **_extra(body, _SERVICE_COLUMNS)}
    service = Service(id=new_id(), type=body["type"], enabled=body.get("enabled", True),
                      extra=extra)
    async with store.write() as session:
        session.add(service)
        await session.flush()
        return service_ref(service)


async def update_service(store: Store, service_id: str, body: dict[str, Any]
                         ) -> dict[str, Any]:
    check.not_empty(body, "service")
    _check_service_body(body, create=False)
    check.matching_id(body, service_id)
    async with store.write() as session:
        service = await _service(session, service_id)
        if "type" in body:
            service.type = body["type"]
        if "enabled" in body:
            service.enabled = body["enabled"]
        extra = _extra(body, _SERVICE_COLUMNS)
        if extra:
            service.extra = {**service.extra, **extra}
        await session.flush()
        return service_ref(service)


async def delete_service(store: Store, service_id: str) -> None:
    """Delete a service with its endpoints (and their project associations)."""
    async with store.write() as session:
        await _service(session, service_id)
        limited = await session.scalar(select(func.count()).select_from(RegisteredLimit).where(
            RegisteredLimit.service_id == service_id))
        if limited:
            raise Conflict(f"Unable to delete service {service_id} because registered limits "
                           "refer to it.")
        endpoint_ids = select(Endpoint.id).where(Endpoint.service_id == service_id)
        await session.execute(delete(ProjectEndpoint).where(
            ProjectEndpoint.endpoint_id.in_(endpoint_ids)))
        await session.execute(delete(Endpoint).where(Endpoint.service_id == service_id))
        await session.execute(delete(Service).where(Service.id == service_id))


# --- endpoints -----------------------------------------------------------------------------


async def _endpoint(session: AsyncSession, endpoint_id: str) -> Endpoint:
    endpoint = await session.get(Endpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"Could not find endpoint: {endpoint_id}.")
    return endpoint


def _check_url(url: str) -> None:
    try:
        url.replace("$(", "%(") % dict.fromkeys(URL_SUBSTITUTIONS, "")
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"Cannot create an endpoint with an invalid URL: {url}.") from exc


def _check_endpoint_body(body: dict[str, Any], *, create: bool) -> None:
    check.choice(body, "interface", INTERFACES, required=create)
    check.string(body, "service_id", required=create)
    url = check.string(body, "url", required=create, max_len=225, pattern=check.URL_PATTERN)
    check.string(body, "region_id", nullable=True)
    check.string(body, "region", nullable=True)
    check.boolean(body, "enabled")
    check.string(body, "name")
    check.string(body, "description", nullable=True)
    if url is not None:
        _check_url(url)


async def _resolve_region(session: AsyncSession, body: dict[str, Any]) -> None:
    """Legacy ``region`` (no ``region_id``) names the region and creates it if missing;
    an explicit ``region_id`` must exist (400, as Keystone)."""
    if body.get("region_id") is None and body.get("region") is not None:
        body["region_id"] = body["region"]
        if await session.get(Region, body["region_id"]) is None:
            session.add(Region(id=body["region_id"], description="", extra={}))
            await session.flush()
    elif body.get("region_id") is not None:
        if await session.get(Region, body["region_id"]) is None:
            raise ValidationError("Expecting to find endpoint region_id in region table. The "
                                  "server could not comply with the request since it is "
                                  "either malformed or otherwise incorrect. The client is "
                                  "assumed to be in error.")
    body.pop("region", None)


async def _require_service(session: AsyncSession, service_id: str | None) -> None:
    if service_id is not None and await session.get(Service, service_id) is None:
        raise ValidationError("Expecting to find endpoint service_id in service table. The "
                              "server could not comply with the request since it is either "
                              "malformed or otherwise incorrect. The client is assumed to be "
                              "in error.")


async def list_endpoints(store: Store, interface: str | None = None,
                         service_id: str | None = None, region_id: str | None = None
                         ) -> list[dict[str, Any]]:
    query = select(Endpoint).order_by(Endpoint.id)
    if interface is not None:
        query = query.where(Endpoint.interface == interface)
    if service_id is not None:
        query = query.where(Endpoint.service_id == service_id)
    if region_id is not None:
        query = query.where(Endpoint.region_id == region_id)
    async with store.read() as session:
        return [endpoint_ref(e) for e in (await session.scalars(query)).all()]


async def get_endpoint(store: Store, endpoint_id: str) -> dict[str, Any]:
    async with store.read() as session:
        return endpoint_ref(await _endpoint(session, endpoint_id))


async def create_endpoint(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    _check_endpoint_body(body, create=True)
    body = dict(body)
    async with store.write() as session:
        await _resolve_region(session, body)
        await _require_service(session, body["service_id"])
        endpoint = Endpoint(id=new_id(), service_id=body["service_id"],
                            interface=body["interface"], region_id=body.get("region_id"),
                            url=body["url"], enabled=body.get("enabled", True),
                            extra=_extra(body, _ENDPOINT_COLUMNS))
        session.add(endpoint)
        await session.flush()
        return endpoint_ref(endpoint)


async def update_endpoint(store: Store, endpoint_id: str, body: dict[str, Any]
                          ) -> dict[str, Any]:
    check.not_empty(body, "endpoint")
    _check_endpoint_body(body, create=False)
    check.matching_id(body, endpoint_id)
    body = dict(body)
    async with store.write() as session:
        explicit_region = "region_id" in body or body.get("region") is not None
        await _resolve_region(session, body)
        await _require_service(session, body.get("service_id"))
        endpoint = await _endpoint(session, endpoint_id)
        for column in ("interface", "service_id", "url", "enabled"):
            if column in body:
                setattr(endpoint, column, body[column])
        if explicit_region:
            endpoint.region_id = body.get("region_id")
        extra = _extra(body, _ENDPOINT_COLUMNS)
        if extra:
            endpoint.extra = {**endpoint.extra, **extra}
        await session.flush()
        return endpoint_ref(endpoint)


async def delete_endpoint(store: Store, endpoint_id: str) -> None:
    async with store.write() as session:
        await _endpoint(session, endpoint_id)
        await session.execute(delete(ProjectEndpoint).where(
            ProjectEndpoint.endpoint_id == endpoint_id))
        await session.execute(delete(Endpoint).where(Endpoint.id == endpoint_id))


async def endpoints_matching(session: AsyncSession, filters: dict[str, Any]
                             ) -> list[Endpoint]:
    """Endpoints whose attributes equal every filter (endpoint groups use this)."""
    query = select(Endpoint).order_by(Endpoint.id)
    for key, value in filters.items():
        column = {"service_id": Endpoint.service_id, "region_id": Endpoint.region_id,
                  "interface": Endpoint.interface, "enabled": Endpoint.enabled}.get(key)
        if column is None:
            return []
        query = query.where(column.is_(None) if value is None else column == value)
    return list((await session.scalars(query)).all())


__all__ = [
    "INTERFACES", "create_endpoint", "create_region", "create_service", "delete_endpoint",
    "delete_region", "delete_service", "endpoint_ref", "endpoints_matching", "get_endpoint",
    "get_region", "get_service", "list_endpoints", "list_regions", "list_services",
    "region_ref", "service_ref", "update_endpoint", "update_region", "update_service",
]
