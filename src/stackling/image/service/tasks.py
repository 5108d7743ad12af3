"""Interoperable image import (``POST /v2/images/{id}/import``) and Glance's tasks.

An import takes the image's import lock (the ``os_glance_import_task`` property, inserted
atomically: a second import gets 409), moves it to ``importing`` and records an
``api_image_import`` task; the copy itself runs in the background:

- ``glance-direct``: from the staging store (``PUT /stage``) to the image store;
- ``web-download``: from an http(s) URL. This cloud only reaches loopback addresses, so other
  URLs are refused at once (400, "does not pass filtering"), as Glance's URI filter would.

The copy is inspected and hashed like an upload. On success the image is ``active`` and the
staged data removed; on failure the image returns to ``queued`` with
``os_glance_failed_import`` naming the store, and the task says why. Legacy ``import`` tasks
(``POST /v2/tasks``, admin only) create an image and web-download into it.
"""

from __future__ import annotations

import ipaddress
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict, NotFound
from stackling.common.timeutils import utcnow
from stackling.image.inspect import FormatInspector
from stackling.image.models import Image, ImageProperty, Task
from stackling.image.service import quotas
from stackling.image.service.data import Claim, Received, _cas, pump
from stackling.image.service.glance import ImageService
from stackling.image.service.images import NewImage, create, parse_create
from stackling.image.service.records import ImageRecord, load

LOG = logging.getLogger(__name__)
TASK_TTL: Final = timedelta(hours=48)
LOCK: Final = "os_glance_import_task"
STATUSES: Final = ("pending", "processing", "success", "failure")


@dataclass
class TaskView:
    id: str
    type: str
    status: str
    owner: str | None
    image_id: str | None
    request_id: str | None
    user_id: str | None
    input: dict[str, Any]
    result: dict[str, Any] | None
    message: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


def _view(row: Task) -> TaskView:
    return TaskView(row.id, row.type, row.status, row.owner, row.image_id, row.request_id,
                    row.user_id, dict(row.input or {}), row.result, row.message or "",
                    row.created_at, row.updated_at, row.expires_at)


def uri_allowed(uri: Any) -> bool:
    """Only http(s) URLs to loopback hosts: nothing else is reachable from here, and
    following a URL elsewhere would make the cloud a proxy into places it must not reach."""
    if not isinstance(uri, str):
        return False
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_import_body(body: Any, methods: list[str]) -> tuple[str, dict[str, Any]]:
    if not isinstance(body, dict):
        raise BadRequest("Body expected in request.")
    method = body.get("method")
    if not isinstance(method, dict):
        raise BadRequest("Import request requires a 'method' field.")
    name = method.get("name")
    if name is None:
        raise BadRequest("Import request requires a 'name' field.")
    if name not in methods:
        raise BadRequest(f"Unknown import method name '{name}'.")
    for flag in ("all_stores_must_succeed", "all_stores"):
        if flag in body and not isinstance(body[flag], bool):
            raise BadRequest(f"'{flag}' must be boolean value only")
    return str(name), method


def chosen_stores(svc: ImageService, body: dict[str, Any], header: str | None) -> list[str]:
    if body.get("all_stores"):
        return sorted(svc.stores)
    wanted = body.get("stores") or ([header] if header else [svc.store.name])
    if not isinstance(wanted, list):
        raise BadRequest("'stores' must be a list of store identifiers")
    for store in wanted:
        if store not in svc.stores:
            raise Conflict(f"Unknown scheme '{store}' found in URI")
    return [str(s) for s in wanted]


async def start_import(svc: ImageService, ctx: RequestContext, record: ImageRecord,
                       body: dict[str, Any], method: str, stores: list[str]) -> str:
    """Check, lock, record the task and start the copy; returns the task id."""
    uri = body["method"].get("uri")
    if method == "glance-direct" and record.status != "uploading":
        if record.status == "active":
            raise Conflict("Image with status active cannot be target for import")
        raise Conflict("Image needs to be staged before 'glance-direct' method can be used")
    if method == "web-download":
        if record.status == "active":
            raise Conflict("Image with status active cannot be target for import")
        if record.status != "queued":
            raise Conflict("Image needs to be in 'queued' state to use 'web-download' method")
    for attr in ("container_format", "disk_format"):
        if not getattr(record, attr):
            raise Conflict(f"'{attr}' needs to be set before import")
    if method == "web-download" and not uri_allowed(uri):
        raise BadRequest(f"URI for web-download does not pass filtering: {uri}")
    quota = quotas.limits(svc.conf, record.owner)
    if record.owner and quota.image_size_total >= 0:
        async with svc.db.read() as session:
            await quotas.check(session, quota, record.owner, {"image_size_total": 0})
    task_id = str(uuid.uuid4())
    now = utcnow()
    expect = "uploading" if method == "glance-direct" else "queued"
    try:
        async with svc.db.session() as session, session.begin():
            session.add(ImageProperty(image_id=record.id, name=LOCK, value=task_id))
            await session.flush()
            if not await _cas(session, record.id, expect, "importing"):
                raise Conflict(f"Image status transition from {record.status} to importing "
                               "is not allowed")
            await _set_props(session, record.id, {
                "os_glance_importing_to_stores": ",".join(stores),
                "os_glance_failed_import": ""})
            session.add(Task(id=task_id, type="api_image_import", status="pending",
                             owner=ctx.project_id, image_id=record.id,
                             request_id=ctx.request_id or None, user_id=ctx.user_id,
                             input={"image_id": record.id, "import_req": body,
                                    "backend": stores},
                             result=None, message="", created_at=now, updated_at=now))
    except IntegrityError as exc:
        raise Conflict(f"New operation on image '{record.id}' is not permitted as prior "
                       "operation is still in progress") from exc
    svc.spawn(run_import(svc, task_id, record.id, method, uri, stores), f"import {record.id}")
    return task_id


async def _set_props(session: Any, image_id: str, values: dict[str, str | None]) -> None:
    await session.execute(delete(ImageProperty).where(ImageProperty.image_id == image_id,
                                                      ImageProperty.name.in_(list(values))))
    for name, value in values.items():
        if value is not None:
            session.add(ImageProperty(image_id=image_id, name=name, value=value))
    await session.flush()


async def _task_status(svc: ImageService, task_id: str, status: str, message: str = "",
                       result: dict[str, Any] | None = None) -> None:
    now = utcnow()
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status in ("success", "failure"):
        values.update(message=message, result=result, expires_at=now + TASK_TTL)
    async with svc.db.write() as session:
        await session.execute(update(Task).where(Task.id == task_id).values(**values))


async def _download(uri: str) -> AsyncIterator[bytes]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), follow_redirects=False) as client, \
            client.stream("GET", uri) as response:
        if response.status_code != 200:
            raise RuntimeError(f"GET {uri} answered {response.status_code}")
        async for chunk in response.aiter_bytes(1 << 20):
            yield chunk


async def run_import(svc: ImageService, task_id: str, image_id: str, method: str,
                     uri: str | None, stores: list[str]) -> None:
    await _task_status(svc, task_id, "processing")
    async with svc.db.read() as session:
        record = await load(session, image_id)
    if record is None or record.status != "importing":
        await _task_status(svc, task_id, "failure", "Image was deleted or changed during "
                                                    "the import")
        return
    writer = svc.store.writer(image_id)
    claim = Claim(svc, record, "image_size_total", "importing", 0)
    try:
        if method == "glance-direct":
            if record.staged is None:
                raise RuntimeError("the staged data is gone")
            source = await svc.staging.read(record.staged)
        else:
            assert uri is not None
            source = _download(uri)
        inspector = FormatInspector(record.disk_format, record.container_format)
        received = await pump(source, writer, inspector, svc.conf.max_image_size,
                              claim.grow if claim.active else None)
        location = await writer.commit()
    except Exception as exc:
        LOG.warning("image %s: import failed: %s", image_id, exc)
        await writer.abort()
        await _failed(svc, record, stores)
        await _task_status(svc, task_id, "failure", str(exc) or type(exc).__name__)
        return
    except BaseException:
        await writer.abort()
        await _failed(svc, record, stores)
        raise
    if await _imported(svc, record, location, received):
        await _task_status(svc, task_id, "success", result={"image_id": image_id})
    else:
        await svc.store.delete(location)
        await _task_status(svc, task_id, "failure", "Image was deleted during the import")


async def _imported(svc: ImageService, record: ImageRecord, location: str,
                    received: Received) -> bool:
    virtual = received.inspection.virtual_size if received.inspection else None
    async with svc.db.write() as session:
        done = await _cas(session, record.id, "importing", "active", size=received.size,
                          virtual_size=virtual, checksum=received.checksum,
                          os_hash_algo="sha512", os_hash_value=received.hash_value,
                          store=svc.store.name, location=location, reserved=0, staged=None)
        if done:
            await _set_props(session, record.id, {LOCK: None,
                                                  "os_glance_importing_to_stores": ""})
    if done and record.staged:
        await _drop_staged(svc, record.staged)
    return done


async def _failed(svc: ImageService, record: ImageRecord, stores: list[str]) -> None:
    async with svc.db.write() as session:
        reverted = await _cas(session, record.id, "importing", "queued", size=None,
                              virtual_size=None, reserved=0, staged=None)
        if reverted:
            await _set_props(session, record.id, {
                LOCK: None, "os_glance_importing_to_stores": "",
                "os_glance_failed_import": ",".join(stores)})
    if record.staged:
        await _drop_staged(svc, record.staged)


async def _drop_staged(svc: ImageService, location: str) -> None:
    try:
        await svc.staging.delete(location)
    except Exception:
        LOG.exception("could not remove staged data at %s", location)


# --- tasks API ----------------------------------------------------------------------------

def _visible(ctx: RequestContext, is_admin: bool) -> Any:
    return True if is_admin else Task.owner == ctx.project_id


async def image_tasks(svc: ImageService, ctx: RequestContext, is_admin: bool, image_id: str
                      ) -> list[TaskView]:
    async with svc.db.read() as session:
        rows = (await session.scalars(select(Task).where(
            Task.image_id == image_id, _visible(ctx, is_admin)).order_by(Task.created_at))
        ).all()
    now = utcnow()
    return [_view(r) for r in rows if r.expires_at is None or r.expires_at >= now]


async def get_task(svc: ImageService, ctx: RequestContext, is_admin: bool, task_id: str
                   ) -> TaskView:
    async with svc.db.read() as session:
        row = await session.scalar(select(Task).where(Task.id == task_id,
                                                      _visible(ctx, is_admin)))
    if row is None:
        raise NotFound(f"Task with the given id {task_id} not found")
    return _view(row)


async def list_tasks(svc: ImageService, ctx: RequestContext, is_admin: bool,
                     filters: dict[str, str], sort_key: str, sort_dir: str, limit: int,
                     marker: str | None) -> list[TaskView]:
    if sort_key not in ("id", "type", "status", "created_at", "updated_at", "expires_at"):
        raise BadRequest(f"Invalid sort key: {sort_key}.")
    column = getattr(Task, sort_key)
    order = [column.asc() if sort_dir == "asc" else column.desc(),
             Task.id.asc() if sort_dir == "asc" else Task.id.desc()]
    query = select(Task).where(_visible(ctx, is_admin))
    for key in ("type", "status"):
        if key in filters:
            query = query.where(getattr(Task, key) == filters[key])
    async with svc.db.read() as session:
        if marker is not None:
            mark = await session.get(Task, marker)
            if mark is None:
                raise BadRequest(f"Task with the given id {marker} not found")
            value = getattr(mark, sort_key)
            after = column > value if sort_dir == "asc" else column < value
            same = (column == value) & (Task.id > mark.id if sort_dir == "asc"
                                        else Task.id < mark.id)
            query = query.where(after | same)
        rows = (await session.scalars(query.order_by(*order).limit(limit))).all()
    return [_view(r) for r in rows]


async def create_import_task(svc: ImageService, ctx: RequestContext, body: dict[str, Any]
                             ) -> TaskView:
    """``POST /v2/tasks`` with ``type: import`` (Glance's legacy import)."""
    kind = body.get("type")
    task_input = body.get("input")
    if kind != "import":
        raise BadRequest(f"Task type {kind} is not supported")
    if not isinstance(task_input, dict):
        raise BadRequest("Input does not contain 'import_from' field")
    for field in ("import_from", "import_from_format", "image_properties"):
        if field not in task_input:
            raise BadRequest(f"Input does not contain '{field}' field")
    uri = task_input["import_from"]
    if not uri_allowed(uri):
        raise BadRequest(f"URI for import does not pass filtering: {uri}")
    props = task_input["image_properties"]
    if not isinstance(props, dict):
        raise BadRequest("Input 'image_properties' must be an object")
    new: NewImage = parse_create(dict(props))
    record = await create(svc, ctx, new)
    now = utcnow()
    task_id = str(uuid.uuid4())
    async with svc.db.write() as session:
        if not await _cas(session, record.id, "queued", "importing"):
            raise Conflict("Image changed before its import started")
        session.add(Task(id=task_id, type="import", status="pending", owner=ctx.project_id,
                         image_id=record.id, request_id=ctx.request_id or None,
                         user_id=ctx.user_id, input=task_input, result=None, message="",
                         created_at=now, updated_at=now))
    svc.spawn(_legacy_import(svc, task_id, record.id, uri), f"import task {task_id}")
    return await get_task(svc, ctx, True, task_id)


async def _legacy_import(svc: ImageService, task_id: str, image_id: str, uri: str) -> None:
    await run_import(svc, task_id, image_id, "web-download", uri, [svc.store.name])


async def has_image(svc: ImageService, image_id: str) -> bool:
    async with svc.db.read() as session:
        return await session.get(Image, image_id) is not None
