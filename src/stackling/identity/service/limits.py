"""Unified limits (Keystone's ``unified_limit_api``) with the ``flat`` enforcement model.

A registered limit is the default for (service, region, resource); a limit overrides it for
one project or domain and needs a registered limit to exist (403 otherwise). The flat model
does not look at the project tree, so no limit value is checked against another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import Conflict, Forbidden, NotFound, ValidationError
from stackling.common.ids import new_id
from stackling.identity.models import Limit, Project, Region, RegisteredLimit, Service
from stackling.identity.service import fieldcheck as check
from stackling.identity.service.store import Store

MODEL = {
    "name": "flat",
    "description": "Limit enforcement and validation does not take project hierarchy into "
                   "consideration.",
}
_MAX_INT = 0x7FFFFFFF
_REGISTERED_FIELDS = ("service_id", "region_id", "resource_name", "default_limit",
                      "description")
_LIMIT_FIELDS = ("project_id", "domain_id", "service_id", "region_id", "resource_name",
                 "resource_limit", "description")


def registered_limit_ref(reg: RegisteredLimit) -> dict[str, Any]:
    return {"id": reg.id, "service_id": reg.service_id, "region_id": reg.region_id,
            "resource_name": reg.resource_name, "default_limit": reg.default_limit,
            "description": reg.description}


def limit_ref(limit: Limit) -> dict[str, Any]:
    return {"id": limit.id, "project_id": limit.project_id, "domain_id": limit.domain_id,
            "service_id": limit.service_id, "region_id": limit.region_id,
            "resource_name": limit.resource_name, "resource_limit": limit.resource_limit,
            "description": limit.description}


def _expecting(attribute: str, target: str) -> ValidationError:
    return ValidationError(f"Expecting to find {attribute} in {target}. The server could not "
                           "comply with the request since it is either malformed or otherwise "
                           "incorrect. The client is assumed to be in error.")


def _check_common(body: dict[str, Any], value_key: str, *, create: bool) -> None:
    check.string(body, "service_id", required=create)
    check.string(body, "region_id", nullable=True, min_len=1, max_len=255)
    check.string(body, "resource_name", required=create, min_len=1, max_len=255,
                 pattern=check.NAME_PATTERN)
    check.integer(body, value_key, required=create, minimum=-1, maximum=_MAX_INT)
    check.string(body, "description", nullable=True, max_len=255)


async def _assert_exist(session: AsyncSession, body: dict[str, Any], target: str) -> None:
    """Referenced service/region/project/domain must exist (400). A ``project_id`` naming a
    domain makes the limit a domain limit, as Keystone does."""
    if body.get("service_id") is not None and await session.get(
            Service, body["service_id"]) is None:
        raise _expecting("service_id", target)
    if body.get("region_id") is not None and await session.get(
            Region, body["region_id"]) is None:
        raise _expecting("region_id", target)
    if body.get("project_id") is not None:
        project = await session.get(Project, body["project_id"])
        if project is None:
            raise _expecting("project_id", target)
        if project.is_domain:
            body["domain_id"] = body.pop("project_id")
    if body.get("domain_id") is not None:
        domain = await session.get(Project, body["domain_id"])
        if domain is None or not domain.is_domain:
            raise _expecting("domain_id", target)


def _region_is(column: Any, region_id: str | None) -> Any:
    return column.is_(None) if region_id is None else column == region_id


async def _registered_for(session: AsyncSession, service_id: str, region_id: str | None,
                          resource_name: str) -> RegisteredLimit | None:
    return (await session.scalars(select(RegisteredLimit).where(
        RegisteredLimit.service_id == service_id,
        _region_is(RegisteredLimit.region_id, region_id),
        RegisteredLimit.resource_name == resource_name))).first()


async def _limits_of(session: AsyncSession, reg: RegisteredLimit) -> list[Limit]:
    return list((await session.scalars(select(Limit).where(
        Limit.service_id == reg.service_id, _region_is(Limit.region_id, reg.region_id),
        Limit.resource_name == reg.resource_name))).all())


def _duplicate(kind: str) -> Conflict:
    return Conflict(f"Conflict occurred attempting to store {kind} - Duplicate entry.")


# --- registered limits ---------------------------------------------------------------------


@dataclass
class LimitFilters:
    service_id: str | None = None
    region_id: str | None = None
    resource_name: str | None = None
    project_id: str | None = None
    domain_id: str | None = None


async def list_registered_limits(store: Store, f: LimitFilters) -> list[dict[str, Any]]:
    query = select(RegisteredLimit).order_by(RegisteredLimit.id)
    if f.service_id is not None:
        query = query.where(RegisteredLimit.service_id == f.service_id)
    if f.region_id is not None:
        query = query.where(RegisteredLimit.region_id == f.region_id)
    if f.resource_name is not None:
        query = query.where(RegisteredLimit.resource_name == f.resource_name)
    async with store.read() as session:
        return [registered_limit_ref(r) for r in (await session.scalars(query)).all()]


async def _registered(session: AsyncSession, reg_id: str) -> RegisteredLimit:
    reg = await session.get(RegisteredLimit, reg_id)
    if reg is None:
        raise NotFound(f"Could not find registered limit for {reg_id}.")
    return reg


async def get_registered_limit(store: Store, reg_id: str) -> dict[str, Any]:
    async with store.read() as session:
        return registered_limit_ref(await _registered(session, reg_id))


def _list_of_objects(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    check.only(body, (key,))
    items = body.get(key)
    if items is None:
        raise check.invalid(key, f"'{key}' is a required property")
    if not isinstance(items, list) or not items:
        raise check.invalid(key, f"{items!r} is not a non-empty array")
    if not all(isinstance(i, dict) for i in items):
        raise check.invalid(key, "every item must be an object")
    return [dict(i) for i in items]


async def create_registered_limits(store: Store, body: dict[str, Any]
                                   ) -> list[dict[str, Any]]:
    items = _list_of_objects(body, "registered_limits")
    for item in items:
        check.only(item, _REGISTERED_FIELDS)
        _check_common(item, "default_limit", create=True)
    async with store.write(conflict="Conflict occurred attempting to store registered_limit "
                                    "- Duplicate entry.") as session:
        created = []
        for item in items:
            await _assert_exist(session, item, "registered_limit")
            if await _registered_for(session, item["service_id"], item.get("region_id"),
                                     item["resource_name"]):
                raise _duplicate("registered_limit")
            reg = RegisteredLimit(id=new_id(), service_id=item["service_id"],
                                  region_id=item.get("region_id"),
                                  resource_name=item["resource_name"],
                                  default_limit=item["default_limit"],
                                  description=item.get("description"))
            session.add(reg)
            await session.flush()
            created.append(registered_limit_ref(reg))
        return created


async def update_registered_limit(store: Store, reg_id: str, body: dict[str, Any]
                                  ) -> dict[str, Any]:
    check.only(body, _REGISTERED_FIELDS)
    _check_common(body, "default_limit", create=False)
    async with store.write() as session:
        await _assert_exist(session, body, "registered_limit")
        reg = await _registered(session, reg_id)
        if await _limits_of(session, reg):
            raise Forbidden(f"Unable to update or delete registered limit {reg_id} because "
                            "there are project limits associated with it.")
        wanted = {"service_id": reg.service_id, "region_id": reg.region_id,
                  "resource_name": reg.resource_name}
        wanted.update({k: body[k] for k in wanted if k in body})
        if body.get("service_id") or "region_id" in body or body.get("resource_name"):
            other = await _registered_for(session, str(wanted["service_id"]),
                                          wanted["region_id"], str(wanted["resource_name"]))
            if other is not None and other.id != reg.id:
                raise _duplicate("registered_limit")
        for key in _REGISTERED_FIELDS:
            if key in body:
                setattr(reg, key, body[key])
        await session.flush()
        return registered_limit_ref(reg)


async def delete_registered_limit(store: Store, reg_id: str) -> None:
    async with store.write() as session:
        reg = await _registered(session, reg_id)
        if await _limits_of(session, reg):
            raise Forbidden(f"Unable to update or delete registered limit {reg_id} because "
                            "there are project limits associated with it.")
        await session.execute(delete(RegisteredLimit).where(RegisteredLimit.id == reg_id))


# --- limits --------------------------------------------------------------------------------


async def list_limits(store: Store, f: LimitFilters) -> list[dict[str, Any]]:
    query = select(Limit).order_by(Limit.id)
    for column, value in ((Limit.service_id, f.service_id), (Limit.region_id, f.region_id),
                          (Limit.resource_name, f.resource_name),
                          (Limit.project_id, f.project_id), (Limit.domain_id, f.domain_id)):
        if value is not None:
            query = query.where(column == value)
    async with store.read() as session:
        return [limit_ref(lim) for lim in (await session.scalars(query)).all()]


async def project_ids_in_domain(store: Store, domain_id: str) -> set[str]:
    async with store.read() as session:
        return set((await session.scalars(select(Project.id).where(
            Project.domain_id == domain_id, Project.is_domain.is_(False)))).all())


async def _limit(session: AsyncSession, limit_id: str) -> Limit:
    limit = await session.get(Limit, limit_id)
    if limit is None:
        raise NotFound(f"Could not find limit for {limit_id}.")
    return limit


async def get_limit(store: Store, limit_id: str) -> dict[str, Any]:
    async with store.read() as session:
        return limit_ref(await _limit(session, limit_id))


async def limit_target(store: Store, limit_id: str) -> dict[str, Any]:
    """The policy target for one limit: the limit plus its project or domain (empty when the
    limit does not exist; the 404 comes after the policy check, as in Keystone)."""
    async with store.read() as session:
        limit = await session.get(Limit, limit_id)
        if limit is None:
            return {}
        ref: dict[str, Any] = limit_ref(limit)
        owner = await session.get(Project, limit.project_id or limit.domain_id or "")
        if owner is not None and limit.project_id:
            ref["project"] = {"id": owner.id, "domain_id": owner.domain_id}
        elif owner is not None:
            ref["domain"] = {"id": owner.id}
        return {"limit": ref}


async def create_limits(store: Store, body: dict[str, Any]) -> list[dict[str, Any]]:
    items = _list_of_objects(body, "limits")
    for item in items:
        check.only(item, _LIMIT_FIELDS)
        _check_common(item, "resource_limit", create=True)
        for key in ("project_id", "domain_id"):
            check.string(item, key, nullable=True, min_len=1, max_len=64,
                         pattern=check.ID_PATTERN)
        if ("project_id" in item) == ("domain_id" in item):
            raise ValidationError("Invalid input for field 'limits': exactly one of "
                                  "'project_id' and 'domain_id' is required")
    async with store.write(conflict="Conflict occurred attempting to store limit - Duplicate "
                                    "entry.") as session:
        created = []
        for item in items:
            await _assert_exist(session, item, "limit")
            reg = await _registered_for(session, item["service_id"], item.get("region_id"),
                                        item["resource_name"])
            if reg is None:
                raise Forbidden("Unable to create a limit that has no corresponding "
                                "registered limit.")
            owner = ((Limit.project_id == item["project_id"]) if item.get("project_id")
                     else (Limit.domain_id == item.get("domain_id")))
            if (await session.scalars(select(Limit.id).where(
                    owner, Limit.service_id == reg.service_id,
                    _region_is(Limit.region_id, reg.region_id),
                    Limit.resource_name == reg.resource_name))).first():
                raise _duplicate("limit")
            limit = Limit(id=new_id(), project_id=item.get("project_id"),
                          domain_id=item.get("domain_id"), service_id=reg.service_id,
                          region_id=reg.region_id, resource_name=reg.resource_name,
                          resource_limit=item["resource_limit"],
                          description=item.get("description"))
            session.add(limit)
            await session.flush()
            created.append(limit_ref(limit))
        return created


async def update_limit(store: Store, limit_id: str, body: dict[str, Any]) -> dict[str, Any]:
    check.only(body, ("resource_limit", "description"))
    check.integer(body, "resource_limit", minimum=-1, maximum=_MAX_INT)
    check.string(body, "description", nullable=True, max_len=255)
    async with store.write() as session:
        limit = await _limit(session, limit_id)
        if "resource_limit" in body:
            limit.resource_limit = body["resource_limit"]
        if "description" in body:
            limit.description = body["description"]
        await session.flush()
        return limit_ref(limit)


async def delete_limit(store: Store, limit_id: str) -> None:
    async with store.write() as session:
        await _limit(session, limit_id)
        await session.execute(delete(Limit).where(Limit.id == limit_id))
