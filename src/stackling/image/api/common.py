"""What every image route uses: the service, the caller, Glance's policy checks, JSON I/O,
and the wire views of images, members and tasks."""

from __future__ import annotations

import json
from typing import Any, Final

from fastapi import Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Forbidden, NotFound, UnsupportedMediaType
from stackling.common.timeutils import isotime
from stackling.image.service import images
from stackling.image.service.glance import ImageService
from stackling.image.service.members import Member
from stackling.image.service.records import ImageRecord
from stackling.image.service.schema import CUSTOM_PROPERTIES
from stackling.image.service.tasks import TaskView
from stackling.web.auth import request_context
from stackling.web.policy import PolicyEnforcer

HIDDEN_PROPERTIES: Final = ("os_glance_stage_host", "os_glance_hash_op_host")


def service(request: Request) -> ImageService:
    svc: ImageService = request.app.state.images
    return svc


class Caller:
    """The authenticated caller and Glance's policy checks for it."""

    def __init__(self, request: Request, ctx: RequestContext) -> None:
        self.request = request
        self.ctx = ctx
        self.enforcer: PolicyEnforcer = request.app.state.enforcer
        self.creds = ctx.credentials()
        self.is_admin = self.enforcer.enforce("context_is_admin", {}, self.creds)

    @property
    def project_id(self) -> str | None:
        return self.ctx.project_id

    def check(self, rule: str, target: dict[str, Any]) -> bool:
        return self.enforcer.enforce(rule, target, self.creds)

    def enforce(self, rule: str, target: dict[str, Any] | None = None) -> None:
        if not self.check(rule, target or {}):
            raise Forbidden(f"You are not authorized to complete {rule} action.")

    def image(self, rule: str, record: ImageRecord) -> None:
        """Glance's image policy: a refusal is 404 when the caller may not even see the
        image, 403 otherwise."""
        target = image_target(record)
        if self.check(rule, target):
            return
        if rule == "get_image" or not self.check("get_image", target):
            raise NotFound("The resource could not be found.")
        raise Forbidden(f"You are not authorized to complete {rule} action.")

    async def find(self, image_id: str, rule: str = "get_image") -> ImageRecord:
        record = await images.find(service(self.request), self.ctx, self.is_admin, image_id)
        self.image("get_image", record)
        if rule != "get_image":
            self.image(rule, record)
        return record


async def caller(request: Request) -> Caller:
    return Caller(request, await request_context(request))


def image_target(record: ImageRecord) -> dict[str, Any]:
    target: dict[str, Any] = {k: v for k, v in record.properties.items()}
    target.update(id=record.id, project_id=record.owner, owner=record.owner,
                  visibility=record.visibility, member_id=record.member,
                  status=record.status, name=record.name, protected=record.protected)
    return target


def visibility_rule(caller: Caller, visibility: Any, target: dict[str, Any]) -> None:
    """Making an image public or community has its own rule."""
    if visibility == "public":
        caller.enforce("publicize_image", target)
    elif visibility == "community":
        caller.enforce("communitize_image", target)


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise BadRequest("Body expected in request.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("Malformed JSON in request body.") from exc
    if not isinstance(body, dict | list):
        raise BadRequest("Unexpected body type. Expected list/dict.")
    return body


async def json_object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Unexpected body type. Expected dict.")
    return body


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(json.dumps(body, ensure_ascii=False).encode(), status_code=status,
                    headers=headers, media_type="application/json; charset=UTF-8")


def no_content(headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=204, headers=headers)


def require_octet_stream(request: Request) -> None:
    raw = request.headers.get("content-type")
    media = (raw or "").split(";", 1)[0].strip().lower()
    if media != "application/octet-stream":
        raise UnsupportedMediaType(f"Invalid content type {raw}")


def t(value: Any) -> str:
    return isotime(value, subsecond=False)


def image_view(record: ImageRecord, show_stores: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for key, value in record.properties.items():
        if key in HIDDEN_PROPERTIES:
            continue
        view[key] = "" if value is None and key not in CUSTOM_PROPERTIES else value
    view.update(
        name=record.name, disk_format=record.disk_format,
        container_format=record.container_format, visibility=record.visibility,
        size=record.size, virtual_size=record.virtual_size, status=record.status,
        checksum=record.checksum, protected=record.protected, min_ram=record.min_ram,
        min_disk=record.min_disk, owner=record.owner, os_hidden=record.os_hidden,
        os_hash_algo=record.os_hash_algo, os_hash_value=record.os_hash_value, id=record.id,
        created_at=t(record.created_at), updated_at=t(record.updated_at),
        tags=list(record.tags), self=f"/v2/images/{record.id}",
        file=f"/v2/images/{record.id}/file", schema="/v2/schemas/image")
    if show_stores and record.store and record.location:
        view["stores"] = record.store
    return view


def member_view(member: Member) -> dict[str, Any]:
    return {"member_id": member.member_id, "image_id": member.image_id,
            "status": member.status, "created_at": t(member.created_at),
            "updated_at": t(member.updated_at), "schema": "/v2/schemas/member"}


def task_view(task: TaskView, full: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {"id": task.id, "type": task.type, "status": task.status,
                            "owner": task.owner, "created_at": t(task.created_at),
                            "updated_at": t(task.updated_at),
                            "self": f"/v2/tasks/{task.id}", "schema": "/v2/schemas/task"}
    if full:
        view.update(input=task.input, result=task.result, message=task.message)
        for key in ("image_id", "request_id", "user_id"):
            if getattr(task, key):
                view[key] = getattr(task, key)
    if task.expires_at:
        view["expires_at"] = t(task.expires_at)
    return view


def image_task_view(task: TaskView) -> dict[str, Any]:
    """Tasks as ``GET /v2/images/{id}/tasks`` lists them (the database row's fields)."""
    return {"id": task.id, "type": task.type, "status": task.status, "owner": task.owner,
            "expires_at": t(task.expires_at) if task.expires_at else None,
            "created_at": t(task.created_at), "updated_at": t(task.updated_at),
            "deleted_at": None, "deleted": False, "image_id": task.image_id,
            "request_id": task.request_id, "user_id": task.user_id, "input": task.input,
            "result": task.result, "message": task.message}
