"""OS-EP-FILTER: ``/v3/OS-EP-FILTER/...`` endpoint groups and project-endpoint associations.

API only: the associations are stored and listed but do not narrow the token catalog (see
:mod:`stackling.identity.service.endpoint_filter`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.identity.api.common import (
    authorize,
    identity,
    json_body,
    require_object,
    self_link,
)
from stackling.identity.api.reply import collection, member, reply
from stackling.identity.service import endpoint_filter as epf

router = APIRouter(prefix="/v3/OS-EP-FILTER")
_GROUPS = "OS-EP-FILTER/endpoint_groups"


def _no_content() -> Response:
    return Response(status_code=204)


# --- endpoint groups -----------------------------------------------------------------------


@router.api_route("/endpoint_groups", methods=["GET", "HEAD"])
async def list_endpoint_groups(request: Request) -> Response:
    await authorize(request, "identity:list_endpoint_groups")
    refs = await epf.list_groups(identity(request).store, request.query_params.get("name"))
    return collection(request, _GROUPS, "endpoint_groups", refs)


@router.post("/endpoint_groups")
async def create_endpoint_group(request: Request) -> Response:
    await authorize(request, "identity:create_endpoint_group")
    body = require_object(await json_body(request), "endpoint_group")
    ref = await epf.create_group(identity(request).store, body)
    return member(request, _GROUPS, "endpoint_group", ref, status=201)


@router.api_route("/endpoint_groups/{group_id}", methods=["GET", "HEAD"])
async def get_endpoint_group(request: Request, group_id: str) -> Response:
    await authorize(request, "identity:get_endpoint_group")
    ref = await epf.get_group(identity(request).store, group_id)
    return member(request, _GROUPS, "endpoint_group", ref)


@router.patch("/endpoint_groups/{group_id}")
async def update_endpoint_group(request: Request, group_id: str) -> Response:
    await authorize(request, "identity:update_endpoint_group")
    body = require_object(await json_body(request), "endpoint_group")
    ref = await epf.update_group(identity(request).store, group_id, body)
    return member(request, _GROUPS, "endpoint_group", ref)


@router.delete("/endpoint_groups/{group_id}")
async def delete_endpoint_group(request: Request, group_id: str) -> Response:
    await authorize(request, "identity:delete_endpoint_group")
    await epf.delete_group(identity(request).store, group_id)
    return _no_content()


@router.api_route("/endpoint_groups/{group_id}/endpoints", methods=["GET", "HEAD"])
async def list_group_endpoints(request: Request, group_id: str) -> Response:
    await authorize(request, "identity:list_endpoints_associated_with_endpoint_group")
    refs = await epf.group_endpoints(identity(request).store, group_id)
    return collection(request, "endpoints", "endpoints", refs)


@router.api_route("/endpoint_groups/{group_id}/projects", methods=["GET", "HEAD"])
async def list_group_projects(request: Request, group_id: str) -> Response:
    await authorize(request, "identity:list_projects_associated_with_endpoint_group")
    refs = await epf.group_projects(identity(request).store, group_id)
    return collection(request, "projects", "projects", refs)


@router.api_route("/endpoint_groups/{group_id}/projects/{project_id}",
                  methods=["GET", "HEAD"])
async def get_group_in_project(request: Request, group_id: str, project_id: str
                               ) -> Response:
    await authorize(request, "identity:get_endpoint_group_in_project")
    ref = await epf.get_group_in_project(identity(request).store, group_id, project_id)
    ref["links"] = self_link(request, f"{_GROUPS}/{group_id}/projects/{project_id}")
    return reply(request, {"project_endpoint_group": ref})


@router.put("/endpoint_groups/{group_id}/projects/{project_id}")
async def add_group_to_project(request: Request, group_id: str, project_id: str) -> Response:
    await authorize(request, "identity:add_endpoint_group_to_project")
    await epf.add_group_to_project(identity(request).store, group_id, project_id)
    return _no_content()


@router.delete("/endpoint_groups/{group_id}/projects/{project_id}")
async def remove_group_from_project(request: Request, group_id: str, project_id: str
                                    ) -> Response:
    await authorize(request, "identity:remove_endpoint_group_from_project")
    await epf.remove_group_from_project(identity(request).store, group_id, project_id)
    return _no_content()


@router.api_route("/projects/{project_id}/endpoint_groups", methods=["GET", "HEAD"])
async def list_project_groups(request: Request, project_id: str) -> Response:
    await authorize(request, "identity:list_endpoint_groups_for_project")
    refs = await epf.groups_for_project(identity(request).store, project_id)
    return collection(request, _GROUPS, "endpoint_groups", refs)


# --- project <-> endpoint ------------------------------------------------------------------


@router.api_route("/projects/{project_id}/endpoints/{endpoint_id}", methods=["GET", "HEAD"])
async def check_endpoint_in_project(request: Request, project_id: str, endpoint_id: str
                                    ) -> Response:
    await authorize(request, "identity:check_endpoint_in_project")
    await epf.check_endpoint_in_project(identity(request).store, project_id, endpoint_id)
    return _no_content()


@router.put("/projects/{project_id}/endpoints/{endpoint_id}")
async def add_endpoint_to_project(request: Request, project_id: str, endpoint_id: str
                                  ) -> Response:
    await authorize(request, "identity:add_endpoint_to_project")
    await epf.add_endpoint_to_project(identity(request).store, project_id, endpoint_id)
    return _no_content()


@router.delete("/projects/{project_id}/endpoints/{endpoint_id}")
async def remove_endpoint_from_project(request: Request, project_id: str, endpoint_id: str
                                       ) -> Response:
    await authorize(request, "identity:remove_endpoint_from_project")
    await epf.remove_endpoint_from_project(identity(request).store, project_id, endpoint_id)
    return _no_content()


@router.api_route("/projects/{project_id}/endpoints", methods=["GET", "HEAD"])
async def list_project_endpoints(request: Request, project_id: str) -> Response:
    await authorize(request, "identity:list_endpoints_for_project")
    refs = await epf.list_endpoints_for_project(identity(request).store, project_id)
    return collection(request, "endpoints", "endpoints", refs)


@router.api_route("/endpoints/{endpoint_id}/projects", methods=["GET", "HEAD"])
async def list_endpoint_projects(request: Request, endpoint_id: str) -> Response:
    await authorize(request, "identity:list_projects_for_endpoint")
    refs = await epf.projects_for_endpoint(identity(request).store, endpoint_id)
    return collection(request, "projects", "projects", refs)

