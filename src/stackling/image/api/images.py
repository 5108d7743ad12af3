"""``/v2/images``: list, create, show, update (JSON patch), delete, deactivate/reactivate,
tags, and an image's tasks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, NotFound
from stackling.image.api.common import (
    Caller,
    caller,
    image_target,
    image_task_view,
    image_view,
    json_body,
    json_object,
    json_response,
    no_content,
    service,
    visibility_rule,
)
from stackling.image.service import images, listing, patch, tasks
from stackling.image.service.listing import MEMBER_STATUSES, SORT_KEYS, Query
from stackling.image.service.records import StaleImage
from stackling.image.service.schema import check_value
from stackling.web.urls import base_url

router = APIRouter()

_PAGING = ("limit", "marker", "member_status", "tag", "sort", "sort_key", "sort_dir")


def _sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise BadRequest(f"Invalid sort key: {key}. It must be one of the following: "
                         f"{', '.join(SORT_KEYS)}.")
    return key


def _sort_dir(value: str) -> str:
    if value not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction: {value}")
    return value


def parse_query(request: Request, default_limit: int, max_limit: int) -> Query:
    params = request.query_params
    q = Query()
    raw_limit = params.get("limit")
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise BadRequest("limit param must be an integer") from None
        if limit < 0:
            raise BadRequest("limit param must be positive")
    else:
        limit = default_limit
    q.limit = min(limit, max_limit)
    q.marker = params.get("marker")
    q.member_status = params.get("member_status", "accepted")
    if q.member_status not in MEMBER_STATUSES:
        raise BadRequest(f"Invalid status: {q.member_status}")
    q.tags = [t.strip() for t in params.getlist("tag")]
    if "sort" in params:
        if "sort_key" in params or "sort_dir" in params:
            raise BadRequest("Old and new sorting syntax cannot be combined")
        q.sort_keys, q.sort_dirs = [], []
        for item in params["sort"].strip().split(","):
            key, _, direction = item.partition(":")
            q.sort_keys.append(_sort_key(key.strip()))
            q.sort_dirs.append(_sort_dir((direction or "desc").strip()))
    else:
        keys = [_sort_key(k.strip()) for k in params.getlist("sort_key")]
        dirs = [_sort_dir(d.strip()) for d in params.getlist("sort_dir")]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise BadRequest("Number of sort dirs does not match the number of sort keys")
        q.sort_keys = keys or ["created_at"]
        q.sort_dirs = dirs or ["desc"]
    q.filters = {k: v for k, v in params.items() if k not in _PAGING}
    return q


def _link(path: str, request: Request, marker: str | None) -> str:
    from urllib.parse import urlencode

    items = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    if marker is not None:
        items.append(("marker", marker))
    return f"{path}?{urlencode(items)}" if items else path


@router.get("/v2/images")
async def list_images(request: Request) -> Response:
    c = await caller(request)
    svc = service(request)
    c.enforce("get_images", {"project_id": c.project_id})
    q = parse_query(request, svc.conf.limit_param_default, svc.conf.api_limit_max)
    async with svc.db.read() as session:
        records, full = await listing.list_images(session, q, c.project_id, c.is_admin)
    for record in records:
        if record.visibility == "shared" and record.owner != c.project_id:
            record.member = c.project_id
    shown = [r for r in records if c.check("get_image", image_target(r))]
    body: dict[str, Any] = {"images": [image_view(r) for r in shown],
                            "first": _link("/v2/images", request, None),
                            "schema": "/v2/schemas/images"}
    if full and shown:
        body["next"] = _link("/v2/images", request, shown[-1].id)
    return json_response(body)


@router.post("/v2/images")
async def create_image(request: Request) -> Response:
    c = await caller(request)
    svc = service(request)
    new = images.parse_create(await json_object(request))
    owner = new.fields.get("owner", c.project_id)
    target = {"project_id": owner, "owner": owner,
              "visibility": new.fields.get("visibility", "private")}
    if not c.check("add_image", target):
        if owner != c.project_id:
            from stackling.common.errors import Forbidden

            raise Forbidden(f"You are not permitted to create images owned by '{owner}'")
        c.enforce("add_image", target)
    if "visibility" in new.fields:
        visibility_rule(c, new.fields["visibility"], target)
    record = await images.create(svc, c.ctx, new)
    headers = {"Location": f"{base_url(request)}/v2/images/{record.id}",
               "OpenStack-image-import-methods": ",".join(svc.conf.import_methods),
               "OpenStack-image-store-ids": ",".join(svc.stores)}
    return json_response(image_view(record), 201, headers)


@router.get("/v2/images/{image_id}")
async def show_image(request: Request, image_id: str) -> Response:
    c = await caller(request)
    return json_response(image_view(await c.find(image_id)))


@router.patch("/v2/images/{image_id}")
async def update_image(request: Request, image_id: str) -> Response:
    c = await caller(request)
    svc = service(request)
    draft = patch.media_type_draft(request.headers.get("content-type"))
    changes = patch.parse(await json_body(request), draft)
    for _attempt in range(5):
        record = await c.find(image_id)

        def check(name: str, value: Any, record: Any = record) -> None:
            if name == "visibility":
                visibility_rule(c, value, image_target(record))
            c.image("modify_image", record)

        new = patch.apply(record, changes, check, c.is_admin)
        if not changes:
            return json_response(image_view(record))
        try:
            saved = await images.save(svc, record, new)
        except StaleImage:
            continue
        return json_response(image_view(saved))
    raise StaleImage(f"Image {image_id} keeps changing; try again")


@router.delete("/v2/images/{image_id}")
async def delete_image(request: Request, image_id: str) -> Response:
    c = await caller(request)
    svc = service(request)
    try:
        record = await c.find(image_id)
    except NotFound:
        raise NotFound(f"Failed to find image {image_id} to delete") from None
    c.image("delete_image", record)
    for _attempt in range(5):
        try:
            await images.delete(svc, record)
            return no_content()
        except StaleImage:
            record = await c.find(image_id)
    raise StaleImage(f"Image {image_id} keeps changing; try again")


@router.post("/v2/images/{image_id}/actions/deactivate")
async def deactivate(request: Request, image_id: str) -> Response:
    c = await caller(request)
    record = await c.find(image_id)
    c.image("deactivate", record)
    await images.deactivate(service(request), record)
    return no_content()


@router.post("/v2/images/{image_id}/actions/reactivate")
async def reactivate(request: Request, image_id: str) -> Response:
    c = await caller(request)
    record = await c.find(image_id)
    c.image("reactivate", record)
    await images.reactivate(service(request), record)
    return no_content()


@router.put("/v2/images/{image_id}/tags/{tag}")
async def add_tag(request: Request, image_id: str, tag: str) -> Response:
    c = await caller(request)
    problem = check_value("tags", [tag], {"type": "array",
                                          "items": {"type": "string", "maxLength": 255}})
    if problem:
        raise BadRequest(f"Provided object does not match schema 'image': {problem}")
    record = await _tag_target(c, image_id, "update")
    await images.add_tag(service(request), record, tag)
    return no_content()


@router.delete("/v2/images/{image_id}/tags/{tag}")
async def delete_tag(request: Request, image_id: str, tag: str) -> Response:
    c = await caller(request)
    record = await _tag_target(c, image_id, "delete")
    await images.remove_tag(service(request), record, tag)
    return no_content()


async def _tag_target(c: Caller, image_id: str, verb: str) -> Any:
    try:
        record = await c.find(image_id)
    except NotFound:
        raise NotFound(f"Image {image_id} not found.") from None
    c.image("modify_image", record)
    return record


@router.get("/v2/images/{image_id}/tasks")
async def image_tasks(request: Request, image_id: str) -> Response:
    c = await caller(request)
    try:
        await c.find(image_id)
    except NotFound:
        raise NotFound("The resource could not be found.") from None
    found = await tasks.image_tasks(service(request), c.ctx, c.is_admin, image_id)
    return json_response({"tasks": [image_task_view(t) for t in found]})
