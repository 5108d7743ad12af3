"""``/v2/images/{id}/members``: share an image with other projects."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, Forbidden, NotFound
from stackling.image.api.common import (
    Caller,
    caller,
    image_target,
    json_object,
    json_response,
    member_view,
    no_content,
    service,
)
from stackling.image.service import members
from stackling.image.service.records import ImageRecord

router = APIRouter()


async def _image(c: Caller, image_id: str) -> ImageRecord:
    try:
        return await c.find(image_id)
    except NotFound:
        raise NotFound(f"Image {image_id} not found.") from None


def _sees_all(c: Caller, record: ImageRecord) -> bool:
    return c.is_admin or (c.project_id is not None and c.project_id == record.owner)


@router.post("/v2/images/{image_id}/members")
async def add_member(request: Request, image_id: str) -> Response:
    c = await caller(request)
    body = await json_object(request)
    if "member" not in body:
        raise BadRequest("Member to be added not specified")
    member_id = body["member"]
    if not member_id:
        raise BadRequest("Member can't be empty")
    if not isinstance(member_id, str):
        raise BadRequest('Expected a member in the form: {"member": "image_id"}')
    record = await _image(c, image_id)
    members.require_shared(record)
    if not c.check("add_member", image_target(record)):
        raise Forbidden(f"Not allowed to create members for image {image_id}.")
    member = await members.add(service(request), record, member_id)
    return json_response(member_view(member))


@router.get("/v2/images/{image_id}/members")
async def list_members(request: Request, image_id: str) -> Response:
    c = await caller(request)
    record = await _image(c, image_id)
    try:
        members.require_shared(record)
    except Forbidden as exc:
        raise Forbidden(f"Not allowed to list members for image {image_id}: "
                        f"{exc.message}") from None
    if not c.check("get_members", image_target(record)):
        raise Forbidden(f"Not allowed to list members for image {image_id}: You are not "
                        "authorized to complete get_members action.")
    found = await members.listing(service(request), record, c.project_id,
                                  _sees_all(c, record))
    return json_response({"members": [member_view(m) for m in found],
                          "schema": "/v2/schemas/members"})


@router.get("/v2/images/{image_id}/members/{member_id}")
async def show_member(request: Request, image_id: str, member_id: str) -> Response:
    c = await caller(request)
    record = await _image(c, image_id)
    try:
        members.require_shared(record)
    except Forbidden as exc:
        raise NotFound(exc.message) from None
    if not c.check("get_member", image_target(record)):
        raise NotFound(f"You are not authorized to lookup the members of the image "
                       f"{image_id}.")
    member = await members.get(service(request), record, member_id, c.project_id,
                               _sees_all(c, record))
    return json_response(member_view(member))


@router.put("/v2/images/{image_id}/members/{member_id}")
async def update_member(request: Request, image_id: str, member_id: str) -> Response:
    c = await caller(request)
    body = await json_object(request)
    if "status" not in body:
        raise BadRequest("Status not specified")
    record = await _image(c, image_id)
    try:
        members.require_shared(record)
    except Forbidden:
        raise Forbidden(f"Not allowed to update members for image {image_id}.") from None
    found = await members.get(service(request), record, member_id, c.project_id,
                              _sees_all(c, record))
    if not c.check("modify_member", image_target(record)):
        raise Forbidden(f"Not allowed to update members for image {image_id}.")
    member = await members.set_status(service(request), record, found.member_id,
                                      body["status"])
    return json_response(member_view(member))


@router.delete("/v2/images/{image_id}/members/{member_id}")
async def delete_member(request: Request, image_id: str, member_id: str) -> Response:
    c = await caller(request)
    record = await _image(c, image_id)
    try:
        members.require_shared(record)
    except Forbidden:
        raise Forbidden(f"Not allowed to delete members for image {image_id}.") from None
    await members.get(service(request), record, member_id, c.project_id,
                      _sees_all(c, record))
    if not c.check("delete_member", image_target(record)):
        raise Forbidden(f"Not allowed to delete members for image {image_id}.")
    await members.remove(service(request), record, member_id)
    return no_content()
