"""``/v2/tasks`` (Glance's tasks API, admin only by default)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, MethodNotAllowed
from stackling.image.api.common import caller, json_object, json_response, service, task_view
from stackling.image.service import tasks

router = APIRouter()


@router.post("/v2/tasks")
async def create_task(request: Request) -> Response:
    c = await caller(request)
    c.enforce("tasks_api_access")
    body = await json_object(request)
    for key in ("type", "input"):
        if key not in body:
            raise BadRequest(f"Task '{key}' is required")
    task = await tasks.create_import_task(service(request), c.ctx, body)
    return json_response(task_view(task), 201, {"Location": f"/v2/tasks/{task.id}"})


@router.get("/v2/tasks")
async def list_tasks(request: Request) -> Response:
    c = await caller(request)
    c.enforce("tasks_api_access")
    svc = service(request)
    params = dict(request.query_params)
    status = params.get("status")
    if status and status not in tasks.STATUSES:
        raise BadRequest(f"Invalid status value: {status}")
    if params.get("type") and params["type"] not in ("import", "api_image_import"):
        raise BadRequest(f"Invalid type value: {params['type']}")
    sort_dir = params.get("sort_dir", "desc")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction: {sort_dir}")
    marker = params.get("marker")
    if marker is not None:
        try:
            uuid.UUID(marker)
        except ValueError:
            raise BadRequest("Invalid marker format") from None
    try:
        limit = int(params.get("limit", svc.conf.limit_param_default))
    except ValueError:
        raise BadRequest("limit param must be an integer") from None
    if limit < 0:
        raise BadRequest("limit param must be positive")
    limit = min(limit, svc.conf.api_limit_max)
    found = await tasks.list_tasks(svc, c.ctx, c.is_admin, params,
                                   params.get("sort_key", "created_at"), sort_dir, limit,
                                   marker)
    rest = {k: v for k, v in params.items() if k != "marker"}
    body: dict[str, Any] = {"tasks": [task_view(t, full=False) for t in found],
                            "first": "/v2/tasks" + (f"?{urlencode(rest)}" if rest else ""),
                            "schema": "/v2/schemas/tasks"}
    if found and len(found) == limit:
        body["next"] = "/v2/tasks?" + urlencode({**rest, "marker": found[-1].id})
    return json_response(body)


@router.get("/v2/tasks/{task_id}")
async def show_task(request: Request, task_id: str) -> Response:
    c = await caller(request)
    c.enforce("tasks_api_access")
    return json_response(task_view(await tasks.get_task(service(request), c.ctx, c.is_admin,
                                                        task_id)))


@router.delete("/v2/tasks/{task_id}")
async def delete_task(request: Request, task_id: str) -> Response:
    c = await caller(request)
    c.enforce("tasks_api_access")
    raise MethodNotAllowed("This operation is currently not permitted on Glance Tasks. They "
                           "are auto deleted after reaching the time based on their "
                           "expires_at property.")
