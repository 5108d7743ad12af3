"""OS-EP-FILTER: endpoint groups and project-endpoint associations.

Keystone's SQL catalog uses these associations to narrow a project-scoped token's catalog
(when a project has any association, only those endpoints are shown). Here they are kept and
served through the API only: the token catalog is not filtered. :func:`endpoints_for_project`
computes the set the filtering would use, should it be wired into the token catalog later.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import Conflict, NotFound, ValidationError
from stackling.common.ids import new_id
from stackling.identity.models import (
    Endpoint,
    EndpointGroup,
    Project,
    ProjectEndpoint,
    ProjectEndpointGroup,
    ProjectTag,
)
from stackling.identity.service import fieldcheck as check
from stackling.identity.service.catalog_admin import INTERFACES, endpoint_ref, endpoints_matching
from stackling.identity.service.store import Store

FILTER_KEYS = ("service_id", "region_id", "interface")
_GROUP_FIELDS = ("name", "description", "filters")


def group_ref(group: EndpointGroup) -> dict[str, Any]:
    return {"id": group.id, "name": group.name, "description": group.description,
            "filters": dict(group.filters)}


async def project_refs(session: AsyncSession, project_ids: list[str]) -> list[dict[str, Any]]:
    """Keystone project references for the projects that still exist."""
    if not project_ids:
        return []
    projects = (await session.scalars(select(Project).where(
        Project.id.in_(project_ids)).order_by(Project.id))).all()
    tags: dict[str, list[str]] = {}
    for pid, name in (await session.execute(select(ProjectTag.project_id, ProjectTag.name)
                                            .where(ProjectTag.project_id.in_(project_ids))
                                            .order_by(ProjectTag.name))).all():
        tags.setdefault(pid, []).append(name)
    return [{**{k: v for k, v in (p.extra or {}).items()},
             "id": p.id, "name": p.name, "domain_id": None if p.is_domain else p.domain_id,
             "description": p.description, "enabled": p.enabled,
             "parent_id": None if p.is_domain else p.parent_id, "is_domain": p.is_domain,
             "tags": tags.get(p.id, []),
             "options": {k: v for k, v in (p.options or {}).items() if v is not None}}
            for p in projects]


async def _project(session: AsyncSession, project_id: str) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise NotFound(f"Could not find project: {project_id}.")
    return project


async def _endpoint(session: AsyncSession, endpoint_id: str) -> Endpoint:
    endpoint = await session.get(Endpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"Could not find endpoint: {endpoint_id}.")
    return endpoint


async def _group(session: AsyncSession, group_id: str) -> EndpointGroup:
    group = await session.get(EndpointGroup, group_id)
    if group is None:
        raise NotFound(f"Could not find Endpoint Group: {group_id}.")
    return group


# --- endpoint groups -----------------------------------------------------------------------


def _check_group(body: dict[str, Any], *, create: bool) -> None:
    check.only(body, _GROUP_FIELDS)
    if not create:
        check.not_empty(body, "endpoint_group")
    check.string(body, "name", required=create, min_len=1, max_len=255,
                 pattern=check.NAME_PATTERN)
    check.string(body, "description", nullable=True)
    if create and not body.get("filters"):
        raise ValidationError("filters field is required and cannot be empty")
    if "filters" in body:
        filters = body["filters"]
        if not isinstance(filters, dict):
            raise check.invalid("filters", f"{filters!r} is not of type 'object'")
        if any(key not in FILTER_KEYS for key in filters):
            raise ValidationError("Expecting to find service_id or region_id or interface in "
                                  "endpoint_group. The server could not comply with the "
                                  "request since it is either malformed or otherwise "
                                  "incorrect. The client is assumed to be in error.")
        check.choice(filters, "interface", INTERFACES)
        check.string(filters, "service_id")
        check.string(filters, "region_id", nullable=True)


async def list_groups(store: Store, name: str | None = None) -> list[dict[str, Any]]:
    query = select(EndpointGroup).order_by(EndpointGroup.id)
    if name is not None:
        query = query.where(EndpointGroup.name == name)
    async with store.read() as session:
        return [group_ref(g) for g in (await session.scalars(query)).all()]


async def get_group(store: Store, group_id: str) -> dict[str, Any]:
    async with store.read() as session:
        return group_ref(await _group(session, group_id))


async def create_group(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    _check_group(body, create=True)
    group = EndpointGroup(id=new_id(), name=body["name"], description=body.get("description"),
                          filters=dict(body["filters"]))
    async with store.write() as session:
        session.add(group)
        await session.flush()
        return group_ref(group)


async def update_group(store: Store, group_id: str, body: dict[str, Any]) -> dict[str, Any]:
    _check_group(body, create=False)
    async with store.write() as session:
        group = await _group(session, group_id)
        for key in _GROUP_FIELDS:
            if key in body:
                setattr(group, key, dict(body[key]) if key == "filters" else body[key])
        await session.flush()
        return group_ref(group)


async def delete_group(store: Store, group_id: str) -> None:
    async with store.write() as session:
        await _group(session, group_id)
        await session.execute(delete(ProjectEndpointGroup).where(
            ProjectEndpointGroup.endpoint_group_id == group_id))
        await session.execute(delete(EndpointGroup).where(EndpointGroup.id == group_id))


async def group_endpoints(store: Store, group_id: str) -> list[dict[str, Any]]:
    async with store.read() as session:
        group = await _group(session, group_id)
        return [endpoint_ref(e) for e in await endpoints_matching(session, group.filters)]


async def group_projects(store: Store, group_id: str) -> list[dict[str, Any]]:
    async with store.read() as session:
        await _group(session, group_id)
        ids = (await session.scalars(select(ProjectEndpointGroup.project_id).where(
            ProjectEndpointGroup.endpoint_group_id == group_id))).all()
        return await project_refs(session, list(ids))


async def _group_association(session: AsyncSession, group_id: str, project_id: str
                             ) -> ProjectEndpointGroup:
    await _project(session, project_id)
    await _group(session, group_id)
    row = await session.get(ProjectEndpointGroup, (group_id, project_id))
    if row is None:
        raise NotFound("Endpoint Group Project Association not found")
    return row


async def get_group_in_project(store: Store, group_id: str, project_id: str
                               ) -> dict[str, Any]:
    async with store.read() as session:
        await _group_association(session, group_id, project_id)
        return {"endpoint_group_id": group_id, "project_id": project_id}


async def add_group_to_project(store: Store, group_id: str, project_id: str) -> None:
    async with store.write(conflict="Conflict occurred attempting to store "
                                    "project_endpoint_group - Duplicate entry.") as session:
        await _project(session, project_id)
        await _group(session, group_id)
        if await session.get(ProjectEndpointGroup, (group_id, project_id)) is not None:
            raise Conflict("Conflict occurred attempting to store project_endpoint_group - "
                           "Duplicate entry.")
        session.add(ProjectEndpointGroup(endpoint_group_id=group_id, project_id=project_id))


async def remove_group_from_project(store: Store, group_id: str, project_id: str) -> None:
    async with store.write() as session:
        row = await _group_association(session, group_id, project_id)
        await session.delete(row)


async def groups_for_project(store: Store, project_id: str) -> list[dict[str, Any]]:
    async with store.read() as session:
        await _project(session, project_id)
        groups = (await session.scalars(select(EndpointGroup).join(
            ProjectEndpointGroup, ProjectEndpointGroup.endpoint_group_id == EndpointGroup.id
        ).where(ProjectEndpointGroup.project_id == project_id).order_by(EndpointGroup.id))).all()
        return [group_ref(g) for g in groups]


# --- project <-> endpoint ------------------------------------------------------------------


async def add_endpoint_to_project(store: Store, project_id: str, endpoint_id: str) -> None:
    async with store.write(conflict="Conflict occurred attempting to store project_endpoint "
                                    "- Duplicate entry.") as session:
        await _endpoint(session, endpoint_id)
        await _project(session, project_id)
        if await session.get(ProjectEndpoint, (endpoint_id, project_id)) is not None:
            raise Conflict("Conflict occurred attempting to store project_endpoint - "
                           "Duplicate entry.")
        session.add(ProjectEndpoint(endpoint_id=endpoint_id, project_id=project_id))


def _not_in_project(endpoint_id: str, project_id: str) -> NotFound:
    return NotFound(f"Endpoint {endpoint_id} not found in project {project_id}")


async def check_endpoint_in_project(store: Store, project_id: str, endpoint_id: str) -> None:
    async with store.read() as session:
        await _endpoint(session, endpoint_id)
        await _project(session, project_id)
        if await session.get(ProjectEndpoint, (endpoint_id, project_id)) is None:
            raise _not_in_project(endpoint_id, project_id)


async def remove_endpoint_from_project(store: Store, project_id: str, endpoint_id: str
                                       ) -> None:
    async with store.write() as session:
        row = await session.get(ProjectEndpoint, (endpoint_id, project_id))
        if row is None:
            raise _not_in_project(endpoint_id, project_id)
        await session.delete(row)


async def projects_for_endpoint(store: Store, endpoint_id: str) -> list[dict[str, Any]]:
    async with store.read() as session:
        await _endpoint(session, endpoint_id)
        ids = (await session.scalars(select(ProjectEndpoint.project_id).where(
            ProjectEndpoint.endpoint_id == endpoint_id))).all()
        return await project_refs(session, list(ids))


async def endpoints_for_project(session: AsyncSession, project_id: str) -> list[Endpoint]:
    """Endpoints associated with the project directly or through its endpoint groups."""
    found: dict[str, Endpoint] = {}
    direct = (await session.scalars(select(Endpoint).join(
        ProjectEndpoint, ProjectEndpoint.endpoint_id == Endpoint.id).where(
        ProjectEndpoint.project_id == project_id))).all()
    found.update((e.id, e) for e in direct)
    groups = (await session.scalars(select(EndpointGroup).join(
        ProjectEndpointGroup, ProjectEndpointGroup.endpoint_group_id == EndpointGroup.id
    ).where(ProjectEndpointGroup.project_id == project_id))).all()
    for group in groups:
        found.update((e.id, e) for e in await endpoints_matching(session, group.filters))
    return sorted(found.values(), key=lambda e: e.id)


async def list_endpoints_for_project(store: Store, project_id: str) -> list[dict[str, Any]]:
    async with store.read() as session:
        await _project(session, project_id)
        return [endpoint_ref(e) for e in await endpoints_for_project(session, project_id)]
